# Piper dataset, chunked training, ONNX export and smoke test (all in the piper env).
#
# Training runs as a chain of `train_chunk` jobs, each `training.checkpoint_every` epochs:
# chunk n reads chunk n-1's checkpoint, so a killed run loses at most one chunk and
# `snakemake` simply continues from the last finished chunk. Raising `training.epochs`
# later adds chunks on top of the existing ones.
import math


def training_cfg():
    return config["training"]


def n_chunks():
    cfg = training_cfg()
    return max(1, math.ceil(int(cfg["epochs"]) / int(cfg["checkpoint_every"])))


def checkpoint_path(n):
    return dataset_path(f"checkpoints/chunk_{n}.ckpt")


def previous_checkpoint(wildcards):
    """Chunk n-1's checkpoint; chunk 0 starts from scratch or from the fine-tuning base."""
    n = int(wildcards.n)
    if n > 0:
        return {"previous": checkpoint_path(n - 1)}
    return {}


def base_checkpoint_input(wildcards):
    base = training_cfg()["base_checkpoint"]
    if int(wildcards.n) == 0 and base:
        return {"base": base}
    return {}


def final_checkpoint():
    return checkpoint_path(n_chunks() - 1)


def training_uses_gpu():
    return training_cfg()["device"] == "cuda"


def train_gpu(wildcards):
    """GPUs for a training job: 1 with `training.device: cuda`, else 0."""
    return 1 if training_uses_gpu() else 0


def train_mem_mb(wildcards):
    """`training.mem_mb` if set, else the preset/batch estimate plus headroom."""
    from workflow_scripts.piper_train import estimate_memory_mb

    cfg = training_cfg()
    if cfg["mem_mb"]:
        return int(cfg["mem_mb"])
    return int(
        1.3
        * estimate_memory_mb(cfg["preset"], int(cfg["batch_size"]), cfg["max_clip_s"])
    )


def train_runtime(wildcards):
    """Minutes for one chunk: `training.chunk_runtime_min`."""
    return int(training_cfg()["chunk_runtime_min"])


def voice_sample_rate():
    from workflow_scripts.piper_train import preset_sample_rate

    return preset_sample_rate(training_cfg()["preset"])


wildcard_constraints:
    n=r"\d+",


rule piper_dataset:
    """metadata.csv -> Piper's dataset.csv + wavs/ at the preset rate + a preflight report."""
    input:
        metadata=dataset_path("metadata.csv"),
        clips=all_clip_dirs(),
    output:
        csv=dataset_path("piper/dataset.csv"),
        wavs=directory(dataset_path("piper/wavs")),
        preflight_json=dataset_path("piper/preflight.json"),
        preflight_md=dataset_path("piper/preflight.md"),
    log:
        log_path("piper_dataset", "dataset"),
    benchmark:
        benchmark_path("piper_dataset", "dataset")
    conda:
        "../envs/piper.yaml"
    envmodules:
        env_module("piper"),
    threads: 1
    resources:
        mem_mb=2000,
        runtime=30,
    params:
        cfg=training_cfg(),
        processed_dir=dataset_path("processed"),
        source_rate=config["sample_rate"],
    script:
        "../workflow_scripts/piper_dataset.py"


rule train_chunk:
    """Train `checkpoint_every` more epochs on top of the previous chunk (or base)."""
    input:
        unpack(previous_checkpoint),
        unpack(base_checkpoint_input),
        csv=dataset_path("piper/dataset.csv"),
        wavs=dataset_path("piper/wavs"),
        preflight=dataset_path("piper/preflight.json"),
    output:
        ckpt=dataset_path("checkpoints/chunk_{n}.ckpt"),
    log:
        log_path("train_chunk", "chunk_{n}"),
    benchmark:
        benchmark_path("train_chunk", "chunk_{n}")
    conda:
        "../envs/piper.yaml"
    envmodules:
        env_module("piper"),
    threads: training_cfg()["threads"]
    resources:
        mem_mb=train_mem_mb,
        runtime=train_runtime,
        gpu=train_gpu,
    params:
        cfg=training_cfg(),
    script:
        "../workflow_scripts/piper_train.py"


rule export_voice:
    """The last chunk's checkpoint -> voice.onnx + voice.onnx.json (legacy ONNX exporter)."""
    input:
        ckpt=final_checkpoint(),
    output:
        onnx=dataset_path("voice/voice.onnx"),
        json=dataset_path("voice/voice.onnx.json"),
    log:
        log_path("export_voice", "voice"),
    benchmark:
        benchmark_path("export_voice", "voice")
    conda:
        "../envs/piper.yaml"
    envmodules:
        env_module("piper"),
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    params:
        espeak_voice=training_cfg()["espeak_voice"],
        quality=training_cfg()["preset"],
        dataset_name=training_cfg()["voice_name"],
    script:
        "../workflow_scripts/piper_export.py"


rule smoke_test:
    """Synthesise fixed sentences with piper; fail on missing/silent/wrong-rate audio."""
    input:
        onnx=dataset_path("voice/voice.onnx"),
        json=dataset_path("voice/voice.onnx.json"),
    output:
        wav=dataset_path("voice/smoke_test.wav"),
        report=dataset_path("voice/smoke_test.json"),
    log:
        log_path("smoke_test", "voice"),
    benchmark:
        benchmark_path("smoke_test", "voice")
    conda:
        "../envs/piper.yaml"
    envmodules:
        env_module("piper"),
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        sentences=training_cfg()["smoke_sentences"],
        sample_rate=voice_sample_rate(),
    script:
        "../workflow_scripts/piper_export.py"
