# Piper dataset, chunked training, ONNX export and smoke test (all in the piper env).
#
# Training runs as a chain of `train_chunk` jobs, each `training.checkpoint_every` epochs:
# chunk n reads chunk n-1's full state, so a killed run loses at most one chunk and
# `snakemake` simply continues from the last finished chunk. Raising `training.epochs`
# later adds chunks on top of the existing ones (`epochs` is no param of any job); changing
# `checkpoint_every` reruns every chunk (the warning below says so). The helpers live in
# workflow_scripts/piper_train.py (TrainingPlan): Snakemake's linter wants no `def` here.
#
# Checkpoint disk: each chunk writes its full state (chunk_{n}.ckpt, ~846 MB for medium:
# resume only) and its generator weights (chunk_{n}.weights.ckpt, 95 MB: export and
# evaluation); every chunk's weights are kept, full states only for the newest two chunks.
import sys

from workflow_scripts.piper_train import TrainingPlan

TRAINING = TrainingPlan(config["training"], dataset_path)
STALE_CHUNKS = TRAINING.stale_chunks_message()
if STALE_CHUNKS:
    print(f"piper-voice-workflow: WARNING: {STALE_CHUNKS}", file=sys.stderr)
# The names other rule files (and `rule all`) use: n_chunks(); chunk_weights(n), chunk n's
# generator weights, the stable per-chunk output to export or evaluate a chunk from (kept
# for every chunk); all_chunk_weights(), final_chunk_weights() (the last chunk's);
# chunk_state(n), chunk n's full state (resume only: do not read it elsewhere, it is
# deleted two chunks later); previous_state(wildcards) (input function: chunk n-1's full
# state, or the base for chunk 0).
n_chunks = TRAINING.n_chunks
chunk_weights = TRAINING.weights_path
all_chunk_weights = TRAINING.all_weights
final_chunk_weights = TRAINING.final_weights
chunk_state = TRAINING.state_path
previous_state = TRAINING.previous_state


wildcard_constraints:
    n=r"\d+",


rule piper_dataset:
    """metadata.csv -> Piper's dataset.csv + wavs/ at the preset rate + a preflight report."""
    input:
        metadata=dataset_path("metadata.csv"),
        clips=all_clip_dirs(),
        recut=recut_dirs(),
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
    """Train `checkpoint_every` more epochs on top of the previous chunk's full state (or the
    base); write this chunk's full state and its generator weights.

    Disk stays bounded without temp(): Snakemake deletes a temp file once no job of the
    current run needs it, so the newest state (needed only by a later run with more epochs)
    would go at the end of every run and raising `epochs` would rerun every chunk to rebuild
    the chain. Instead the job itself, when it starts, deletes the full states older than
    its input (chunk n-2 and before): Snakemake has recorded chunk n-1 as complete by then,
    so no rerun needs them. Snakemake plans a job whose output is missing only when a job
    that runs needs that file, and only the next chunk reads a state, so a deleted state
    plans nothing: after a run `snakemake -n` is empty, more epochs plan only the new
    chunks. A kill -9 at any moment (even between a chunk's end and Snakemake's record of
    it) leaves the interrupted chunk's input on disk. Everything downstream (export, the
    report, per-chunk evaluation) reads the weights, which are kept for every chunk.
    """
    input:
        unpack(previous_state),
        csv=dataset_path("piper/dataset.csv"),
        wavs=dataset_path("piper/wavs"),
        preflight=dataset_path("piper/preflight.json"),
    output:
        state=dataset_path("checkpoints/chunk_{n}.ckpt"),
        weights=dataset_path("checkpoints/chunk_{n}.weights.ckpt"),
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
    """The chunk `voice/selection.json` names (training.export: best or last): its generator
    weights -> voice.onnx + voice.onnx.json (legacy ONNX exporter)."""
    input:
        weights=all_chunk_weights(),
        selection=dataset_path("voice/selection.json"),
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
    """Synthesise fixed sentences with piper; fail on missing/silent/wrong-rate audio; report
    the exported chunk's intelligibility from its evaluation (not intelligible: ok false).
    """
    input:
        onnx=dataset_path("voice/voice.onnx"),
        json=dataset_path("voice/voice.onnx.json"),
        selection=dataset_path("voice/selection.json"),
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
