# Every per-recording stage runs one job per shard (a group of recordings of about
# inputs.shard_minutes of audio, workflow_scripts/shards.py): the outputs stay per recording
# (processed/{rec}/..., logs/{rule}/{rec}.log); the job's declared output is the shard's
# manifest (shards/{shard}/{rule}.tsv: each member output with its sha256).


rule ingest:
    """Decode the shard's recordings to mono 16-bit WAV at the pipeline rate, each with a provenance sidecar."""
    input:
        media=shard_media,
    output:
        manifest=shard_manifest("ingest"),
    log:
        shard_log("ingest"),
    benchmark:
        shard_benchmark("ingest")
    conda:
        "../envs/media.yaml"
    envmodules:
        env_module("media"),
    threads: 2
    resources:
        mem_mb=1000,
        runtime=ingest_runtime,
    params:
        recs=shard_recordings,
        sample_rate=config["sample_rate"],
    script:
        "../workflow_scripts/ingest.py"


if separation_rule_is_copy():

    rule copy_vocals:
        """`separation: none`: the ingested audio is the vocal stem (hard links, no copy)."""
        input:
            audio=shard_manifest("ingest"),
        output:
            manifest=shard_manifest("copy_vocals"),
        log:
            shard_log("copy_vocals"),
        benchmark:
            shard_benchmark("copy_vocals")
        conda:
            "../envs/media.yaml"
        envmodules:
            env_module("media"),
        threads: 1
        resources:
            mem_mb=200,
            runtime=10,
        params:
            recs=shard_recordings,
        script:
            "../workflow_scripts/ingest.py"
