rule ingest:
    """Decode one recording to mono 16-bit WAV at the pipeline rate, with a provenance sidecar."""
    input:
        media=original_media,
    output:
        audio=processed_path("{rec}", "audio.wav"),
        sidecar=processed_path("{rec}", "source.json"),
    log:
        log_path("ingest", "{rec}"),
    benchmark:
        benchmark_path("ingest", "{rec}")
    conda:
        "../envs/media.yaml"
    envmodules:
        env_module("media"),
    threads: 1
    resources:
        mem_mb=1000,
        runtime=60,
    params:
        sample_rate=config["sample_rate"],
    script:
        "../workflow_scripts/ingest.py"


if separation_rule_is_copy():

    rule copy_vocals:
        """`separation: none`: the ingested audio is the vocal stem (hard link, no copy)."""
        input:
            audio=processed_path("{rec}", "audio.wav"),
        output:
            vocals=processed_path("{rec}", "vocals.wav"),
        log:
            log_path("copy_vocals", "{rec}"),
        benchmark:
            benchmark_path("copy_vocals", "{rec}")
        conda:
            "../envs/media.yaml"
        envmodules:
            env_module("media"),
        threads: 1
        resources:
            mem_mb=200,
            runtime=10,
        script:
            "../workflow_scripts/ingest.py"
