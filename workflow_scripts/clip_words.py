"""Give each clip its words from the long-form decoding, and the evidence at its edges.

Words carry stem times. A word belongs to the clip that holds the midpoint of Whisper's
times for it (or, within ``snap_s``, the nearest clip: they lean late by up to ~0.1 s). Words whose
midpoint lies in no clip were spoken in a gap (speech trimmed away, a piece dropped for
its length): they belong to no clip's transcript, but they still count as evidence that a
clip edge next to them is inside speech.

Edge evidence, per clip, for its start and end (what the gate's ``cut_start``/``cut_end``
rely on, chosen to hold in a noisy room):
- ``edge_overlap_s``: how deep the edge lies inside a word, on its shorter side
  (``min(edge - word.start, word.end - edge)`` for a word spanning the edge; 0 when none),
  or, for a word of the clip's own transcript, the part of it left outside the clip;
- ``edge_floor_db``: the level at the edge above the local noise floor (the quieter of the
  50 ms inside and the 50 ms outside the clip: a word cut by the edge sounds on both sides)
  (the floor: 10th percentile of 20 ms frames within 5 s, but never more than 45 dB under
  their 90th percentile, the speech): near 0 dB at a pause, whatever the room, well above it when the
  edge is inside a word.

Per-clip confidence comes from its words' probabilities (Whisper's per-pass
``avg_logprob`` and ``no_speech_prob`` belong to a 30 s window, not to one clip).
"""
from __future__ import annotations

import math
import zlib

import numpy as np

EDGE_S = 0.05
FLOOR_WINDOW_S = 5.0
FLOOR_PERCENTILE = 10.0
FLOOR_RANGE_DB = 45.0
FRAME_S = 0.02


def compression_ratio(text: str) -> float:
    """Whisper's repetition signal: len(text bytes) / len(zlib(text bytes))."""
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0


def assign_words(words: list[dict], spans: list[tuple[float, float]], snap_s: float = 0.1) -> tuple[list[list[dict]], list[dict]]:
    """Words (stem times) per clip span, and the words that fall in no clip."""
    per_clip: list[list[dict]] = [[] for _ in spans]
    outside: list[dict] = []
    starts = np.array([a for a, _ in spans]) if spans else np.zeros(0)
    for w in words:
        mid = (w.get("whisper_start", w["start"]) + w.get("whisper_end", w["end"])) / 2
        k = int(np.searchsorted(starts, mid, side="right")) - 1
        candidates = [j for j in (k, k + 1) if 0 <= j < len(spans)]
        best, dist = None, math.inf
        for j in candidates:
            a, b = spans[j]
            d = 0.0 if a <= mid <= b else min(abs(mid - a), abs(mid - b))
            if d < dist:
                best, dist = j, d
        if best is not None and dist <= snap_s:
            per_clip[best].append(w)
        else:
            outside.append(w)
    return per_clip, outside


def edge_overlap(words: list[dict], t: float, owned: list[dict] | None = None, side: str = "start") -> float:
    """How deep clip edge ``t`` lies inside any of ``words`` (0 if inside none).

    Depth is the shorter side of the word, except for a word of the clip's own transcript
    (``owned``): the clip's text claims all of it, so the part left outside the clip
    (before a ``start`` edge, after an ``end`` edge) is what was cut off. A word that
    Whisper timed a little off can thus not hide a cut by being assigned to the clip.
    """
    own = {id(w) for w in owned or []}
    depth = 0.0
    for w in words:
        if w["start"] < t < w["end"]:
            if id(w) in own:
                d = t - w["start"] if side == "start" else w["end"] - t
            else:
                d = min(t - w["start"], w["end"] - t)
            depth = max(depth, d)
    return round(depth, 3)


def edge_floor_db(audio: np.ndarray, sr: int, offset: float, start: float, end: float) -> list[float]:
    """Level of the first/last ``EDGE_S`` of [start, end] above the local noise floor (dB).

    ``audio`` starts at stem time ``offset``; all times in seconds.
    """
    levels, _, _ = _local_levels(audio, sr, offset, start, end)
    if levels.size == 0:
        return [0.0, 0.0]
    floor = noise_floor_db(levels)

    def level(a: float, b: float) -> float:
        x = np.asarray(audio[max(int((a - offset) * sr), 0) : max(int((b - offset) * sr), 0)], dtype=np.float64)
        return 10 * math.log10(float(np.mean(x**2)) + 1e-12) if x.size else math.inf

    edge = min(EDGE_S, (end - start) / 2)
    # a word cut by the edge sounds on both sides of it: the quieter side counts
    at_start = min(level(start - EDGE_S, start), level(start, start + edge))
    at_end = min(level(end - edge, end), level(end, end + EDGE_S))
    return [round(min(x, 200.0) - floor, 1) for x in (at_start, at_end)]


def frame_levels_db(audio: np.ndarray, hop: int) -> np.ndarray:
    """Level (dB) of each whole frame of ``hop`` samples."""
    region = np.asarray(audio, dtype=np.float64)
    n = len(region) // hop
    return 10 * np.log10(np.mean(region[: n * hop].reshape(n, hop) ** 2, axis=1) + 1e-12)


def noise_floor_db(levels: np.ndarray) -> float:
    """The local noise floor of frame levels (dB): their FLOOR_PERCENTILE-th percentile."""
    # Digital silence between takes is no noise floor to judge speech by: the floor is never
    # counted lower than FLOOR_RANGE_DB under the local speech level.
    return max(float(np.percentile(levels, FLOOR_PERCENTILE)), float(np.percentile(levels, 90)) - FLOOR_RANGE_DB)


def _local_levels(audio: np.ndarray, sr: int, offset: float, start: float, end: float) -> tuple[np.ndarray, int, int]:
    """FRAME_S frame levels (dB) of [start, end] and FLOOR_WINDOW_S either side, the sample
    they start at in ``audio`` (which starts at stem time ``offset``), and the frame hop."""
    hop = max(int(FRAME_S * sr), 1)
    lo = max(int((start - FLOOR_WINDOW_S - offset) * sr), 0)
    hi = min(int((end + FLOOR_WINDOW_S - offset) * sr), len(audio))
    return frame_levels_db(audio[lo:hi], hop), lo, hop


def voiced_s(audio: np.ndarray, sr: int, offset: float, start: float, end: float, above_db: float = 12.0) -> float:
    """Seconds of [start, end] whose FRAME_S frames are ``above_db`` over the local noise floor
    (the floor of FLOOR_WINDOW_S either side). ``audio`` starts at stem time ``offset``."""
    levels, lo, hop = _local_levels(audio, sr, offset, start, end)
    if levels.size == 0:
        return 0.0
    first = int(round((start - offset) * sr)) - lo
    span = levels[max(first // hop, 0): max(int(round((end - offset) * sr)) - lo, 0) // hop]
    return float(np.count_nonzero(span > noise_floor_db(levels) + above_db)) * hop / sr


def clip_record(words: list[dict], start: float, end: float) -> dict:
    """A clip's transcript fields from its words (stem times)."""
    text = "".join(w["word"] for w in words).strip()
    probs = [w["probability"] for w in words if w.get("probability") is not None]
    dur = end - start
    rel = [
        {"word": w["word"], "start": round(min(max(w["start"] - start, 0.0), dur), 3),
         "end": round(min(max(w["end"] - start, 0.0), dur), 3), "probability": _round(w.get("probability"))}
        for w in words
    ]
    return {
        "text": text,
        # Whisper's avg_logprob is sum(log p) / (tokens + 1), per decoding pass; per clip, its
        # words' (mean token) probabilities stand in for the tokens.
        "avg_logprob": _round(sum(math.log(max(p, 1e-6)) for p in probs) / (len(probs) + 1)) if probs else None,
        # Whisper's no-speech probability belongs to a whole 30 s pass, not to one clip.
        "no_speech_prob": None,
        "compression_ratio": _round(compression_ratio(text)),
        "words": rel,
    }


def _round(x) -> float | None:
    return None if x is None else round(float(x), 4)
