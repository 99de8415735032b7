"""Per-clip audio quality (DNSMOS) and speaker embeddings: one job per shard of recordings.

Input: the recording's clips directory (``clips.tsv`` with a ``clip`` column, 16-bit mono
WAVs at 22050 Hz beside it, as preprocess_clips writes them). Outputs (both written
atomically; rows in ``clips.tsv`` order):

* ``scores.jsonl``: one JSON object per clip::

      {"clip": "rec_00001.wav", "duration_s": 3.42,
       "dnsmos": {"sig": 3.51, "bak": 4.02, "ovrl": 3.24, "p808": 3.97}, "voiced": true}

  (``dnsmos`` null when quality.enabled is false, its values None for a clip under 10 ms;
  ``voiced`` false when the speaker encoder found no voice: its embedding row is then zeros;
  a clip of several parts, ``joins_s`` in clips.tsv (joined segments, seams inside one), also has
  ``part_embeddings``: the embedding of each part of at least MIN_PART_S (0.25 s), 5 decimals,
  and ``part_seconds``, each such part's length, so the speaker gate can check every part's
  voice, a short answer of another voice too); a clip of two speaker-encoder windows or more
  (1.6 s of voiced audio each, 1.3 per second) also has ``window_embeddings``, each window's
  embedding, 3 decimals, so the gate can find a turn of another voice inside a phrase, and
  ``window_spans_s``, where each window lies in the clip: [start, end] seconds, 3 decimals)
* ``embeddings.npy``: float32 array (clips x 256), L2-normed Resemblyzer embeddings.

Both models are loaded once per process (workflow_scripts/audio_quality.py,
workflow_scripts/speaker_similarity.py), and not at all for a recording without clips
(its outputs are empty: no line, a 0 x 256 array). ``params.cfg``: ``device`` (``auto``:
CUDA when available), ``dnsmos`` (score DNSMOS or not), ``max_windows`` (DNSMOS windows per
clip, null = all, as DNSMOS itself), ``short_clip_input_s`` (with max_windows set, a clip
under 9.01 s is scored once, tiled by doubling up to that many seconds: 9.01 = one window,
as DNSMOS tiles it);
``precision`` (``auto``: the P.835 convolutions and the speaker encoder in bfloat16 on a CPU
with native bf16, else fp32 = DNSMOS's and Resemblyzer's own numbers); ``threads`` scoring
processes on a CPU, each with one BLAS thread.

CLI (tests, benches): ``python -m workflow_scripts.score_clips CLIPS_DIR OUT_SCORES OUT_EMB
[--threads N] [--max-windows N] [--no-dnsmos] [--device auto|cpu|cuda] [--precision auto|fp32|bf16]
[--log FILE]``.
"""

import json
import math
import os
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

# numpy's BLAS (the mel filter banks' matrix products) otherwise starts a thread per core in
# every scoring process: two processes on two cores then fight over them (~1.45x slower each).
# This process scores clips beside the ones it starts, so it takes one BLAS thread too (read
# when numpy loads, hence before the import; Snakemake sets them to the job's threads).
BLAS_THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
if "snakemake" in globals() or __name__ == "__main__":
    os.environ.update({_var: "1" for _var in BLAS_THREAD_VARS})

import numpy as np  # noqa: E402

if "snakemake" in globals():  # run by Snakemake's script: directive from a copy of this file
    sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parent))  # noqa: F821

from workflow_scripts.audio_quality import PRECISIONS  # noqa: E402  (numpy only at import)
from workflow_scripts.clip_gates import MIN_PART_S  # noqa: E402
from workflow_scripts.io_utils import Progress, StageError, atomic_path, read_clips_table, run_stage  # noqa: E402

EMBED_DIM = 256
# Audio per extra scoring process: each pays ~2-3 s to start (imports, models), in parallel
# with this process, which scores from the start. At 15-30x realtime per core (fp32) 2 min of
# clips are 4-8 s of work; in bf16 on a CPU with AMX ~100x, and a second process still pays
# off from there, barely (the 168 s of clips of bench_dataset's read: 3.6 s against 3.9 s;
# its 1141 s of long: 9.4 s against 14.9 s).
AUDIO_S_PER_WORKER = 120.0
# The clips are handed out in runs of about this much audio, to whichever process is free:
# the processes start at different times and finish together.
CHUNK_S = 20.0


def read_clip_list(clips_dir: str | os.PathLike) -> tuple[list[str], list[list[float]]]:
    """The ``clip`` column of ``clips_dir/clips.tsv``, in order, and per clip the seconds into
    it where each part after the first begins (``joins_s``; [] for a clip of one part
    or an older table)."""
    rows = [row for row in read_clips_table(clips_dir) if row.get("clip")]
    for row in rows:
        if not (Path(clips_dir) / row["clip"]).is_file():
            raise StageError(f"{Path(clips_dir) / row['clip']}: listed in clips.tsv but missing")
    return [r["clip"] for r in rows], [[float(x) for x in (r.get("joins_s") or "").split(";") if x] for r in rows]


def read_clip_names(clips_dir: str | os.PathLike) -> list[str]:
    """The ``clip`` column of ``clips_dir/clips.tsv``, in order."""
    return read_clip_list(clips_dir)[0]


def split_at(audio: np.ndarray, sr: int, joins: list[float]) -> list[np.ndarray]:
    """``audio`` cut at the ``joins`` (seconds): the clip's parts, in order."""
    cuts = [min(max(int(round(t * sr)), 0), len(audio)) for t in joins]
    return [part for part in np.split(audio, cuts) if len(part)]


def clip_seconds(path: Path) -> float:
    import soundfile as sf

    try:
        info = sf.info(str(path))
    except Exception as exc:  # noqa: BLE001 - soundfile raises several types
        raise StageError(f"{path}: cannot read ({exc})") from exc
    return info.frames / info.samplerate


def read_clip(path: Path) -> tuple[np.ndarray, int]:
    import soundfile as sf

    try:
        audio, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:  # noqa: BLE001 - soundfile raises several types
        raise StageError(f"{path}: cannot read ({exc})") from exc
    return audio.mean(axis=1), sr


# What an NVIDIA driver puts on a Linux host, in a GPU container, or under WSL2.
NVIDIA_DEVICE_PATHS = ("/proc/driver/nvidia/version", "/dev/nvidia0", "/dev/dxg")


def resolve_device(device: str) -> str:
    if device not in ("auto", "cpu", "cuda"):
        raise StageError(f"device {device!r}: expected auto, cpu or cuda")
    if device == "auto":
        if not any(Path(p).exists() for p in NVIDIA_DEVICE_PATHS):
            return "cpu"  # no NVIDIA driver: known without importing torch (~1.3 s before the processes start)
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def resolve_precision(precision: str, device: str) -> str:
    """``auto``: bf16 on a CPU that computes it natively (workflow_scripts/dnsmos_p835.py), else
    fp32; ``bf16`` is refused where it would be emulated (many times slower)."""
    if precision not in ("auto", *PRECISIONS):
        raise StageError(f"precision {precision!r}: expected auto, fp32 or bf16")
    if precision == "fp32" or device == "cuda":
        return "fp32"
    from workflow_scripts.dnsmos_p835 import native_bf16

    if native_bf16():
        return "bf16"
    if precision == "bf16":
        raise StageError("quality.precision bf16: this CPU has no native bfloat16 (AVX512-BF16 or AMX); use auto or fp32")
    return "fp32"


@dataclass(frozen=True)
class ScoreOptions:
    """What a scoring process needs: the models' device and DNSMOS settings (quality.*)."""

    device: str  # cpu or cuda (resolved)
    dnsmos: bool  # False: no DNSMOS (quality.enabled false), embeddings only
    max_windows: int | None
    short_clip_input_s: float  # with max_windows set: a shorter clip is tiled up to this, scored once
    threads: int  # intra-op threads of each process
    precision: str  # fp32 or bf16 (resolved): DNSMOS P.835's convolutions and the speaker encoder


_MODELS: dict = {}


def describe_models(opts: ScoreOptions, provider: str | None = None) -> str:
    """The models' settings as the log states them (``provider``: DNSMOS' onnxruntime provider)."""
    from workflow_scripts.audio_quality import WINDOW_S

    if not opts.dnsmos:
        dnsmos = "DNSMOS off"
    else:
        own = opts.max_windows and opts.short_clip_input_s < WINDOW_S
        shorter = f"their own length, at least {opts.short_clip_input_s:g} s" if own else "9.01 s"
        dnsmos = (f"DNSMOS {provider or 'CPUExecutionProvider'} (max_windows {opts.max_windows}, "
                  f"shorter clips fed at {shorter})")
    arithmetic = "P.835 and speaker encoder in bf16" if opts.precision == "bf16" else "fp32"
    return f"{dnsmos}, speaker encoder on {opts.device}; {arithmetic}, {opts.threads} thread(s) per process"


def _load_models(opts: ScoreOptions, log=None) -> dict:
    """DNSMOS sessions and the speaker encoder, once per process."""
    if _MODELS.get("opts") == opts:
        return _MODELS
    from workflow_scripts.audio_quality import WINDOW_S, DnsmosScorer, providers
    from workflow_scripts.speaker_similarity import SpeakerEncoder

    t0 = time.monotonic()
    dnsmos = None
    if opts.dnsmos:
        # max_windows null: DNSMOS exactly (short clips tiled to 9.01 s, every hop scored)
        dnsmos = DnsmosScorer(threads=opts.threads, max_windows=opts.max_windows,
                              min_seconds=opts.short_clip_input_s if opts.max_windows else WINDOW_S,
                              precision=opts.precision,
                              use_providers=None if opts.device == "cuda" else ["CPUExecutionProvider"])
        if log and opts.device == "cuda" and "CUDAExecutionProvider" not in providers():
            log.warning("onnxruntime has no CUDA provider here: DNSMOS runs on CPU")
    encoder = SpeakerEncoder(device=opts.device, threads=opts.threads, precision=opts.precision)
    if log:
        log.info("models loaded in %.1f s: %s", time.monotonic() - t0,
                 describe_models(opts, dnsmos.providers[0] if dnsmos else None))
    _MODELS.clear()
    _MODELS.update(opts=opts, dnsmos=dnsmos, encoder=encoder)
    return _MODELS


def score_clips(clips_dir: Path, names: list[str], durations: list[float], joins: list[list[float]],
                opts: ScoreOptions, on_clip=None, log=None) -> tuple[list[dict], np.ndarray]:
    """Records and embeddings of ``names`` (in order), the models loaded once in this process."""
    from workflow_scripts.audio_quality import SR, to_16k

    models = _load_models(opts, log)
    records, embs = [], np.zeros((len(names), EMBED_DIM), np.float32)
    for i, (name, dur, cuts) in enumerate(zip(names, durations, joins)):
        audio, sr = read_clip(clips_dir / name)
        a16 = to_16k(audio, sr)
        scores = models["dnsmos"].score(a16, SR) if models["dnsmos"] else None
        embs[i], windows, spans = models["encoder"].embed_with_window_spans(a16, SR)
        record = {"clip": name, "duration_s": round(dur, 3), "dnsmos": scores, "voiced": bool(np.any(embs[i]))}
        if len(windows) >= 2:
            record["window_embeddings"] = np.round(windows.astype(np.float64), 3).tolist()
            record["window_spans_s"] = np.round(spans, 3).tolist()
        if cuts:  # a clip of several parts: each part's voice too (the speaker gate checks them)
            parts = [part for part in split_at(a16, SR, cuts) if len(part) >= MIN_PART_S * SR]
            record["part_embeddings"] = [[round(float(x), 5) for x in models["encoder"].embed(part, SR)] for part in parts]
            record["part_seconds"] = [round(len(part) / SR, 3) for part in parts]
        records.append(record)
        if on_clip:
            on_clip(dur)
    return records, embs


_SHARED: dict = {}


def _init_worker(done, taken) -> None:
    _SHARED.update(done=done, taken=taken)


def plan_chunks(durations: list[float], chunk_s: float = CHUNK_S) -> list[tuple[int, int]]:
    """[start, end) index ranges of consecutive clips, each about ``chunk_s`` of audio (at least one clip)."""
    chunks, start, acc = [], 0, 0.0
    for i, d in enumerate(durations):
        acc += d
        if acc >= chunk_s:
            chunks.append((start, i + 1))
            start, acc = i + 1, 0.0
    if start < len(durations):
        chunks.append((start, len(durations)))
    return chunks


def _score_chunks(chunks: list[list[tuple[Path, list[str], list[float]]]], opts: ScoreOptions, on_chunk=None) -> dict:
    """Score chunks (runs of clips of one or more recordings) until none is left: {chunk index: results};
    the next chunk's index comes from the shared counter, so every process takes the next free one."""
    done, taken = _SHARED["done"], _SHARED["taken"]

    def on_clip(seconds: float) -> None:
        with done.get_lock():
            done.value += seconds

    out = {}
    while True:
        with taken.get_lock():
            k = taken.value
            taken.value += 1
        if k >= len(chunks):
            return out
        out[k] = [score_clips(d, names, durs, joins, opts, on_clip) for d, names, durs, joins in chunks[k]]
        if on_chunk:
            on_chunk()


def score_recording(clips_dir: str | os.PathLike, log, threads: int, cfg: dict) -> tuple[list[dict], np.ndarray]:
    """(records, embeddings) for every clip of ``clips_dir`` in clips.tsv order (see score_shard)."""
    out: dict = {}
    score_shard([("rec", clips_dir)], log, threads, cfg, lambda n, r, e: out.__setitem__(n, (r, e)), raise_errors=True)
    return out["rec"]


def score_shard(members: list[tuple[str, str | os.PathLike]], log, threads: int, cfg: dict, on_done,
                raise_errors: bool = False) -> list[str]:
    """Score the clips of recordings ``(name, clips_dir)``; ``on_done(name, records,
    embeddings)`` for each (``members`` order); returns the names that failed (errors logged).

    ``cfg``: ``device`` (auto|cpu|cuda), ``dnsmos`` (bool), ``max_windows`` (int or None),
    ``short_clip_input_s`` (float), ``precision`` (auto|fp32|bf16, see resolve_precision).
    On a CPU with ``threads`` > 1 the clips of all the recordings are scored by ``threads``
    processes with one thread each (DNSMOS' convolutions gain little from a second intra-op
    thread, a second process doubles the rate): this one and the ones it starts, each taking
    the next run of CHUNK_S of clips when it is free, at most one process per
    AUDIO_S_PER_WORKER of audio (a process pays ~3 s to import torch and load the models).
    Every clip's scores are the same whichever process scored it, so a recording's scores do
    not depend on its shard nor on which process was first. On a GPU one process.
    """
    planned, failed = [], []
    for name, clips_dir in members:
        clips_dir = Path(clips_dir)
        try:
            names, joins = read_clip_list(clips_dir)
            # an unreadable file fails before models load
            planned.append((name, clips_dir, names, [clip_seconds(clips_dir / n) for n in names], joins))
        except StageError as exc:
            if raise_errors:
                raise
            log.error("%s", exc)
            failed.append(name)
    for name, clips_dir, names, *_ in planned:
        if not names:
            log.info("%s: no clips (no model loaded for it)", clips_dir / "clips.tsv")
            on_done(name, [], np.zeros((0, EMBED_DIM), np.float32))
    planned = [p for p in planned if p[2]]
    if not planned:
        return failed
    durations = [d for p in planned for d in p[3]]
    device = resolve_device(str(cfg["device"]))
    total = sum(durations)
    workers = 1 if device == "cuda" else max(1, min(int(threads), len(durations), math.ceil(total / AUDIO_S_PER_WORKER)))
    # one intra-op thread per process: DNSMOS' convolutions gain ~15 % from a second thread on
    # an idle machine and lose several times that when the cores are shared (threads wait on
    # one another at every operator); parallelism comes from processes
    opts = ScoreOptions(device, bool(cfg["dnsmos"]), cfg["max_windows"], float(cfg["short_clip_input_s"]), 1,
                        resolve_precision(str(cfg["precision"]), device))
    progress = Progress(total, "score", log)
    t1 = time.monotonic()
    if workers == 1:
        for name, clips_dir, names, durs, joins in planned:
            on_done(name, *score_clips(clips_dir, names, durs, joins, opts, progress.update, log))
    else:
        log.info("%d scoring processes (this one and %d more), models loaded in each: %s", workers, workers - 1,
                 describe_models(opts))
        for name, records, embs in _score_in_workers(planned, opts, workers, progress):
            on_done(name, records, embs)
    elapsed = time.monotonic() - t1
    log.info("scored %d clips of %d recording(s) (%.1f s of audio) in %.1f s (%.1fx realtime)", len(durations),
             len(planned), total, elapsed, total / max(elapsed, 1e-9))
    return failed


@contextmanager
def one_blas_thread():
    """Processes started inside get one BLAS thread (the variables are read when numpy loads)."""
    saved = {k: os.environ.get(k) for k in BLAS_THREAD_VARS}
    os.environ.update({k: "1" for k in BLAS_THREAD_VARS})
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _score_in_workers(planned, opts: ScoreOptions, workers: int, progress):
    """(name, records, embeddings) per recording, its clips scored by this process and
    ``workers`` - 1 more, each taking the next chunk of clips (CHUNK_S) when it is free."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    flat = [(i, k) for i, p in enumerate(planned) for k in range(len(p[2]))]
    chunks = []  # per chunk: [(clips_dir, names, durations)] of each recording it touches
    for a, b in plan_chunks([planned[i][3][k] for i, k in flat]):
        runs: list[list[int]] = []
        for i, k in flat[a:b]:
            if runs and runs[-1][0] == i:
                runs[-1][2] = k + 1
            else:
                runs.append([i, k, k + 1])
        chunks.append([(i, x, y) for i, x, y in runs])
    work = [[(planned[i][1], planned[i][2][x:y], planned[i][3][x:y], planned[i][4][x:y]) for i, x, y in runs]
            for runs in chunks]
    ctx = mp.get_context("spawn")
    done, taken = ctx.Value("d", 0.0), ctx.Value("i", 0)
    reported = 0.0

    def pump() -> None:
        nonlocal reported
        if done.value > reported:
            progress.update(done.value - reported)
            reported = done.value

    with one_blas_thread(), ProcessPoolExecutor(workers - 1, mp_context=ctx, initializer=_init_worker,
                                                initargs=(done, taken)) as pool:
        futures = [pool.submit(_score_chunks, work, opts) for _ in range(workers - 1)]
        _init_worker(done, taken)
        results = _score_chunks(work, opts, pump)
        for f in futures:
            results.update(f.result())
    pump()
    per_rec: dict[int, list] = {}
    for k, runs in enumerate(chunks):
        for (i, _, _), part in zip(runs, results[k]):
            per_rec.setdefault(i, []).append(part)
    for i, (name, *_rest) in enumerate(planned):
        parts_i = per_rec[i]
        yield name, [r for recs, _ in parts_i for r in recs], np.concatenate([e for _, e in parts_i]).astype(np.float32)


def write_outputs(records: list[dict], embeddings: np.ndarray, scores_path, emb_path) -> None:
    with atomic_path(scores_path) as tmp:
        with open(tmp, "w", encoding="utf-8") as fh:
            for rec in records:
                fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
    with atomic_path(emb_path) as tmp:
        with open(tmp, "wb") as fh:  # a file object: np.save would append .npy to the temp name
            np.save(fh, np.ascontiguousarray(embeddings, dtype=np.float32))


def main(snakemake, log) -> None:
    """One shard (workflow_scripts/shards.py): every member's scores and embeddings."""
    from workflow_scripts.shards import member_log, member_log_path, member_outputs, out_dir_of, processed_path, write_manifest

    out_dir, recs = out_dir_of(snakemake.output.manifest), list(snakemake.params.recs)
    clips = member_outputs(snakemake.input.clips, "clips", recs)
    rows = []

    def done(rec: str, records: list[dict], embs: np.ndarray) -> None:
        scores, emb = processed_path(out_dir, rec, "scores.jsonl"), processed_path(out_dir, rec, "embeddings.npy")
        with member_log(log, member_log_path(out_dir, "score_clips", rec)):
            write_outputs(records, embs, scores, emb)
            log.info("recording %s: %d clips scored, wrote %s and %s", rec, len(records), scores, emb)
        rows.extend([(rec, "scores", scores), (rec, "embeddings", emb)])

    failed = score_shard(list(zip(recs, clips)), log, int(snakemake.threads), dict(snakemake.params.cfg), done)
    if failed:
        raise StageError(f"score_clips: {len(failed)} of {len(recs)} recording(s) failed: {', '.join(failed)}")
    write_manifest(snakemake.output.manifest, rows)


def cli(argv: list[str] | None = None) -> int:
    import argparse

    from workflow_scripts.io_utils import run_cli

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("clips_dir")
    ap.add_argument("scores")
    ap.add_argument("embeddings")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--max-windows", type=int, default=None, help="default: every window (exact DNSMOS)")
    ap.add_argument("--short-clip-input-s", type=float, default=9.01,
                    help="with --max-windows: a shorter clip is tiled up to this and scored once")
    ap.add_argument("--no-dnsmos", action="store_true", help="speaker embeddings only")
    ap.add_argument("--precision", default="auto", choices=("auto", *PRECISIONS))
    ap.add_argument("--log", default=None)
    args = ap.parse_args(argv)

    def work(log) -> None:
        records, embs = score_recording(args.clips_dir, log, args.threads,
                                        {"device": args.device, "dnsmos": not args.no_dnsmos,
                                         "max_windows": args.max_windows,
                                         "short_clip_input_s": args.short_clip_input_s, "precision": args.precision})
        write_outputs(records, embs, args.scores, args.embeddings)

    return run_cli(work, args.log)


if "snakemake" in globals():
    run_stage(snakemake, main)  # noqa: F821
elif __name__ == "__main__":
    sys.exit(cli())
