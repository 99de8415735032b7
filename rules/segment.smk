rule segment:
    """Split the vocal stem at silence midpoints, recursively, until every segment fits."""
    input:
        vocals=processed_path("{rec}", "vocals.wav"),
    output:
        segments=directory(processed_path("{rec}", "segments")),
    log:
        log_path("segment", "{rec}"),
    benchmark:
        benchmark_path("segment", "{rec}")
    conda:
        "../envs/media.yaml"
    envmodules:
        env_module("media"),
    threads: 1
    resources:
        mem_mb=audio_job_mem_mb,
        runtime=audio_job_runtime,
    params:
        cfg=segmentation_params(),
        max_clip_s=config["preprocess"]["max_clip_s"],
    script:
        "../workflow_scripts/segmentation.py"


rule preprocess_clips:
    """Trim, merge short neighbours, (denoise), resample, loudness-normalise: one recording's clips."""
    input:
        vocals=processed_path("{rec}", "vocals.wav"),
        segments=processed_path("{rec}", "segments"),
    output:
        clips=directory(processed_path("{rec}", "clips")),
    log:
        log_path("preprocess_clips", "{rec}"),
    benchmark:
        benchmark_path("preprocess_clips", "{rec}")
    conda:
        "../envs/media.yaml"
    envmodules:
        env_module("media"),
    threads: 1
    resources:
        mem_mb=audio_job_mem_mb,
        runtime=audio_job_runtime,
    params:
        cfg=preprocess_params(),
        max_clip_s=config["preprocess"]["max_clip_s"],
        sample_rate=config["sample_rate"],
    script:
        "../workflow_scripts/preprocess.py"


rule summary:
    """Recordings, hours in, clips, hours kept, dropped by reason, duplicate inputs."""
    input:
        sidecars=all_sidecars(),
        clips=all_clip_dirs(),
    output:
        tsv=dataset_path("summary.tsv"),
        json=dataset_path("summary.json"),
    log:
        log_path("summary", "all"),
    benchmark:
        benchmark_path("summary", "all")
    conda:
        "../envs/media.yaml"
    envmodules:
        env_module("media"),
    threads: 1
    resources:
        mem_mb=500,
        runtime=10,
    params:
        source=INPUT_SOURCE,
        on_error=config["inputs"]["on_error"],
    script:
        "../workflow_scripts/summary.py"
