"""Per-clip audio quality (DNSMOS) and speaker embeddings: one job per recording.

Input: the recording's clips directory (``clips.tsv`` with a ``clip`` column, 16-bit mono
WAVs at 22050 Hz beside it, as preprocess_clips writes them). Outputs (both written
atomically; rows in ``clips.tsv`` order):

* ``scores.jsonl``: one JSON object per clip::

      {"clip": "rec_00001.wav", "duration_s": 3.42,
       "dnsmos": {"sig": 3.51, "bak": 4.02, "ovrl": 3.24, "p808": 3.97}, "voiced": true}

  (``dnsmos`` values None for a clip under 10 ms; ``voiced`` false when the speaker
  encoder found no voice, its embedding row is then all zeros)
* ``embeddings.npy``: float32 array (clips x 256), L2-normed Resemblyzer embeddings.

Both models are loaded once per job (workflow_scripts/audio_quality.py,
workflow_scripts/speaker_similarity.py), and not at all for a recording without clips
(its outputs are empty: no line, a 0 x 256 array). ``threads`` sets onnxruntime's and
torch's intra-op threads. Optional ``params.cfg``: ``device`` (``auto``: CUDA when
available, ``cpu``), ``max_windows`` (DNSMOS windows per clip, null = all, as
speechmos/DNSMOS itself).

CLI (tests, benches): ``python -m workflow_scripts.score_clips CLIPS_DIR OUT_SCORES OUT_EMB
[--threads N] [--max-windows N] [--device auto|cpu|cuda] [--log FILE]``.
"""
from __future__ import annotations

import csv
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

if "snakemake" in globals():  # run by Snakemake's script: directive from a copy of this file
    sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parent))  # noqa: F821

from workflow_scripts.io_utils import Progress, StageError, atomic_path, run_stage  # noqa: E402

EMBED_DIM = 256
DEFAULTS = {"device": "auto", "max_windows": None}


def read_clip_names(clips_dir: str | os.PathLike) -> list[str]:
    """The ``clip`` column of ``clips_dir/clips.tsv``, in order."""
    table = Path(clips_dir) / "clips.tsv"
    if not table.exists():
        raise StageError(f"{table}: missing (the clips directory has no clips.tsv)")
    with open(table, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh, delimiter="\t")
        if not reader.fieldnames or "clip" not in reader.fieldnames:
            raise StageError(f"{table}: no 'clip' column (columns: {reader.fieldnames})")
        names = [row["clip"] for row in reader if row.get("clip")]
    for name in names:
        if not (Path(clips_dir) / name).is_file():
            raise StageError(f"{Path(clips_dir) / name}: listed in clips.tsv but missing")
    return names


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


def resolve_device(device: str) -> str:
    if device not in ("auto", "cpu", "cuda"):
        raise StageError(f"device {device!r}: expected auto, cpu or cuda")
    if device == "auto":
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def score_recording(clips_dir: str | os.PathLike, log, threads: int = 1, cfg: dict | None = None) -> tuple[list[dict], np.ndarray]:
    """(records, embeddings) for every clip of ``clips_dir`` in clips.tsv order."""
    cfg = {**DEFAULTS, **(cfg or {})}
    clips_dir = Path(clips_dir)
    names = read_clip_names(clips_dir)
    if not names:
        log.info("%s: no clips (no model loaded)", clips_dir / "clips.tsv")
        return [], np.zeros((0, EMBED_DIM), np.float32)
    durations = [clip_seconds(clips_dir / name) for name in names]  # an unreadable file fails before models load
    from workflow_scripts.audio_quality import SR, DnsmosScorer, providers, to_16k
    from workflow_scripts.speaker_similarity import SpeakerEncoder

    device = resolve_device(str(cfg["device"]))
    t0 = time.monotonic()
    dnsmos = DnsmosScorer(threads=threads, use_providers=None if device == "cuda" else ["CPUExecutionProvider"],
                          max_windows=cfg["max_windows"])
    encoder = SpeakerEncoder(device=device, threads=threads)
    log.info("models loaded in %.1f s: DNSMOS on %s (max_windows %s), speaker encoder on %s; %d threads",
             time.monotonic() - t0, dnsmos.providers[0], cfg["max_windows"], device, threads)
    if device == "cuda" and "CUDAExecutionProvider" not in providers():
        log.warning("onnxruntime has no CUDA provider here: DNSMOS runs on CPU")
    total = sum(durations)
    progress = Progress(total, f"score {clips_dir.parent.name}", log)
    records, embs = [], np.zeros((len(names), EMBED_DIM), np.float32)
    t1 = time.monotonic()
    for i, (name, dur) in enumerate(zip(names, durations)):
        audio, sr = read_clip(clips_dir / name)
        a16 = to_16k(audio, sr)
        scores = dnsmos.score(a16, SR)
        embs[i] = encoder.embed(a16, SR)
        records.append({"clip": name, "duration_s": round(dur, 3), "dnsmos": scores, "voiced": bool(np.any(embs[i]))})
        progress.update(dur)
    elapsed = time.monotonic() - t1
    log.info("scored %d clips (%.1f s of audio) in %.1f s (%.1fx realtime)", len(names), total, elapsed,
             total / max(elapsed, 1e-9))
    return records, embs


def write_outputs(records: list[dict], embeddings: np.ndarray, scores_path, emb_path) -> None:
    with atomic_path(scores_path) as tmp:
        with open(tmp, "w", encoding="utf-8") as fh:
            for rec in records:
                fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
    with atomic_path(emb_path) as tmp:
        with open(tmp, "wb") as fh:  # a file object: np.save would append .npy to the temp name
            np.save(fh, np.ascontiguousarray(embeddings, dtype=np.float32))


def main(snakemake, log) -> None:
    threads = int(getattr(snakemake, "threads", 1) or 1)
    params = getattr(snakemake, "params", None)
    cfg = dict(getattr(params, "cfg", None) or {}) if params is not None else {}
    records, embs = score_recording(snakemake.input.clips, log, threads, cfg)
    write_outputs(records, embs, snakemake.output.scores, snakemake.output.embeddings)
    log.info("wrote %s and %s", snakemake.output.scores, snakemake.output.embeddings)


def cli(argv: list[str] | None = None) -> int:
    import argparse

    from workflow_scripts.io_utils import run_cli

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("clips_dir")
    ap.add_argument("scores")
    ap.add_argument("embeddings")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--max-windows", type=int, default=None)
    ap.add_argument("--log", default=None)
    args = ap.parse_args(argv)

    def work(log) -> None:
        records, embs = score_recording(args.clips_dir, log, args.threads,
                                        {"device": args.device, "max_windows": args.max_windows})
        write_outputs(records, embs, args.scores, args.embeddings)

    return run_cli(work, args.log)


if "snakemake" in globals():
    run_stage(snakemake, main)  # noqa: F821
elif __name__ == "__main__":
    sys.exit(cli())
