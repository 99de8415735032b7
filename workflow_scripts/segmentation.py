"""Split a long vocal stem into segments at the midpoints of its silences.

Algorithm (all times in frames of ``frame_s`` seconds):
1. RMS envelope of non-overlapping frames (vectorised, streamed in blocks for long inputs).
2. Robust speech level: a high percentile of the frame RMS (insensitive to a few loud clicks
   and to how much of the file is silence).
3. Silence = frames whose RMS is under ``factor * level``; runs of at least ``min_silence_s``
   are split at their midpoints, so each segment keeps half of the pause on either side.
4. A segment still longer than ``max_clip_s`` is split again on its own envelope with a
   higher threshold (``factor * factor_step``: more frames count as silence, so shorter
   and fainter pauses are found) and a shorter minimum silence, until the ceiling
   ``max_factor`` / floor ``min_silence_floor_s`` is reached. Only then is it cut at its
   quietest frame. So ``max_clip_s`` always holds, and speech is only ever cut where the
   segment has no pause left.
Segments without a single frame above the threshold are dropped (pure silence).
Everything is deterministic: the same samples and parameters give the same cuts.
"""

import dataclasses
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SegmentParams:
    frame_s: float = 0.02
    level_percentile: float = 95.0
    factor: float = 0.05
    factor_step: float = 2.0
    max_factor: float = 0.4
    min_silence_s: float = 0.5
    min_silence_step: float = 0.5
    min_silence_floor_s: float = 0.1
    max_clip_s: float = 12.0
    # Absolute floor: frames quieter than this are silence whatever the recording's level,
    # so dither or hiss in a silent file is not mistaken for speech.
    silence_floor_dbfs: float = -60.0

    @classmethod
    def from_config(cls, cfg: dict) -> "SegmentParams":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in cfg.items() if k in names})


@dataclass(frozen=True)
class Segment:
    start: int  # sample index, inclusive
    end: int  # sample index, exclusive
    method: str  # "silence" or "quietest"
    depth: int  # recursion depth at which the last cut was made
    factor: float
    min_silence_s: float


def frame_rms(audio: np.ndarray, hop: int, block_frames: int = 1 << 16) -> np.ndarray:
    """RMS of consecutive frames of ``hop`` samples (the last partial frame included)."""
    n = len(audio)
    n_frames = -(-n // hop)
    out = np.empty(n_frames, dtype=np.float64)
    for f0 in range(0, n_frames, block_frames):
        f1 = min(f0 + block_frames, n_frames)
        block = np.asarray(audio[f0 * hop : min(f1 * hop, n)], dtype=np.float64)
        pad = (f1 - f0) * hop - len(block)
        if pad:
            block = np.concatenate([block, np.zeros(pad)])
        out[f0:f1] = np.sqrt(np.mean(block.reshape(-1, hop) ** 2, axis=1))
    return out


def robust_level(rms: np.ndarray, percentile: float) -> float:
    voiced = rms[rms > 0]
    return float(np.percentile(voiced, percentile)) if len(voiced) else 0.0


def silence_runs(is_silent: np.ndarray, min_frames: int) -> list[tuple[int, int]]:
    """(start, end) frame runs of True of at least ``min_frames`` frames."""
    if not len(is_silent):
        return []
    padded = np.concatenate([[False], is_silent, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    starts, ends = edges[0::2], edges[1::2]
    keep = (ends - starts) >= max(min_frames, 1)
    return list(zip(starts[keep].tolist(), ends[keep].tolist()))


def split_points(rms: np.ndarray, threshold: float, min_frames: int) -> list[int]:
    """Frame indices at the midpoints of silences inside the span (not touching its edges)."""
    n = len(rms)
    points = []
    for s, e in silence_runs(rms < threshold, min_frames):
        if s == 0 or e == n:
            continue  # leading/trailing silence: nothing to split off, trimming handles it
        points.append((s + e) // 2)
    return points


def quietest_cut(rms: np.ndarray, max_frames: int, min_frames: int) -> int:
    """Frame at which to cut a span with no usable silence, keeping both parts non-empty.

    When the span is shorter than two maxima, the cut is restricted so that both parts fit
    under the maximum; otherwise it avoids the first/last ``min_frames`` frames.
    """
    n = len(rms)
    if n <= 2 * max_frames:
        lo, hi = max(n - max_frames, 1), min(max_frames, n - 1)
    else:
        lo, hi = max(min_frames, 1), n - max(min_frames, 1)
    if hi < lo:
        lo, hi = 1, n - 1
    # smooth over 3 frames so a single-frame dip inside a word does not win
    smooth = np.convolve(rms, np.ones(3) / 3, mode="same")
    return int(lo + np.argmin(smooth[lo : hi + 1]))


def split_on_silence(audio: np.ndarray, sample_rate: int, params: SegmentParams = SegmentParams()) -> list[Segment]:
    """Segments of ``audio`` (mono) under ``params.max_clip_s``, cut in silences where possible."""
    hop = max(int(round(params.frame_s * sample_rate)), 1)
    n_samples = len(audio)
    if n_samples == 0:
        return []
    rms = frame_rms(audio, hop)
    level = robust_level(rms, params.level_percentile)
    full_scale = float(np.iinfo(audio.dtype).max + 1) if np.issubdtype(audio.dtype, np.integer) else 1.0
    floor = full_scale * 10 ** (params.silence_floor_dbfs / 20)
    if level <= floor:
        return []  # silence, dither or faint hiss only
    max_frames = max(int(params.max_clip_s * sample_rate) // hop, 1)
    speech_thr = max(params.factor * level, floor)

    segments: list[Segment] = []

    def frames(seconds: float) -> int:
        return int(round(seconds * sample_rate / hop))

    def recurse(f0: int, f1: int, factor: float, min_sil: float, depth: int, method: str) -> None:
        span = rms[f0:f1]
        if not np.any(span >= speech_thr):
            return  # nothing but silence at the base threshold: drop
        if f1 - f0 <= max_frames:
            segments.append(Segment(f0 * hop, min(f1 * hop, n_samples), method, depth, factor, min_sil))
            return
        # The threshold stays relative to the whole recording's level, so a fainter passage
        # does not become "all silence", while its short pauses can still be found.
        pts = split_points(span, max(factor * level, floor), frames(min_sil))
        if pts:
            bounds = [f0] + [f0 + p for p in pts] + [f1]
            for a, b in zip(bounds[:-1], bounds[1:]):
                recurse(a, b, factor, min_sil, depth, method)
            return
        if factor < params.max_factor or min_sil > params.min_silence_floor_s:
            next_factor = min(factor * params.factor_step, params.max_factor)
            next_sil = max(min_sil * params.min_silence_step, params.min_silence_floor_s)
            recurse(f0, f1, next_factor, next_sil, depth + 1, method)
            return
        # Past the floor: no pause left to use, cut where the envelope is lowest.
        cut = f0 + quietest_cut(span, max_frames, frames(params.min_silence_floor_s))
        recurse(f0, cut, factor, min_sil, depth + 1, "quietest")
        recurse(cut, f1, factor, min_sil, depth + 1, "quietest")

    # Pass 0 splits the whole recording at every qualifying silence; only the parts still
    # over the maximum recurse with a higher threshold and a shorter minimum silence.
    pts = split_points(rms, speech_thr, frames(params.min_silence_s))
    bounds = [0] + pts + [len(rms)]
    for a, b in zip(bounds[:-1], bounds[1:]):
        recurse(a, b, params.factor, params.min_silence_s, 0, "silence")
    return segments


def write_segments(vocals_path: str, out_dir: str, params: SegmentParams, log) -> list[dict]:
    """Entry-point body: segment ``vocals_path`` into ``out_dir`` (written atomically)."""
    import soundfile as sf

    from workflow_scripts.io_utils import StageError, atomic_dir

    try:
        info = sf.info(vocals_path)
        audio, rate = sf.read(vocals_path, dtype="int16", always_2d=False)
    except Exception as exc:
        raise StageError(f"{vocals_path}: cannot read vocal stem ({exc})") from exc
    if audio.ndim != 1:
        raise StageError(f"{vocals_path}: expected mono, found {info.channels} channels")
    segments = split_on_silence(audio, rate, params)
    too_long = [s for s in segments if s.end - s.start > params.max_clip_s * rate + 1]
    if too_long:  # invariant: the maximum always holds
        raise StageError(f"{vocals_path}: internal error, {len(too_long)} segments over max_clip_s")
    if any(b.start < a.end for a, b in zip(segments, segments[1:])) or any(s.start < 0 or s.end > len(audio) for s in segments):
        raise StageError(f"{vocals_path}: internal error, segments overlap or leave the stem")  # invariant
    rows = []
    with atomic_dir(out_dir) as tmp:
        for i, seg in enumerate(segments, start=1):
            name = f"seg_{i:05d}.wav"
            sf.write(f"{tmp}/{name}", audio[seg.start : seg.end], rate, subtype="PCM_16", format="WAV")
            rows.append(
                {
                    "segment": name,
                    "start_sample": seg.start,
                    "end_sample": seg.end,
                    "start_s": f"{seg.start / rate:.3f}",
                    "end_s": f"{seg.end / rate:.3f}",
                    "duration_s": f"{(seg.end - seg.start) / rate:.3f}",
                    "method": seg.method,
                    "depth": seg.depth,
                    "factor": f"{seg.factor:g}",
                    "min_silence_s": f"{seg.min_silence_s:g}",
                }
            )
        header = ["segment", "start_sample", "end_sample", "start_s", "end_s", "duration_s", "method", "depth", "factor", "min_silence_s"]
        with open(f"{tmp}/segments.tsv", "w", encoding="utf-8") as fh:
            fh.write("\t".join(header) + "\n")
            for r in rows:
                fh.write("\t".join(str(r[h]) for h in header) + "\n")
    total = len(audio) / rate if rate else 0
    kept = sum(int(r["end_sample"]) - int(r["start_sample"]) for r in rows) / rate if rate else 0
    log.info("%s: %d segments, %.1f s of %.1f s, %d cut at quietest frame", vocals_path, len(rows), kept, total, sum(r["method"] == "quietest" for r in rows))
    return rows


def main(snakemake, log) -> None:
    params = SegmentParams.from_config({**snakemake.params.cfg, "max_clip_s": snakemake.params.max_clip_s})
    write_segments(str(snakemake.input.vocals), str(snakemake.output.segments), params, log)


if "snakemake" in globals():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parent))  # noqa: F821
    from workflow_scripts.io_utils import run_stage

    run_stage(snakemake, main)  # noqa: F821
