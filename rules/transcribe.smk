# Transcription (one job per shard of recordings: the model loaded once, every recording's
# clips decoded with context) and the aggregation of all recordings into metadata.csv /
# rejected.tsv. Helpers: rules/common.smk.


rule transcribe:
    """Decode the speech of the shard's recordings with context (Whisper over each stem's clip
    windows) and give each clip the words spoken inside it."""
    input:
        vocals=shard_manifest(vocals_rule_name()),
        clips=shard_manifest("preprocess_clips"),
    output:
        manifest=shard_manifest("transcribe"),
    log:
        shard_log("transcribe"),
    benchmark:
        shard_benchmark("transcribe")
    conda:
        transcription_conda_env()
    envmodules:
        env_module(transcription_env()),
    threads: config["transcription"]["threads"]
    resources:
        mem_mb=transcription_mem_mb,
        runtime=transcription_runtime,
        gpu=transcription_gpus(),
    params:
        cfg=transcription_params(),
        languages=shard_languages,
        recs=shard_recordings,
    script:
        "../workflow_scripts/transcription.py"


rule aggregate_metadata:
    """Gates (transcript, DNSMOS, target voice) + Piper text normalisation over all recordings:
    metadata.csv, rejected.tsv.

    `{root}/overrides.tsv` (exported by the review page), when present, wins over the gate.
    """
    input:
        transcripts=all_transcripts(),
        clips=all_clip_dirs(),
        scores=all_scores(),
        reference=speaker_reference_input(),
        overrides=overrides_input,
    output:
        metadata=dataset_path("metadata.csv"),
        rejected=dataset_path("rejected.tsv"),
        review=dataset_path("transcripts.tsv"),
        summary=dataset_path("transcription_summary.json"),
        recut=directory(dataset_path("recut")),
    log:
        log_path("aggregate_metadata", "all"),
    benchmark:
        benchmark_path("aggregate_metadata", "all")
    conda:
        "../envs/media.yaml"
    envmodules:
        env_module("media"),
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    params:
        recs=recording_ids(),
        speakers=speakers_by_recording(),
        languages=languages_by_recording(),
        # the gate and the expected language only: a decode key reruns transcribe, and
        # this job through its inputs
        gate=config["transcription"]["gate"],
        language=config["transcription"]["language"],
        quality=quality_gate_params(),
        speaker_gate=speaker_gate_params(),
        recut=recut_params(),
    script:
        "../workflow_scripts/aggregate_metadata.py"
