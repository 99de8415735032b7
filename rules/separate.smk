# Vocal separation (Spleeter or Demucs): one job per recording, streamed in chunks.
# `separation: none` is handled by rule copy_vocals (rules/ingest.smk) instead.


def separation_env_name():
    """The env family of the configured separator: `spleeter` or `demucs`."""
    return "demucs" if config["separation"]["method"] == "demucs" else "spleeter"


def separation_env_file():
    return f"../envs/{separation_env_name()}.yaml"


def separation_gpu():
    """GPUs to request (SLURM `gpu` resource): 1 when separation.device is cuda."""
    return 1 if config["separation"]["device"] == "cuda" else 0


def separation_accompaniment_output():
    path = processed_path("{rec}", "accompaniment.wav")
    return path if config["separation"]["keep_accompaniment"] else temp(path)


def separation_mem_mb():
    """MB: the configured mem_mb, raised to what one chunk needs (TF holds every STFT/mask
    tensor of a chunk: measured ~17 MB per chunk second at 44.1 kHz, plus ~0.7 GB)."""
    cfg = config["separation"]
    per_s = 20 if cfg["method"] == "spleeter" else 10
    return int(max(cfg["mem_mb"], 1000 + per_s * cfg["chunk_s"]))


def separation_runtime(wildcards, input):
    """Minutes, generous: CPU Spleeter ~0.35 s and Demucs ~1.5 s per audio second on 2 cores."""
    audio_s = _input_mb(input, "audio") * 1e6 / (2.0 * config["sample_rate"])
    cfg = config["separation"]
    if cfg["device"] == "cuda":
        per_s = 0.1
    elif cfg["method"] == "demucs":
        per_s = 3.0
    else:
        per_s = 0.7
    return int(15 + audio_s * per_s * 2 / max(1, cfg["threads"]) / 60)


if not separation_rule_is_copy():

    rule separate_vocals:
        """Vocal stem (mono s16, same rate and length as audio.wav) with Spleeter or Demucs."""
        input:
            audio=processed_path("{rec}", "audio.wav"),
        output:
            vocals=processed_path("{rec}", "vocals.wav"),
            accompaniment=separation_accompaniment_output(),
        log:
            log_path("separate_vocals", "{rec}"),
        benchmark:
            benchmark_path("separate_vocals", "{rec}")
        conda:
            separation_env_file()
        envmodules:
            env_module(separation_env_name()),
        threads: config["separation"]["threads"]
        resources:
            mem_mb=separation_mem_mb(),
            runtime=separation_runtime,
            gpu=separation_gpu(),
        params:
            method=config["separation"]["method"],
            cfg=config["separation"],
        script:
            "../workflow_scripts/separation.py"
