"""Segmentation + clip preprocessing vs pydub's split_on_silence and librosa.effects.split.

    python3 envs/setup_venvs.py bench
    $(python3 envs/setup_venvs.py --print-path bench)/bin/python bench/bench_segmentation.py --minutes 30

Input: real speech (Debian's Asterisk prompts, one speaker) joined with pauses into one
recording of --minutes minutes at 22050 Hz. All tools run on the same audio in the same
process and run; ratios are against pydub measured here, not against a remembered number.
Peak memory for a --long-hours input is measured in a fresh subprocess (ru_maxrss).
"""
import argparse
import json
import logging
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from workflow_scripts.example_data import RATE as PROMPT_RATE  # noqa: E402
from workflow_scripts.example_data import decode_g722, fetch_packages, prompt_texts, usable_prompts  # noqa: E402
from workflow_scripts.preprocess import PreprocessParams, preprocess_recording  # noqa: E402
from workflow_scripts.segmentation import SegmentParams, split_on_silence, write_segments  # noqa: E402

SR = 22050
LOG = logging.getLogger("bench")


def speech_recording(path: Path, minutes: float, seed: int = 1) -> None:
    import soxr

    tree = fetch_packages()
    prompts = usable_prompts(tree, prompt_texts(tree))
    rng = np.random.default_rng(seed)
    decoded = [soxr.resample(decode_g722(p), PROMPT_RATE, SR).astype(np.float32) for _, p, _ in prompts]
    parts, total = [], 0
    while total < minutes * 60 * SR:
        x = decoded[rng.integers(len(decoded))]
        pause = (2e-4 * rng.standard_normal(int(rng.uniform(0.3, 1.5) * SR))).astype(np.float32)
        parts += [x, pause]
        total += len(x) + len(pause)
    sf.write(path, np.concatenate(parts)[: int(minutes * 60 * SR)], SR, subtype="PCM_16")


def timed(fn, repeat=1):
    best = float("inf")
    out = None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def peak_memory_subprocess(wav: Path) -> float:
    code = (
        "import sys, resource, logging; sys.path.insert(0, %r)\n"
        "from workflow_scripts.segmentation import SegmentParams, write_segments\n"
        "import tempfile\n"
        "d = tempfile.mkdtemp()\n"
        "rows = write_segments(%r, d + '/segments', SegmentParams(), logging.getLogger('x'))\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, len(rows))\n"
        "import shutil; shutil.rmtree(d)\n"
    ) % (str(REPO), str(wav))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    return float(out[0])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--long-hours", type=float, default=3)
    ap.add_argument("--out", default=str(REPO / "bench" / "out" / "segmentation.json"))
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-seg-"))
    wav = work / "speech.wav"
    speech_recording(wav, args.minutes)
    audio, _ = sf.read(wav, dtype="int16")
    seconds = len(audio) / SR
    params = SegmentParams()

    t_ours, segs = timed(lambda: split_on_silence(audio, SR, params), repeat=3)

    def ours_full():
        write_segments(str(wav), str(work / "segments"), params, LOG)
        return preprocess_recording("bench", str(wav), str(work / "segments"), str(work / "clips"), PreprocessParams(sample_rate=SR), LOG)

    t_full, (rows, dropped) = timed(ours_full)

    from pydub import AudioSegment
    from pydub.silence import split_on_silence as pydub_split

    seg = AudioSegment.from_wav(str(wav))
    # pydub's usual settings for speech datasets: 500 ms silence, 16 dB under the average
    t_pydub, chunks = timed(lambda: pydub_split(seg, min_silence_len=500, silence_thresh=seg.dBFS - 16, keep_silence=150))

    import librosa

    y = audio.astype(np.float32) / 32768
    librosa.effects.split(y[: SR * 5], top_db=30)  # warm up numba's JIT outside the timing
    t_librosa, intervals = timed(lambda: librosa.effects.split(y, top_db=30, frame_length=2048, hop_length=512), repeat=3)

    long_wav = work / "long.wav"
    reps = int(np.ceil(args.long_hours * 60 / args.minutes))
    with sf.SoundFile(long_wav, "w", SR, 1, subtype="PCM_16") as fh:
        for _ in range(reps):
            fh.write(audio)
    del audio, y, seg
    peak_mb = peak_memory_subprocess(long_wav)

    max_len = max((s.end - s.start) / SR for s in segs)
    result = {
        "audio_minutes": seconds / 60,
        "ours_segmentation_s": t_ours,
        "ours_segmentation_x_realtime": seconds / t_ours,
        "ours_segmentation_plus_preprocess_s": t_full,
        "ours_segmentation_plus_preprocess_x_realtime": seconds / t_full,
        "pydub_split_on_silence_s": t_pydub,
        "pydub_x_realtime": seconds / t_pydub,
        "librosa_effects_split_s": t_librosa,
        "librosa_x_realtime": seconds / t_librosa,
        "ratio_segmentation_vs_pydub": t_pydub / t_ours,
        "ratio_seg_plus_preprocess_vs_pydub_split": t_pydub / t_full,
        "ratio_segmentation_vs_librosa": t_librosa / t_ours,
        "segments": len(segs),
        "clips": len(rows),
        "pydub_chunks": len(chunks),
        "librosa_intervals": len(intervals),
        "max_segment_s": max_len,
        "max_clip_s_respected": max_len <= params.max_clip_s,
        "long_input_hours": reps * args.minutes / 60,
        "long_input_segmentation_peak_rss_mb": peak_mb,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    for k, v in result.items():
        print(f"{k:48s} {v:.3f}" if isinstance(v, float) else f"{k:48s} {v}")
    import shutil

    shutil.rmtree(work)


if __name__ == "__main__":
    main()
