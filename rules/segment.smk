rule segment:
    """Split the vocal stems of the shard's recordings at silence midpoints until every segment fits."""
    input:
        vocals=shard_manifest(vocals_rule_name()),
    output:
        manifest=shard_manifest("segment"),
    log:
        shard_log("segment"),
    benchmark:
        shard_benchmark("segment")
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
        recs=shard_recordings,
    script:
        "../workflow_scripts/segmentation.py"


rule preprocess_clips:
    """Trim, merge short neighbours, (denoise), resample, loudness-normalise: the clips of the shard's recordings."""
    input:
        vocals=shard_manifest(vocals_rule_name()),
        segments=shard_manifest("segment"),
    output:
        manifest=shard_manifest("preprocess_clips"),
    log:
        shard_log("preprocess_clips"),
    benchmark:
        shard_benchmark("preprocess_clips")
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
        recs=shard_recordings,
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
