#!/usr/bin/env python3
"""Benchmark vocal separation: seconds per audio hour and peak memory, chunked vs whole-file.

Run it with the separator's venv python (Spleeter by default):

    $(python3 envs/setup_venvs.py --print-path spleeter)/bin/python bench/bench_separation.py --minutes 10
    $(python3 envs/setup_venvs.py --print-path demucs)/bin/python bench/bench_separation.py --method demucs --minutes 2

Without ``--model-dir`` a tiny random Spleeter model is built (tests/tiny_spleeter.py): it times
the plumbing (I/O, resampling, STFT, stitching), not a real U-Net; ``--full-size`` builds the
random model at the real 2stems size, so speed and memory match the pretrained model. Each mode runs in its own
child process on the same input so that ru_maxrss (peak RSS) belongs to that mode alone;
model load is timed apart from separation. Prints a table and writes JSON (``--json``).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def current_rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def make_input(path: Path, minutes: float, sr: int) -> None:
    """Synthetic speech-like mix written block by block (never whole in memory)."""
    import numpy as np
    import soundfile as sf

    n = int(minutes * 60 * sr)
    rng = np.random.default_rng(0)
    block = sr * 60
    with sf.SoundFile(str(path), "w", samplerate=sr, channels=1, subtype="PCM_16", format="WAV") as f:
        for s in range(0, n, block):
            t = np.arange(s, min(n, s + block)) / sr
            voice = 0.3 * np.sin(2 * np.pi * (220 * t + 3 * np.sin(2 * np.pi * 5 * t))) * (np.sin(2 * np.pi * 0.7 * t) > -0.3)
            band = 0.1 * (np.sin(2 * np.pi * 110 * t) + np.sin(2 * np.pi * 1320 * t))
            f.write((voice + band + 0.003 * rng.standard_normal(len(t))).astype("float32"))


def child(args) -> dict:
    """One mode in this process: load the model, separate, report."""
    from workflow_scripts.separation import make_backend, separate_file
    import soundfile as sf

    log = logging.getLogger("bench")
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    cfg = json.loads(args.cfg)
    info = sf.info(args.audio)
    audio_s = info.frames / info.samplerate
    rss0 = current_rss_mb()
    t0 = time.monotonic()
    backend = make_backend(cfg["method"], cfg, args.threads, log)
    load_s = time.monotonic() - t0
    rss_after_load = current_rss_mb()
    chunk_s = audio_s + 1 if args.mode == "whole" else cfg["chunk_s"]
    overlap_s = 0 if args.mode == "whole" else cfg["overlap_s"]
    tracemalloc.start()
    t1 = time.monotonic()
    stats = separate_file(args.audio, Path(args.workdir) / f"vocals_{args.mode}.wav", Path(args.workdir) / f"acc_{args.mode}.wav", backend, chunk_s, overlap_s, log)
    sep_s = time.monotonic() - t1
    _, py_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "mode": args.mode,
        "method": cfg["method"],
        "audio_s": round(audio_s, 2),
        "chunks": stats.n_chunks,
        "chunk_s": round(chunk_s, 1),
        "overlap_s": overlap_s,
        "load_s": round(load_s, 2),
        "separate_s": round(sep_s, 2),
        "s_per_audio_hour": round(sep_s / audio_s * 3600, 1),
        "realtime_x": round(audio_s / sep_s, 1),
        "rss_start_mb": round(rss0),
        "rss_after_load_mb": round(rss_after_load),
        "peak_rss_mb": round(rss_mb()),
        "tracemalloc_peak_mb": round(py_peak / 2**20, 1),
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--method", choices=["spleeter", "demucs"], default="spleeter")
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--sample-rate", type=int, default=22050, help="pipeline rate of the input")
    ap.add_argument("--chunk-s", type=float, default=120.0)
    ap.add_argument("--overlap-s", type=float, default=5.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--model-dir", default=None, help="Spleeter model_dir (default: build a tiny random model)")
    ap.add_argument("--full-size", action="store_true", help="build the random model at the real 2stems U-Net size")
    ap.add_argument("--model", default=None, help="Spleeter model (2stems) or Demucs model (demucs_unittest)")
    ap.add_argument("--demucs-repo", default="")
    ap.add_argument("--modes", default="chunked,whole")
    ap.add_argument("--json", default=None, help="write results here")
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--mode", help=argparse.SUPPRESS)
    ap.add_argument("--audio", help=argparse.SUPPRESS)
    ap.add_argument("--cfg", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.mode:  # child process
        print("RESULT " + json.dumps(child(args)), flush=True)
        return 0

    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench_sep."))
    work.mkdir(parents=True, exist_ok=True)
    audio = work / "input.wav"
    t0 = time.monotonic()
    make_input(audio, args.minutes, args.sample_rate)
    print(f"input: {args.minutes} min at {args.sample_rate} Hz ({time.monotonic() - t0:.1f} s to write) in {work}")
    cfg = {"method": args.method, "device": "cpu", "chunk_s": args.chunk_s, "overlap_s": args.overlap_s}
    if args.method == "spleeter":
        model_dir = args.model_dir
        if model_dir is None:
            model_dir = str(work / "tiny_model")
            extra = ["--full-size"] if args.full_size else []
            subprocess.run([sys.executable, str(REPO / "tests" / "tiny_spleeter.py"), model_dir, *extra], check=True)
        cfg["spleeter"] = {"model_dir": model_dir, "model": args.model or "2stems"}
    else:
        cfg["demucs"] = {"model": args.model or "demucs_unittest", "repo": args.demucs_repo}
    results = []
    for mode in args.modes.split(","):
        cmd = [sys.executable, __file__, "--mode", mode, "--audio", str(audio), "--cfg", json.dumps(cfg), "--threads", str(args.threads), "--workdir", str(work)]
        t = time.monotonic()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.monotonic() - t
        lines = [l for l in proc.stdout.splitlines() if l.startswith("RESULT ")]
        if proc.returncode or not lines:
            print(proc.stdout[-2000:], proc.stderr[-4000:], file=sys.stderr)
            raise SystemExit(f"mode {mode} failed (rc {proc.returncode})")
        res = json.loads(lines[-1][7:])
        res["process_wall_s"] = round(wall, 1)
        results.append(res)
    keys = ["mode", "method", "audio_s", "chunks", "chunk_s", "load_s", "separate_s", "s_per_audio_hour", "realtime_x", "rss_after_load_mb", "peak_rss_mb", "tracemalloc_peak_mb", "process_wall_s"]
    print("\t".join(keys))
    for r in results:
        print("\t".join(str(r[k]) for k in keys))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
