#!/usr/bin/env python3
"""Build a tiny (~1 MB) randomly initialised Spleeter 2stems model folder for tests.

Run it with the Spleeter venv's python (it imports TensorFlow and Spleeter):

    $(python3 envs/setup_venvs.py --print-path spleeter)/bin/python tests/tiny_spleeter.py OUT_DIR

It writes ``OUT_DIR/<name>/`` with a TF checkpoint (``checkpoint``, ``model.index``,
``model.data-00000-of-00001``) made by Spleeter's own model code (EstimatorSpecBuilder,
U-Net with conv_n_filters [2,4,8,16,32,64]) and ``spleeter_params.json``, the matching
configuration that workflow_scripts/separation.py uses when it finds it next to the weights.
Random weights separate nothing useful, but with Spleeter's ratio masks the stems still sum
to the mix: a plumbing check that needs no download.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "-1")

TINY_FILTERS = [2, 4, 8, 16, 32, 64]


def build(
    out_dir: str,
    name: str = "2stems",
    sample_rate: int | None = None,
    frame_length: int | None = None,
    seed: int = 0,
    full_size: bool = False,
) -> Path:
    import numpy as np
    import tensorflow as tf
    from spleeter.model import EstimatorSpecBuilder
    from spleeter.utils.configuration import load_configuration

    params = load_configuration("spleeter:2stems")
    if not full_size:  # full_size: the real U-Net shape (random weights): for memory/speed benchmarks
        params["model"]["params"] = {**params["model"].get("params", {}), "conv_n_filters": TINY_FILTERS}
    if sample_rate:
        params["sample_rate"] = int(sample_rate)
    if frame_length:  # smaller STFT: F must not exceed frame_length // 2 + 1
        params["frame_length"] = int(frame_length)
        params["frame_step"] = int(frame_length) // 4
        params["F"] = min(params["F"], int(frame_length) // 2)
    folder = Path(out_dir) / name
    folder.mkdir(parents=True, exist_ok=True)
    params["model_dir"] = str(folder.resolve())
    params["MWF"] = False
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.set_random_seed(seed)
        features = {
            "waveform": tf.compat.v1.placeholder(tf.float32, shape=(None, params["n_channels"]), name="waveform"),
            "audio_id": tf.compat.v1.placeholder(tf.string, name="audio_id"),
        }
        builder = EstimatorSpecBuilder(features, params)
        _ = builder.outputs  # builds the U-Net variables
        tf.compat.v1.train.get_or_create_global_step()
        saver = tf.compat.v1.train.Saver()
        with tf.compat.v1.Session(graph=graph) as sess:
            sess.run(tf.compat.v1.global_variables_initializer())
            # Spleeter seeds its initialisers (he_uniform(seed=50)): both stems' U-Nets would be
            # identical (every mask 0.5). Perturb every weight so the stems differ.
            rng = np.random.default_rng(seed)
            for var in tf.compat.v1.trainable_variables():
                value = sess.run(var)
                scale = 0.5 * max(float(np.std(value)), 0.05)
                var.load(value + rng.normal(0.0, scale, value.shape).astype(value.dtype), sess)
            saver.save(sess, str(folder / "model"), write_meta_graph=False)
    # The checkpoint file must name the weights relative to the folder (it may be moved).
    (folder / "checkpoint").write_text('model_checkpoint_path: "model"\nall_model_checkpoint_paths: "model"\n')
    params.pop("MWF")
    params["model_dir"] = name
    (folder / "spleeter_params.json").write_text(json.dumps(params, indent=2) + "\n")
    return folder


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "out_dirs",
        nargs="+",
        metavar="OUT_DIR[:RATE:FRAME]",
        help="folder that will hold <name>/ (use it as separation.spleeter.model_dir); "
        "':RATE:FRAME' overrides --sample-rate/--frame-length for that folder (several models, one TF start)",
    )
    ap.add_argument("--name", default="2stems")
    ap.add_argument("--sample-rate", type=int, default=None, help="model rate (default 44100 as the real model)")
    ap.add_argument("--frame-length", type=int, default=None, help="STFT frame (default 4096 as the real model)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--full-size", action="store_true", help="real 2stems U-Net size (random weights, ~40 MB): benchmarks")
    args = ap.parse_args(argv)
    for spec in args.out_dirs:
        out_dir, rate, frame = spec, args.sample_rate, args.frame_length
        parts = spec.rsplit(":", 2)
        if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
            out_dir, rate, frame = parts[0], int(parts[1]), int(parts[2])
        folder = build(out_dir, args.name, rate, frame, args.seed, args.full_size)
        size = sum(p.stat().st_size for p in folder.iterdir())
        print(f"{folder} {size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
