#!/usr/bin/env python3
"""Benchmark Piper training as this workflow runs it (run with the piper venv's python).

    $(python3 envs/setup_venvs.py --print-path piper)/bin/python bench/bench_training.py \
        [--clips 20] [--epochs 2] [--presets reduced,medium] [--out bench/training.json]
    $(python3 envs/setup_venvs.py --print-path piper)/bin/python bench/bench_training.py --sizes-only

Measures, on a synthetic espeak-ng dataset (20 clips by default, batch 4, CPU):

* seconds per epoch of each preset (one 1-epoch chunk; the fit's wall time minus nothing,
  so start-up is included and reported separately as `startup_s` from the log timestamps);
* chunk overhead: ``--epochs`` epochs as that many 1-epoch chunks (each a fresh process that
  reloads the previous checkpoint) vs one uninterrupted run of ``--epochs`` epochs
  (target: <= 10 %);
* checkpoint sizes (the chunk's full state, with optimizer states, and its generator-only
  weights file) and the ONNX exported from the weights file.

``--sizes-only`` trains nothing: it builds every preset's model from piper's code, takes one
AdamW step on both optimizers (their moment buffers then exist, as after any training step),
saves the full state and the weights file as a chunk does and prints their sizes: the
figures behind ``piper_train.CHECKPOINT_MB``.
"""
import argparse
import json
import logging
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from workflow_scripts.piper_dataset import build_dataset  # noqa: E402
from workflow_scripts.piper_export import export_voice  # noqa: E402
from workflow_scripts.piper_train import PRESETS, generator_weights, train_chunk  # noqa: E402

SENTENCES = [
    "The birch canoe slid on the smooth planks.", "Glue the sheet to the dark blue background.",
    "It is easy to tell the depth of a well.", "These days a chicken leg is a rare dish.",
    "Rice is often served in round bowls.", "The juice of lemons makes fine punch.",
    "The box was thrown beside the parked truck.", "The hogs were fed chopped corn and garbage.",
    "Four hours of steady work faced us.", "A large size in stockings is hard to sell.",
]


def make_dataset(root: Path, n: int, rate: int = 22050) -> None:
    import numpy as np
    import soundfile as sf
    import soxr

    clips = root / "processed" / "rec" / "clips"
    clips.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        text = SENTENCES[i % len(SENTENCES)]
        name = f"rec_{i + 1:05d}.wav"
        raw = clips / f".{name}.tmp.wav"
        subprocess.run(["espeak-ng", "-v", "en-us", "-s", str(150 + 5 * (i % 5)), "-w", str(raw), text], check=True)
        audio, sr = sf.read(str(raw), dtype="float32")
        raw.unlink()
        audio = soxr.resample(audio, sr, rate) if sr != rate else audio
        sf.write(str(clips / name), 0.8 * audio / max(1e-6, float(np.abs(audio).max())), rate, subtype="PCM_16")
        rows.append(f"{name}|{text}|{len(audio) / rate:.3f}|bench|1.0")
    (root / "metadata.csv").write_text("\n".join(rows) + "\n")


def cfg_for(preset: str, batch: int, threads: int) -> dict:
    return {"preset": preset, "espeak_voice": "en-us", "batch_size": batch, "checkpoint_every": 1, "threads": threads,
            "num_workers": 0, "log_every_steps": 1000, "max_phoneme_ids": 400, "max_clip_s": 15, "min_clip_s": 0.5,
            "num_test_examples": 0, "voice_name": "bench"}


def prepare(root: Path, cfg: dict, log) -> tuple[str, str]:
    piper = root / "piper"
    build_dataset(root / "metadata.csv", [root / "processed" / "rec" / "clips"], root / "processed",
                  piper / "dataset.csv", piper / "wavs", piper / "preflight.json", piper / "preflight.md", cfg, 22050, log)
    return str(piper / "dataset.csv"), str(piper / "wavs")


def built_checkpoint_sizes(preset: str, tmp: Path) -> dict:
    """MB of a full state and of the weights file for ``preset``, from piper's model code."""
    import torch
    from piper.train.vits.lightning import VitsModel

    p = PRESETS[preset]
    model = VitsModel(sample_rate=p["sample_rate"], mos_metric="none", **p["model"])
    optimizers, schedulers = model.configure_optimizers()
    for opt in optimizers:
        for group in opt.param_groups:
            for param in group["params"]:
                param.grad = torch.zeros_like(param)
        opt.step()
    state = {"epoch": 1, "global_step": 1, "pytorch-lightning_version": "2",
             "state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams),
             "optimizer_states": [o.state_dict() for o in optimizers],
             "lr_schedulers": [s.state_dict() for s in schedulers],
             "loops": {"fit_loop": {"epoch_progress": {"current": {"completed": 1}}}}}
    full, weights = tmp / f"{preset}.ckpt", tmp / f"{preset}.weights.ckpt"
    torch.save(state, full)
    torch.save(generator_weights(state), weights)
    params = {name: sum(t.numel() for t in getattr(model, name).parameters()) for name in ("model_g", "model_d")}
    return {"state_mb": round(full.stat().st_size / 1e6, 1), "weights_mb": round(weights.stat().st_size / 1e6, 1),
            "generator_params": params["model_g"], "discriminator_params": params["model_d"]}


def epoch_times(log_file: Path) -> list[float]:
    out = []
    for line in log_file.read_text().splitlines():
        if "pvw.train INFO epoch" in line and " done in " in line:
            out.append(float(line.split(" done in ")[1].split("s")[0]))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=20)
    ap.add_argument("--epochs", type=int, default=2, help="epochs for the chunked vs uninterrupted comparison")
    ap.add_argument("--presets", default="reduced,medium")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip-overhead", action="store_true")
    ap.add_argument("--sizes-only", action="store_true", help="only the checkpoint sizes of every preset, built "
                    "from piper's model code (no training)")
    ap.add_argument("--out", default="")
    ap.add_argument("--keep", action="store_true", help="keep the temp directory")
    args = ap.parse_args()

    logging.basicConfig(level=logging.WARNING)
    tmp = Path(tempfile.mkdtemp(prefix="pvw-bench-train-"))
    if args.sizes_only:
        try:
            sizes = {preset: built_checkpoint_sizes(preset, tmp) for preset in PRESETS}
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        print(json.dumps({"checkpoint_sizes": sizes}, indent=2))
        return 0
    results: dict = {"clips": args.clips, "batch_size": args.batch, "threads": args.threads, "presets": {}}
    try:
        make_dataset(tmp / "data", args.clips)
        for preset in [p for p in args.presets.split(",") if p]:
            root = tmp / preset
            shutil.copytree(tmp / "data", root)
            cfg = cfg_for(preset, args.batch, args.threads)
            log = logging.getLogger(f"bench.{preset}")
            log_file = root / "train.log"
            log.addHandler(logging.FileHandler(log_file))
            log.setLevel(logging.INFO)
            csv, wavs = prepare(root, cfg, log)
            t0 = time.monotonic()
            info = train_chunk(0, cfg, csv, wavs, str(root / "checkpoints" / "chunk_0.ckpt"),
                               str(root / "checkpoints" / "chunk_0.weights.ckpt"), None, args.threads, log)
            wall = time.monotonic() - t0
            ep = epoch_times(log_file)
            t1 = time.monotonic()
            export_voice(root / "checkpoints" / "chunk_0.weights.ckpt", root / "voice" / "voice.onnx",
                         root / "voice" / "voice.onnx.json", "en-us", preset, "bench", args.threads, log)
            results["presets"][preset] = {
                "chunk_wall_s": round(wall, 1), "epoch_s": ep[0] if ep else None,
                "startup_and_save_s": round(wall - (ep[0] if ep else 0), 1),
                "state_mb": info["state_mb"], "weights_mb": info["weights_mb"],
                "onnx_mb": round((root / "voice" / "voice.onnx").stat().st_size / 1e6, 1),
                "export_s": round(time.monotonic() - t1, 1),
            }
            print(json.dumps({preset: results["presets"][preset]}), flush=True)

        if not args.skip_overhead and args.epochs >= 2:
            preset = args.presets.split(",")[0]
            cfg = cfg_for(preset, args.batch, args.threads)
            # chunked: --epochs chunks of 1 epoch, each a fresh process resuming the previous one
            root = tmp / "chunked"
            shutil.copytree(tmp / "data", root)
            log = logging.getLogger("bench.chunked")
            csv, wavs = prepare(root, cfg, log)
            t0, prev = time.monotonic(), None
            for n in range(args.epochs):
                out = root / "checkpoints" / f"chunk_{n}.ckpt"
                train_chunk(n, cfg, csv, wavs, str(out), str(out.with_suffix(".weights.ckpt")), prev, args.threads, log)
                prev = str(out)
            chunked = time.monotonic() - t0
            # uninterrupted: one chunk of --epochs epochs
            root = tmp / "single"
            shutil.copytree(tmp / "data", root)
            csv, wavs = prepare(root, cfg, log)
            t0 = time.monotonic()
            train_chunk(0, {**cfg, "checkpoint_every": args.epochs}, csv, wavs, str(root / "checkpoints" / "all.ckpt"),
                        str(root / "checkpoints" / "all.weights.ckpt"), None, args.threads, log)
            single = time.monotonic() - t0
            results["overhead"] = {"preset": preset, "epochs": args.epochs, "chunked_s": round(chunked, 1),
                                   "single_s": round(single, 1),
                                   "overhead_pct": round(100 * (chunked - single) / single, 1), "target_pct": 10}
            print(json.dumps({"overhead": results["overhead"]}), flush=True)
    finally:
        if args.keep:
            print(f"kept {tmp}", file=sys.stderr)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    text = json.dumps(results, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
