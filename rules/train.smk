# Piper dataset, chunked training, ONNX export and smoke test (all in the piper env).
#
# Training runs as a chain of `train_chunk` jobs, each `training.checkpoint_every` epochs:
# chunk n reads chunk n-1's checkpoint, so a killed run loses at most one chunk and
# `snakemake` simply continues from the last finished chunk. Raising `training.epochs`
# later adds chunks on top of the existing ones (`epochs` is no param of any job); changing
# `checkpoint_every` reruns every chunk (the warning below says so). The helpers live in
# workflow_scripts/piper_train.py (TrainingPlan): Snakemake's linter wants no `def` here.
import sys

from workflow_scripts.piper_train import TrainingPlan

TRAINING = TrainingPlan(config["training"], dataset_path)
STALE_CHUNKS = TRAINING.stale_chunks_message()
if STALE_CHUNKS:
    print(f"piper-voice-workflow: WARNING: {STALE_CHUNKS}", file=sys.stderr)
# The names other rule files (and `rule all`) use: n_chunks(), checkpoint_path(n),
# previous_checkpoint(wildcards) (input function: chunk n-1, or the base for chunk 0),
# final_checkpoint() (the last chunk's checkpoint).
n_chunks = TRAINING.n_chunks
checkpoint_path = TRAINING.checkpoint_path
previous_checkpoint = TRAINING.previous_checkpoint
final_checkpoint = TRAINING.final_checkpoint


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
        cfg=TRAINING.dataset_params(),
        source_rate=config["sample_rate"],
    script:
        "../workflow_scripts/piper_dataset.py"


rule train_chunk:
    """Train `checkpoint_every` more epochs on top of the previous chunk (or base)."""
    input:
        unpack(previous_checkpoint),
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
    threads: config["training"]["threads"]
    resources:
        mem_mb=TRAINING.mem_mb,
        runtime=TRAINING.runtime,
        gpu=TRAINING.gpu,
    params:
        cfg=TRAINING.chunk_params(),
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
        espeak_voice=config["training"]["espeak_voice"],
        quality=config["training"]["preset"],
        dataset_name=config["training"]["voice_name"],
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
        sentences=config["training"]["smoke_sentences"],
        sample_rate=TRAINING.sample_rate(),
    script:
        "../workflow_scripts/piper_export.py"
