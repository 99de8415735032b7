"""The target's speech in a clip that the speaker gate rejected for another voice in it.

preprocess joins short phrases into clips (across pauses up to ``merge_gap_s``), so in a
conversation another voice's "Yeah." or short turn is joined to the target's phrases as often
as not, and a turn taken 0.3 s after the other voice stays inside one segment; the speaker
gate rejects the whole clip (clip_gates.part_reasons): the target's speech in it is lost with
the other voice's. The clip's part boundaries (clips.tsv ``joins_s``: the joins, and the
seams segmentation left in each segment's pauses) lie in the middles of pauses, so the clip
can be cut there again. Each run of consecutive parts that
are all the target's becomes a clip of its own (``{clip stem}-{first part}.wav``), when

- the clip failed on its voice only: the transcript gate and DNSMOS passed it, and no
  speaker-encoder window check failed (a turn inside a part has no boundary to cut at);
- every part of the run was embedded and passes clip_gates.part_verdicts (a part under
  MIN_PART_S was not embedded, so it ends a run: its voice is unknown);
- the run's embedding (its parts', weighted by their seconds) is at least ``min_similarity``
  to the target, the bar of any clip; the run is not the whole clip;
- after trimming its edges to speech plus ``pad_s`` (as preprocess trims) it is at least
  ``min_clip_s`` long, and its words (those whose midpoint falls in the run) pass the
  transcript gate, with the edge evidence (clip_words) measured at the new edges.

Latched turns (clip_gates.turn_reasons: the clip's speaker-encoder windows hold another
voice's turn with no pause before it) are cut between the turns instead, at the pauses
between Whisper's words (turn_stretches): each run of TURN_MIN_WINDOWS or more windows that
are plainly the target's becomes ``{clip stem}-w{first window}.wav`` when both its cuts find
a pause of TURN_CUT_GAP_S, whichever voice check failed the clip first (but the part check:
a clip with a part of another voice is cut at its part boundaries, which are pauses); trimmed
and gated as above.

A recut clip is levelled to ``target_lufs`` as every clip is (workflow_scripts/loudness.py)
and keeps its source clip's DNSMOS scores (measured with the other voice's part in; the run
is a subset of that audio).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from workflow_scripts.clip_gates import MIN_PART_S, TURN_MIN_WINDOWS, ClipParts, part_verdicts, window_sides
from workflow_scripts.clip_words import clip_record, edge_floor_db, edge_overlap
from workflow_scripts.speaker_similarity import mean_direction, similarity

# A part's seconds in clips.tsv (joins_s, 3 decimals) and in score_clips' part_seconds (16 kHz
# samples) differ by rounding; beyond this, the two do not describe the same parts.
PART_MATCH_S = 0.02
# A turn's cut (turn_stretches) needs a gap of at least this between Whisper's words: in latched
# speech the cut otherwise falls between two words spoken without a pause, and Whisper's word
# times there are off by about as much (a telephone call: the other voice's last word kept, or
# the target's first lost).
TURN_CUT_GAP_S = 0.1
# How far from the target's word next to it a turn's cut goes into the gap (at most half way).
TURN_CUT_PAD_S = 0.1
# The floor the edges are trimmed against: this percentile of the source clip's frame levels
# (its pauses and pads; preprocess uses the stem around the clip the same way).
FLOOR_PERCENTILE = 10.0


@dataclass(frozen=True)
class RecutParams:
    enabled: bool = True
    min_clip_s: float = 1.0
    pad_s: float = 0.25
    trim_threshold_db: float = -40.0
    frame_s: float = 0.01
    target_lufs: float = -23.0
    peak_dbfs: float = -1.0

    @classmethod
    def from_config(cls, cfg: dict) -> "RecutParams":
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in cfg.items() if k in names})


@dataclass
class Run:
    """Consecutive parts of a clip (``first``..``last``, indices into its parts) to keep."""

    first: int
    last: int
    start: float  # clip seconds
    end: float
    embedding: np.ndarray
    similarity: float
    kind: str = ""  # "": parts; "w": speaker-encoder windows (turn_stretches)


def part_spans(duration: float, joins: list[float]) -> list[tuple[float, float]]:
    """A joined clip's parts as (start, end) clip seconds: cut at each join."""
    cuts = [0.0, *[min(max(t, 0.0), duration) for t in joins], duration]
    return [(a, b) for a, b in zip(cuts, cuts[1:]) if b > a]


def embedded_spans(spans: list[tuple[float, float]], seconds: np.ndarray) -> list[int] | None:
    """The indices of ``spans`` that score_clips embedded, matched in order to its part
    ``seconds`` (each within PART_MATCH_S); a span about MIN_PART_S long may be either (clips.tsv
    rounds its joins, score_clips counts samples). None when they do not match: a span plainly
    long enough has no part, or parts are left over."""
    out, k = [], 0
    for i, (a, b) in enumerate(spans):
        length = b - a
        if k < len(seconds) and length >= MIN_PART_S - PART_MATCH_S and abs(length - seconds[k]) <= PART_MATCH_S:
            out.append(i)
            k += 1
        elif length >= MIN_PART_S + PART_MATCH_S:
            return None
    return out if k == len(seconds) else None


def target_runs(spans: list[tuple[float, float]], parts: ClipParts, verdicts: list[str], target: np.ndarray,
                min_similarity: float) -> list[Run]:
    """The runs of consecutive parts that are all the target's, excluding the whole clip; []
    when score_clips' parts (those of MIN_PART_S or more) do not match ``spans``."""
    long = embedded_spans(spans, parts.seconds)
    if long is None:
        return []
    row_of = dict(zip(long, range(len(long))))
    ok = [i in row_of and not verdicts[row_of[i]] for i in range(len(spans))]
    runs, i = [], 0
    while i < len(spans):
        if not ok[i]:
            i += 1
            continue
        j = i
        while j + 1 < len(spans) and ok[j + 1]:
            j += 1
        if j - i + 1 < len(spans):
            rows = [row_of[k] for k in range(i, j + 1)]
            emb = (parts.embeddings[rows] * parts.seconds[rows, None]).sum(axis=0)
            emb = (emb / max(float(np.linalg.norm(emb)), 1e-12)).astype(np.float32)
            sim = float(similarity(emb, target))
            if sim >= min_similarity:
                runs.append(Run(i, j, spans[i][0], spans[j][1], emb, sim))
        i = j + 1
    return runs


def trimmed(audio: np.ndarray, rate: int, start: float, end: float, p: RecutParams) -> tuple[int, int] | None:
    """Samples [a, b) of ``audio`` (the source clip): the run's speech plus ``pad_s``, or None
    when it holds no frame over the trim threshold."""
    from workflow_scripts.preprocess import speech_bounds

    hop = max(int(p.frame_s * rate), 1)
    n = len(audio) // hop
    if n == 0:
        return None
    rms = np.sqrt(np.mean(np.asarray(audio[: n * hop], dtype=np.float64).reshape(n, hop) ** 2, axis=1))
    floor = float(np.percentile(rms, FLOOR_PERCENTILE))
    lo, hi = int(round(start * rate)), min(int(round(end * rate)), len(audio))
    bounds = speech_bounds(audio[lo:hi], rate, p.trim_threshold_db, p.frame_s, floor)
    if bounds is None:
        return None
    pad = int(p.pad_s * rate)
    return max(lo, lo + bounds[0] - pad), min(hi, lo + bounds[1] + pad)


def run_record(record: dict, audio: np.ndarray, rate: int, run: Run, a: int, b: int) -> dict:
    """The transcript record of the run cut to samples [a, b) of its source clip: the words
    whose midpoint falls in the run, and the edge evidence at the new edges."""
    words = record.get("words") or []
    owned = [w for w in words if run.start <= (w["start"] + w["end"]) / 2 < run.end]
    start, end = a / rate, b / rate
    fields = clip_record(owned, start, end)
    return {
        **record, **fields, "duration_s": round(end - start, 3),
        "edge_overlap_s": [edge_overlap(words, start, owned, "start"), edge_overlap(words, end, owned, "end")],
        "edge_floor_db": edge_floor_db(audio, rate, 0.0, start, end),
    }


def read_clip(path: str | Path) -> tuple[np.ndarray, int]:
    import soundfile as sf

    x, rate = sf.read(str(path), dtype="float32", always_2d=True)
    return x[:, 0], rate


def recut_name(clip: str, run: Run) -> str:
    return f"{Path(clip).stem}-{run.kind}{run.first + 1}.wav"


def plan_clip(record: dict, parts: ClipParts, joins: list[float], audio: np.ndarray, rate: int, target: np.ndarray,
              others: np.ndarray, gate_cfg: dict, p: RecutParams) -> list[tuple[Run, int, int, dict]]:
    """[(run, a, b, record)] of a rejected joined clip (``audio`` at ``rate``): each run to
    keep, its samples in the clip and its transcript record (not yet gated)."""
    duration = len(audio) / rate
    spans = part_spans(duration, joins)
    verdicts = part_verdicts(parts, target, others, gate_cfg)
    return plan_runs(record, target_runs(spans, parts, verdicts, target, gate_cfg["min_similarity"]), audio, rate, p)


def plan_runs(record: dict, runs: list[Run], audio: np.ndarray, rate: int, p: RecutParams) -> list[tuple[Run, int, int, dict]]:
    """[(run, a, b, record)] of the ``runs`` of a clip (``audio`` at ``rate``) that are at
    least ``min_clip_s`` once trimmed to their speech plus ``pad_s``."""
    out = []
    for run in runs:
        cut = trimmed(audio, rate, run.start, min(run.end, len(audio) / rate), p)
        if cut is None or (cut[1] - cut[0]) / rate < p.min_clip_s:
            continue
        out.append((run, cut[0], cut[1], run_record(record, audio, rate, run, *cut)))
    return out


def word_gap_cut(lo: float, hi: float, words: list[dict], after: bool) -> float | None:
    """Where to cut between ``lo`` and ``hi`` (clip seconds): in a gap of TURN_CUT_GAP_S or
    more between two words whose middle falls there. ``after``: the run starts after the cut
    (the last such gap, cut TURN_CUT_PAD_S before the word after it); else it ends there (the
    first gap, cut TURN_CUT_PAD_S after the word before it), so that whatever the gap holds
    (the other voice's words Whisper did not write) stays out, with at most half the gap.
    None when there is no such gap (a cut would clip a word of one voice or the other)."""
    gaps = [(a["end"], b["start"]) for a, b in zip(words, words[1:]) if b["start"] - a["end"] >= TURN_CUT_GAP_S]
    inside = [(x, y) for x, y in gaps if lo <= (x + y) / 2 <= hi]
    if not inside:
        return None
    x, y = inside[-1] if after else inside[0]
    return max((x + y) / 2, y - TURN_CUT_PAD_S) if after else min((x + y) / 2, x + TURN_CUT_PAD_S)


def turn_stretches(spans: np.ndarray, sides: np.ndarray, words: list[dict], duration: float) -> list[tuple[int, int, float, float]]:
    """(first window, last window, start, end) of each run of TURN_MIN_WINDOWS or more
    consecutive windows that are plainly the target's (``sides`` -1: clip_gates.window_sides);
    a window of the other voice, or one as near to both, ends a run (a 1.6 s window holds a
    turn of a second or so and the target's words either side of it). A run is cut between the
    middles of its outer window and the next one out, at a pause between words there
    (word_gap_cut): of several, the one nearest the run, so that a short turn of the other
    voice between two of them stays out. A run with no pause at one of its cuts is not kept."""
    mid = (np.asarray(spans)[:, 0] + np.asarray(spans)[:, 1]) / 2
    out, i, n = [], 0, len(sides)
    while i < n:
        if sides[i] != -1:
            i += 1
            continue
        j = i
        while j + 1 < n and sides[j + 1] == -1:
            j += 1
        if j - i + 1 >= TURN_MIN_WINDOWS:
            start = 0.0 if i == 0 else word_gap_cut(mid[i - 1], mid[i], words, after=True)
            end = duration if j == n - 1 else word_gap_cut(mid[j], mid[j + 1], words, after=False)
            if start is not None and end is not None and end > start:
                out.append((i, j, start, end))
        i = j + 1
    return out


def turn_runs(record: dict, windows: np.ndarray, spans: np.ndarray, mine: np.ndarray, others: np.ndarray,
              target: np.ndarray) -> list[Run]:
    """The runs of a clip whose windows hold another voice's turn (clip_gates.turn_reasons):
    each stretch of the target's windows between the turns (turn_stretches)."""
    w = np.asarray(windows, dtype=np.float32)
    duration = float(record.get("duration_s") or np.max(spans[:, 1]))
    runs = []
    for first, last, start, end in turn_stretches(spans, window_sides(w, mine, others), record.get("words") or [],
                                                  duration):
        emb = mean_direction(w[first:last + 1])
        runs.append(Run(first, last, start, end, emb, float(similarity(emb, target)), "w"))
    return runs
