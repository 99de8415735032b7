# The audio gates' evidence: DNSMOS scores and speaker embeddings per clip (one job per
# shard of recordings, in the scoring env, the models loaded once), and the target voice's
# reference embedding when `speaker_gate.reference` names files. aggregate_metadata applies
# the thresholds, so a threshold change re-gates without scoring again. Helpers:
# rules/common.smk.


rule score_clips:
    """Score every clip of the shard's recordings: DNSMOS (audio quality) and a speaker embedding."""
    input:
        clips=shard_manifest("preprocess_clips"),
    output:
        manifest=shard_manifest("score_clips"),
    log:
        shard_log("score_clips"),
    benchmark:
        shard_benchmark("score_clips")
    conda:
        "../envs/scoring.yaml"
    envmodules:
        env_module("scoring"),
    threads: config["quality"]["threads"]
    resources:
        mem_mb=scoring_mem_mb,
        runtime=scoring_runtime,
        gpu=scoring_gpus(),
    params:
        cfg=scoring_params(),
        recs=shard_recordings,
    script:
        "../workflow_scripts/score_clips.py"


rule speaker_reference:
    """The target voice from `speaker_gate.reference`: the mean embedding of the files."""
    input:
        files=speaker_reference_files(),
    output:
        embedding=dataset_path("speaker/reference.npy"),
        info=dataset_path("speaker/reference.json"),
    log:
        log_path("speaker_reference", "all"),
    benchmark:
        benchmark_path("speaker_reference", "all")
    conda:
        "../envs/scoring.yaml"
    envmodules:
        env_module("scoring"),
    threads: 1
    resources:
        mem_mb=1500,
        runtime=15,
    script:
        "../workflow_scripts/speaker_reference.py"
