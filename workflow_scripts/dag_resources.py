"""What each job asks the scheduler for (``resources: mem_mb / runtime / gpu``): the DAG's
resource arithmetic in one place. rules/common.smk binds these pure functions to the
validated config and to a shard's estimated audio (``seconds``: its total; ``longest_s``: its
longest member, since members are processed one at a time). Memory in MB, runtime in
minutes, always generous: a job killed for its limits costs more than an idle reservation.

The training chain's own arithmetic (chunks, epochs, checkpoint memory) is
piper_train.TrainingPlan's, the evaluation's evaluation_plan.EvaluationPlan's.
"""


def stem_mb(seconds: float, sample_rate: int) -> float:
    """MB of a mono s16 stem at the pipeline rate."""
    return seconds * 2 * sample_rate / 1e6


def audio_job_mem_mb(longest_s: float, sample_rate: int) -> int:
    """Segmentation and clip preprocessing hold the int16 stem plus a float64 block: a few
    times the WAV size."""
    return int(600 + 4 * stem_mb(longest_s, sample_rate))


def audio_job_runtime(seconds: float) -> int:
    """Segmentation and clips run at ~100x realtime: 20x is generous; never under 10 min."""
    return int(10 + seconds / 60 / 20)


def ingest_runtime(seconds: float) -> int:
    """ffmpeg decodes and sha256 hashes at well over 10x realtime."""
    return int(10 + seconds / 60 / 10)


def gpus(device: str) -> int:
    """The SLURM ``gpu`` resource: 1 when a stage's device is cuda (auto asks for none)."""
    return 1 if device == "cuda" else 0


def separation_mem_mb(method: str, chunk_s: float, configured_mb: int) -> int:
    """The configured mem_mb, raised to what one chunk needs. Measured with the full-size
    2stems U-Net (bench/bench_separation.py): ~1.2 GB + ~14-17 MB per chunk second (TF keeps
    every STFT/mask tensor of a chunk); Demucs splits internally and needs less."""
    per_s = 20 if method == "spleeter" else 10
    return int(max(int(configured_mb), 1500 + per_s * float(chunk_s)))


def separation_runtime(seconds: float, method: str, device: str, threads: int) -> int:
    """CPU Spleeter ~0.5 s, Demucs (htdemucs) ~3 s per audio second on 2 cores, doubled;
    a GPU ~0.1 s; plus start-up."""
    if device == "cuda":
        per_s = 0.1
    elif method == "demucs":
        per_s = 3.0
    else:
        per_s = 0.5
    return int(15 + seconds * per_s * 2 * 2 / max(1, int(threads)) / 60)


def transcription_mem_mb(env: str, decode_workers: int) -> int:
    """Per decoding process: the model + one block of the stem at 16 kHz float32 (+ torch
    for WhisperX's aligner)."""
    base = 6000 if env == "whisperx" else 1500
    return (base + 600) * int(decode_workers)


def transcription_runtime(seconds: float) -> int:
    """CPU tiny.en int8 runs ~10x realtime on 2 loaded cores; larger models slower."""
    return int(15 + seconds / 60)


def scoring_mem_mb(threads: int) -> int:
    """Per scoring process (one per thread on a CPU): torch + the two ONNX sessions, ~0.9 GB."""
    return 1000 * int(threads) + 200


def scoring_runtime(seconds: float) -> int:
    """DNSMOS with one window per clip runs ~7x realtime per CPU core: 3x is generous."""
    return int(15 + seconds / 60 / 3)
