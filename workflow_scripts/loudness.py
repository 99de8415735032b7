"""Loudness normalisation of clips to one target, with a peak limiter where gain alone
would clip.

Each clip is measured (pyloudnorm, ITU-R BS.1770) and gained to ``target_lufs``. A clip
whose peak would then pass ``peak_dbfs`` goes through ffmpeg's ``alimiter`` (look-ahead,
delay compensated, auto-level off) at that ceiling, is measured again and the shortfall
gained back, up to ``LIMIT_PASSES`` times: so a clip with a high crest factor still ends
within ``TOLERANCE_LU`` of the target instead of 15 dB below it. The clips that need the
limiter go through one ffmpeg process per pass, laid end to end with silence between them
(longer than the release, so one clip's gain reduction never reaches the next).
"""
from __future__ import annotations

import functools
import subprocess

import numpy as np

LIMIT_PASSES = 4
TOLERANCE_LU = 0.5
GAP_S = 0.25
ATTACK_MS = 5.0
RELEASE_MS = 50.0


@functools.lru_cache(maxsize=4)
def _meter(rate: int):
    """One BS.1770 meter per rate (its filters are designed once, not per clip)."""
    import pyloudnorm

    return pyloudnorm.Meter(rate)


def integrated_loudness(x: np.ndarray, rate: int) -> float:
    """LUFS; a clip shorter than the 400 ms gating block is measured on itself looped."""
    measured = np.asarray(x, dtype=np.float64)
    if len(measured) < int(0.4 * rate) + 1:
        measured = np.tile(measured, int(np.ceil((0.4 * rate + 1) / max(len(measured), 1))) + 1)
    return float(_meter(rate).integrated_loudness(measured))


def limit(clips: list[np.ndarray], rate: int, ceiling: float) -> list[np.ndarray]:
    """ffmpeg ``alimiter`` at ``ceiling`` (linear) on each clip, in one process."""
    gap = np.zeros(int(GAP_S * rate), dtype=np.float32)
    parts, bounds, pos = [], [], 0
    for c in clips:
        parts += [np.asarray(c, dtype=np.float32), gap]
        bounds.append((pos, pos + len(c)))
        pos += len(c) + len(gap)
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-f", "f32le", "-ar", str(rate), "-ac", "1", "-i", "pipe:0",
           "-af", f"alimiter=limit={ceiling:.6f}:level=false:latency=true:attack={ATTACK_MS}:release={RELEASE_MS}",
           "-f", "f32le", "-ar", str(rate), "-ac", "1", "pipe:1"]
    proc = subprocess.run(cmd, input=np.concatenate(parts).tobytes(), capture_output=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"ffmpeg alimiter failed: {proc.stderr.decode(errors='replace').strip()[-300:]}")
    out = np.frombuffer(proc.stdout, dtype=np.float32)
    if len(out) < pos:
        out = np.concatenate([out, np.zeros(pos - len(out), dtype=np.float32)])
    # the limiter's look-ahead can leave a hair over the ceiling; never more
    return [np.clip(out[a:b].astype(np.float64), -ceiling, ceiling) for a, b in bounds]


def normalise(clips: list[np.ndarray], rate: int, target_lufs: float, peak_dbfs: float) -> list[tuple[np.ndarray, float, float]]:
    """[(audio, loudness before, loudness after)] for float clips in [-1, 1]."""
    ceiling = 10 ** (peak_dbfs / 20)
    out: list[list] = []
    pending = []
    for i, x in enumerate(clips):
        x = np.asarray(x, dtype=np.float64)
        before = integrated_loudness(x, rate)
        if not np.isfinite(before):  # digital silence: nothing to measure
            out.append([x, before, before])
            continue
        y = x * 10 ** ((target_lufs - before) / 20)
        out.append([y, before, target_lufs])
        if np.max(np.abs(y)) > ceiling:
            pending.append(i)
    for _ in range(LIMIT_PASSES):
        if not pending:
            break
        limited = limit([out[i][0] for i in pending], rate, ceiling)
        still = []
        for i, y in zip(pending, limited):
            now = integrated_loudness(y, rate)
            out[i][0], out[i][2] = y, now
            if np.isfinite(now) and abs(now - target_lufs) > TOLERANCE_LU:
                out[i][0] = y * 10 ** ((target_lufs - now) / 20)
                out[i][2] = target_lufs
                still.append(i)
        pending = still
    for i in pending:  # past the last pass: the ceiling wins over the target
        y = out[i][0]
        peak = np.max(np.abs(y))
        if peak > ceiling:
            out[i][0] = y * (ceiling / peak)
            out[i][2] = integrated_loudness(out[i][0], rate)
    return [(y, float(b), float(a)) for y, b, a in out]
