"""The audio gates over all recordings' clips: DNSMOS thresholds and the target voice.

Inputs are what score_clips writes per recording (``scores.jsonl`` + ``embeddings.npy``);
aggregate_metadata applies the decisions next to the transcript gate. Numpy only (runs
in the media env): the speaker encoder is not needed here, only its embeddings.

* Quality (``quality.*``): a clip whose DNSMOS scores miss a threshold is rejected with
  ``low_dnsmos_<key>:<value><<threshold>`` (audio_quality.gate_reasons). The OVRL and P.808
  bars are judged against the target voice's own recordings (``applied_bars``): ``min_ovrl``
  when the target's clips are typically well above it, lowered to their lower quartile
  (``relative_quantile``) minus ``relative_margin`` (not below ``min_ovrl_floor``) when they are
  not; P.808 likewise. Ordinary room noise alone costs a clip about half a point of OVRL (real
  HF-radio hiss at 20 dB SNR: median 2.62 against 3.17 clean; at 10 dB 2.41;
  bench/bench_gates.py) and takes P.808 under 3.0, so fixed bars reject every clip of a plainly
  usable home recording. The quartile rather than the median: a take recorded further from the
  microphone, a quarter of the voice's clips or more, is the voice's own condition, not an
  outlier to drop; what goes is the clips worse than most of the voice's recordings (music
  beds, crowd noise, a passing truck) and everything under the floors.
* Target voice (``speaker_gate.*``): the clips' embeddings over all recordings are clustered
  (speaker_similarity.dominant_speaker); the clusters are the *voices* (numbered by size:
  ``voice_1`` is the largest). The target is the reference's mean embedding when reference
  files are given, else the centroid of the largest cluster of *phrases*: a clip of one part
  counts as one phrase, a clip of several parts (preprocess joins short phrases; segmentation
  leaves seams in a segment's pauses) as its parts of at least LONG_PART_S, so another voice
  joined into many of the target's clips does not pull the target towards itself (a
  conversation's answers are joined to the question before them as often as not). A clip whose
  cosine to the target is under ``min_similarity`` is rejected as
  ``other_speaker:sim=<s><<min>``, a clip in which the encoder found no voice as ``no_voice``.
  A clip of several parts is also rejected when a voiced part of LONG_PART_S or more is under
  ``min_part_similarity`` to the target (``other_speaker:part_sim=<s><<min>``), or, when the
  recordings hold another voice (a phrase cluster under ``min_similarity`` to the target, of
  VOICE_MIN_CLIPS phrases and VOICE_MIN_SECONDS), a shorter one (score_clips embeds parts from
  0.25 s) under ``min_short_part_similarity``, or a part of any length nearer by
  OTHER_VOICE_MARGIN to another voice than to the target
  (``other_speaker:part_sim=<s>,other_voice=<s>``), so a turn or a "Yeah." of another voice
  joined to a phrase of the target, or 0.3 s from it in one segment, does not pass on the
  target's share. Another woman recorded on the same studio chain scored 0.64-0.71 to the
  target in 1.3-1.6 s answers and 3-4 s turns, over the part bar, and 0.86-0.96 to her own
  voice: only the nearer voice tells them apart. A quarter-second embedding alone says little
  (a 0.38 s fragment of silero-vad's one-speaker ``test.wav`` scored 0.53 to its own voice): a
  short part is judged mostly by which voice it is nearer to, the absolute bar only catches
  the plainly foreign. Inside a part, a turn of another voice with no pause of island_pause_s
  before it (overlapping or latched speech) shows in the speaker encoder's 1.6 s windows: a
  clip whose second-lowest window is under ``min_window_similarity`` to the target is rejected
  (``other_speaker:window_sim=<s><<min>``). Measured against the phrase centroid: a man's
  3-4 s turns inside a woman's clips 0.48-0.51; the second-lowest window of one-speaker clips at
  least 0.66 (silero-vad's ``aepyx.wav`` broadcast; 0.75-0.82 on its ``test.wav``, the
  Asterisk voice read and spontaneous, in takes and noise, and ``ve9qrp.wav``'s HF radio). The
  part and window bars are lower than the whole clip's because a part's embedding is noisier:
  the target's own 2 s parts scored 0.69-0.77 (silero-vad's one-speaker ``test.wav`` against
  its centroid, the Asterisk voice against a 3-prompt reference), a man's turns 0.44-0.54 and
  his one-word answers (0.4-0.9 s) 0.45-0.56 against the target's phrase centroid in a
  conversation where most of his words were joined to hers (bench/bench_conversation.py);
  another woman recorded on the same studio chain scored 0.70-0.76, which no bar tells from
  the target (the nearer voice does, above). A clip rejected on its parts is cut again at its
  part boundaries (workflow_scripts/recut.py; part_verdicts judges each part), so the target's
  phrases in it are kept.
* Latched turns (``window_voices``, ``turn_reasons``): where turns follow one another with no
  pause (a telephone call), every clip holds both voices, so the clips, their parts and the
  phrases all look like one mixed voice and the checks above pass them. The speaker encoder's
  windows are still one voice's each: they are clustered over the recordings' judged clips, and
  when two voices show (WINDOW_VOICE_* below) a clip holding TURN_MIN_WINDOWS windows in a row
  nearer another voice's windows than the target's is rejected
  (``other_speaker:turn=<k>/<n>``: k of its n windows). Recut cuts it between the turns, at
  pauses between Whisper's words (workflow_scripts/recut.py), unless a part of it failed (then
  at its part boundaries).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from workflow_scripts.audio_quality import THRESHOLD_KEYS, gate_reasons
from workflow_scripts.io_utils import StageError, read_jsonl
from workflow_scripts.speaker_similarity import EMBED_DIM, dominant_speaker, mean_direction, similarity

# A voice is reported as found in a recording when it holds at least this many clips and
# seconds there (a single stray clip is more often noise or a cough than a second speaker).
VOICE_MIN_CLIPS = 2
VOICE_MIN_SECONDS = 5.0
# Parts of a clip shorter than this are not embedded (score_clips): a quarter second
# holds about one syllable, less than the speaker encoder can place. Parts from here up are: a
# backchannel of another voice ("Yeah.", "Right.", 0.4-0.9 s) joined to the target's phrase is
# what the speaker gate must find in a conversation.
MIN_PART_S = 0.25
# A clip's part at least this long is judged against min_part_similarity, and counts as
# a phrase of its own when the target is found without a reference; shorter parts are judged
# against min_short_part_similarity only; both against the other voices (part_verdicts).
LONG_PART_S = 1.0
# A part is another voice's when it is at least this much nearer to one of the other voices
# found than to the target: one-word answers of a man joined to a woman's phrases scored
# 0.45-0.56 to her and 0.81-0.95 to his own turns; the margin keeps a part that is about as near
# to both (a second take of the target, recorded elsewhere) on the target's side.
OTHER_VOICE_MARGIN = 0.1

# Voices found from the speaker encoder's windows (1.6 s of voiced audio each) rather than from
# whole clips or parts: in a conversation whose turns are latched (no pause between them, as on
# the telephone) every clip holds both voices, so no clip, part or phrase is one voice's and the
# clip-level voices see one mixed speaker, but nearly every window is one voice's. A cluster of
# windows is a voice when it holds WINDOW_VOICE_MIN_SHARE of the windows and
# WINDOW_VOICE_MIN_WINDOWS or more (a speaker's odd windows, and music under a podcast's intro,
# stay under 7 %), and another voice than the target's when its centroid is under
# WINDOW_VOICE_MAX_SIMILARITY to the target's window centroid. Measured on real speech:
# two women on a telephone line (pyannote.audio's sample conversation) 0.82; one speaker's
# window clusters against his main one 0.88-0.91 (silero-vad's test.wav lecture, ve9qrp's HF
# radio), the Asterisk voice in takes, noise and music 0.74-0.93 but under 7 % of the windows.
WINDOW_VOICE_MIN_SHARE = 0.1
WINDOW_VOICE_MIN_WINDOWS = 6
WINDOW_VOICE_MAX_SIMILARITY = 0.85
# A window is another voice's when at least this much nearer to that voice's window centroid
# than to the target's; TURN_MIN_WINDOWS such windows in a row (about 2.3 s of speech) are a
# turn of it inside the clip (one window alone may straddle a backchannel or a cough).
WINDOW_VOICE_MARGIN = 0.05
TURN_MIN_WINDOWS = 2


@dataclass
class ClipParts:
    """A clip's embedded parts (score_clips' part_embeddings and part_seconds)."""

    embeddings: np.ndarray  # k x EMBED_DIM
    seconds: np.ndarray  # k


@dataclass
class ClipScores:
    """One recording's score_clips output, by clip file name."""

    records: dict[str, dict]
    embeddings: dict[str, np.ndarray]
    parts: dict[str, ClipParts]  # a clip's embedded parts (several parts); absent otherwise
    windows: dict[str, np.ndarray]  # the speaker encoder's windows (k x EMBED_DIM) of a clip of 2 or more
    window_spans: dict[str, np.ndarray] = field(default_factory=dict)  # where they lie (k x 2 clip seconds)


def read_scores(scores_jsonl: str | Path, embeddings_npy: str | Path) -> ClipScores:
    path = Path(scores_jsonl)
    records = read_jsonl(path)
    try:
        emb = np.load(str(embeddings_npy))
    except (OSError, ValueError) as exc:
        raise StageError(f"{embeddings_npy}: cannot read ({exc})") from exc
    if emb.shape != (len(records), EMBED_DIM):
        raise StageError(f"{embeddings_npy}: shape {emb.shape}, expected ({len(records)}, {EMBED_DIM}) for {path}")
    parts, windows, spans = {}, {}, {}
    for r in records:
        if r.get("window_embeddings"):
            win = np.asarray(r["window_embeddings"], dtype=np.float32)
            if win.ndim != 2 or win.shape[1] != EMBED_DIM:
                raise StageError(f"{path}: clip {r['clip']}: window_embeddings of shape {win.shape}, expected (k, {EMBED_DIM})")
            windows[r["clip"]] = win
            if r.get("window_spans_s") is not None:
                span = np.asarray(r["window_spans_s"], dtype=np.float64)
                if span.shape != (len(win), 2):
                    raise StageError(f"{path}: clip {r['clip']}: window_spans_s of shape {span.shape}, expected ({len(win)}, 2)")
                spans[r["clip"]] = span
        if r.get("part_embeddings"):
            part = np.asarray(r["part_embeddings"], dtype=np.float32)
            if part.ndim != 2 or part.shape[1] != EMBED_DIM:
                raise StageError(f"{path}: clip {r['clip']}: part_embeddings of shape {part.shape}, expected (k, {EMBED_DIM})")
            # a record without part_seconds embedded only parts of LONG_PART_S or more
            seconds = np.asarray(r.get("part_seconds") or [LONG_PART_S] * len(part), dtype=np.float64)
            if seconds.shape != (len(part),):
                raise StageError(f"{path}: clip {r['clip']}: {len(seconds)} part_seconds for {len(part)} part_embeddings")
            parts[r["clip"]] = ClipParts(part, seconds)
    return ClipScores({r["clip"]: r for r in records}, {r["clip"]: emb[i] for i, r in enumerate(records)}, parts, windows,
                      spans)


RELATIVE_KEYS = ("ovrl", "p808")  # the scores whose bar relative_margin may lower
# A target voice whose clips' lower-quartile OVRL is under this was recorded in noise: speech
# 10 dB over broadband room noise scores 2.2-2.6, 16 dB over it 2.66-3.0, studio speech 2.9-3.4.
# Its clips pass the floors, but a voice trained on them keeps the noise: the summary says so.
NOISY_VOICE_OVRL = 2.5


def noisy_voice(quantiles: dict[str, float | None]) -> bool:
    """Whether the target voice's OVRL quantile (target_quantiles) says it was recorded in noise."""
    return quantiles.get("ovrl") is not None and quantiles["ovrl"] < NOISY_VOICE_OVRL


def target_quantiles(target: list[dict], q: float) -> dict[str, float | None]:
    """Per RELATIVE_KEYS score: its ``q`` quantile over the DNSMOS dicts ``target`` (None when
    no clip has it)."""
    out = {}
    for key in RELATIVE_KEYS:
        values = [d[key] for d in target if d and d.get(key) is not None]
        out[key] = float(np.quantile(values, q)) if values else None
    return out


def applied_bars(target: list[dict], quality_cfg: dict) -> dict[str, float | None]:
    """The OVRL and P.808 bars for a dataset whose target-voice clips scored ``target``
    (their DNSMOS dicts): per key, ``min_<key>``, or the clips' ``relative_quantile`` minus
    ``relative_margin`` when that is lower, but not under ``min_<key>_floor`` (nor above
    ``min_<key>``); rounded to 0.01. ``min_<key>`` itself when ``relative_margin`` is None,
    the key is not checked (None) or no target clip has the score."""
    margin = quality_cfg["relative_margin"]
    bars = {}
    for key, level in target_quantiles(target, quality_cfg["relative_quantile"]).items():
        bar = quality_cfg[f"min_{key}"]
        if bar is None or margin is None or level is None:
            bars[key] = bar
            continue
        floor = min(quality_cfg[f"min_{key}_floor"], bar)
        bars[key] = round(max(floor, min(bar, level - margin)), 2)
    return bars


def quality_reasons(dnsmos: dict | None, quality_cfg: dict, bars: dict | None = None) -> list[str]:
    """Reasons the clip fails the DNSMOS gate ([] when it passes or the gate is off);
    ``bars``: the applied OVRL / P.808 bars (``applied_bars``), else the configured ones."""
    if not quality_cfg["enabled"]:
        return []
    if dnsmos is None:
        raise StageError("quality.enabled but a clip has no DNSMOS scores (score_clips ran without them)")
    limits = {k: quality_cfg[k] for k in THRESHOLD_KEYS}
    limits.update({f"min_{key}": bar for key, bar in (bars or {}).items()})
    return gate_reasons(dnsmos, **limits)


@dataclass
class SpeakerDecision:
    similarity: np.ndarray  # cosine to the target, per row (0 for rows without voice)
    voice: list[str]  # voice_1 (largest cluster), voice_2, ...; "" without voice
    reasons: list[list[str]]  # per row, [] = the target voice
    target_voice: str  # the voice holding most of the target's clips
    mode: str  # "reference" or "dominant"
    target: np.ndarray | None = None  # the target embedding (None: no voice found)
    others: np.ndarray | None = None  # the other voices' centroids (other_voices)
    window_target: np.ndarray | None = None  # the target's window centroid (window_voices; None: one voice)
    window_others: np.ndarray | None = None  # the other voices' window centroids


def _long_parts(part: ClipParts | None) -> np.ndarray:
    """Which of a clip's parts count as phrases: voiced, LONG_PART_S or more."""
    if part is None:
        return np.zeros(0, dtype=bool)
    return (part.seconds >= LONG_PART_S) & (np.linalg.norm(part.embeddings, axis=1) > 0)


def phrase_embeddings(e: np.ndarray, parts: list[ClipParts | None]) -> np.ndarray:
    """The rows the target is found from without a reference: each clip's embedding;
    for a clip of several parts, its parts of LONG_PART_S or more instead (when it has any voiced)."""
    rows = []
    for i, emb in enumerate(e):
        part = parts[i] if i < len(parts) else None
        long = _long_parts(part)
        rows.extend(part.embeddings[long] if long.any() else [emb])
    return np.asarray(rows, dtype=np.float32).reshape(-1, EMBED_DIM)


def phrase_seconds(durations: list[float], parts: list[ClipParts | None]) -> np.ndarray:
    """The seconds of each row of phrase_embeddings (the clip's, or its long parts')."""
    out = []
    for i, duration in enumerate(durations):
        part = parts[i] if i < len(parts) else None
        long = _long_parts(part)
        out.extend(part.seconds[long] if long.any() else [duration])
    return np.asarray(out, dtype=np.float64)


def other_voices(phrases: np.ndarray, labels: np.ndarray, target: np.ndarray, gate_cfg: dict,
                 seconds: np.ndarray | None = None) -> np.ndarray:
    """Centroids (k x EMBED_DIM) of the phrase clusters (``labels``) that are under
    ``min_similarity`` to the target and hold VOICE_MIN_CLIPS phrases and VOICE_MIN_SECONDS
    (``seconds``: per phrase; None: any length) or more: the other voices of the recordings. A
    single speaker's few odd phrases (two 1.7 s parts of a lecturer at 0.78 to his centroid)
    are no voice to judge his short parts against."""
    long_enough = [True] * (int(labels.max()) + 1) if seconds is None else [
        float(seconds[labels == c].sum()) >= VOICE_MIN_SECONDS for c in range(int(labels.max()) + 1)]
    cents = [mean_direction(phrases[labels == c]) for c in range(int(labels.max()) + 1)
             if (labels == c).sum() >= VOICE_MIN_CLIPS and long_enough[c]]
    cents = [c for c in cents if np.any(c) and float(similarity(c, target)) < gate_cfg["min_similarity"]]
    return np.asarray(cents, dtype=np.float32).reshape(-1, EMBED_DIM)


def part_verdicts(part: ClipParts, target: np.ndarray, others: np.ndarray, gate_cfg: dict) -> list[str]:
    """Per embedded part of a clip, why it is not the target's ("" when it is): a part
    of LONG_PART_S or more under ``min_part_similarity``; when ``others`` holds another voice,
    a shorter one under ``min_short_part_similarity``, and a part of any length nearer (by
    OTHER_VOICE_MARGIN) to another voice than to the target; ``no_voice`` when the encoder
    found none in it.

    With no other voice in the recordings a short part is not judged: nothing says it is
    someone else's, and a single speaker's own words score as low as a stranger's there
    (0.39-0.45 to the Asterisk voice's centroid, against 0.45-0.56 for a man's one-word
    answers in a conversation)."""
    out = []
    for e, sec in zip(part.embeddings, part.seconds):
        if not np.linalg.norm(e) > 0:
            out.append("no_voice")
            continue
        if sec < LONG_PART_S and not len(others):
            out.append("")
            continue
        sim = float(similarity(e, target))
        bar = gate_cfg["min_part_similarity"] if sec >= LONG_PART_S else gate_cfg["min_short_part_similarity"]
        near = float(np.max(others @ e)) if len(others) else -1.0
        if sim < bar:
            out.append(f"other_speaker:part_sim={sim:.2f}<{bar:g}")
        elif near >= sim + OTHER_VOICE_MARGIN:
            out.append(f"other_speaker:part_sim={sim:.2f},other_voice={near:.2f}")
        else:
            out.append("")
    return out


def part_reasons(part: ClipParts, target: np.ndarray, others: np.ndarray, gate_cfg: dict) -> list[str]:
    """Why a clip's parts are not all the target's ([] when they are): the first voiced
    part that part_verdicts rejects (a part without voice alone rejects nothing)."""
    return next(([v] for v in part_verdicts(part, target, others, gate_cfg) if v and v != "no_voice"), [])


def window_reasons(windows: np.ndarray | None, target: np.ndarray, gate_cfg: dict) -> list[str]:
    """``other_speaker:window_sim=<s><<min>`` when the second-lowest of a clip's speaker-encoder
    windows is under ``min_window_similarity`` (two windows: ~2.3 s of another voice), or []."""
    if windows is None or len(windows) < 2:
        return []
    sims = np.sort(np.atleast_1d(similarity(np.asarray(windows, dtype=np.float32).reshape(-1, EMBED_DIM), target)))
    bar = gate_cfg["min_window_similarity"]
    return [f"other_speaker:window_sim={sims[1]:.2f}<{bar:g}"] if sims[1] < bar else []


def window_voices(windows: list[np.ndarray], target: np.ndarray, threshold: float) -> tuple[np.ndarray | None, np.ndarray]:
    """(the target's window centroid, the other voices' window centroids k x EMBED_DIM) from
    the clips' speaker-encoder ``windows``: clustered as clips are (dominant_speaker), each
    cluster of WINDOW_VOICE_MIN_SHARE and WINDOW_VOICE_MIN_WINDOWS or more a voice, the one
    nearest ``target`` the target's, the others under WINDOW_VOICE_MAX_SIMILARITY to it
    another's; (None, empty) when the windows hold fewer than two such voices."""
    none = None, np.zeros((0, EMBED_DIM), np.float32)
    rows = [np.asarray(w, dtype=np.float32).reshape(-1, EMBED_DIM) for w in windows if w is not None and len(w)]
    w = np.concatenate(rows) if rows else np.zeros((0, EMBED_DIM), np.float32)
    need = max(WINDOW_VOICE_MIN_WINDOWS, WINDOW_VOICE_MIN_SHARE * len(w))
    if len(w) < 2 * need:
        return none
    labels, _ = dominant_speaker(w, threshold)
    counts = np.bincount(labels)
    cents = np.asarray([mean_direction(w[labels == c]) for c in range(len(counts)) if counts[c] >= need])
    if len(cents) < 2:
        return none
    mine = cents[int(np.argmax(cents @ target))]
    others = cents[(cents @ mine) < WINDOW_VOICE_MAX_SIMILARITY]
    return (mine, others) if len(others) else none


def window_sides(windows: np.ndarray, mine: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Per window: 1 when another voice's (WINDOW_VOICE_MARGIN nearer to one of ``others``
    than to ``mine``, window_voices), -1 when the target's by the same margin, 0 when neither."""
    w = np.asarray(windows, dtype=np.float32).reshape(-1, EMBED_DIM)
    near, own = (w @ np.asarray(others).T).max(axis=1), w @ mine
    return np.where(near >= own + WINDOW_VOICE_MARGIN, 1, np.where(own >= near + WINDOW_VOICE_MARGIN, -1, 0))


def turn_reasons(windows: np.ndarray | None, mine: np.ndarray | None, others: np.ndarray) -> list[str]:
    """``other_speaker:turn=<k>/<n>`` when TURN_MIN_WINDOWS or more consecutive windows of a
    clip's ``n`` are another voice's and another is plainly the target's (window_sides; ``k``
    of the other voice's in all), or []. A clip of the other voice's windows alone is left to
    the whole-clip check: one speaker recorded in two rooms can make two window voices, and
    then none of his clips holds both."""
    if mine is None or windows is None or len(windows) < TURN_MIN_WINDOWS:
        return []
    sides = window_sides(windows, mine, others)
    if not (sides == -1).any():
        return []
    flags = sides == 1
    run = longest = 0
    for flag in flags:
        run = run + 1 if flag else 0
        longest = max(longest, run)
    return [f"other_speaker:turn={int(flags.sum())}/{len(flags)}"] if longest >= TURN_MIN_WINDOWS else []


def voice_rows(voiced: np.ndarray, judged: list[bool] | None) -> np.ndarray:
    """Indices of the rows voices are found from: the voiced ones of ``judged``, or every row
    when none is (``judged`` None: every row)."""
    if judged is None:
        return np.arange(len(voiced))
    rows = np.flatnonzero(voiced & np.asarray(judged, dtype=bool))
    return rows if len(rows) else np.arange(len(voiced))


def judged_rows(wordless: list[bool], dnsmos: list[dict | None], ovrl_floor: float | None) -> list[bool]:
    """Which clips voices are found from: those Whisper heard words in whose OVRL is not under
    ``ovrl_floor`` (None: any OVRL). In noise near 0 dB SNR the speaker encoder's embedding
    follows the noise as much as the voice: a noisier take of one speaker formed a phrase
    cluster of its own, a second "voice" whose presence had every short part of the speaker's
    judged, and the clips it holds are under the DNSMOS floor anyway."""
    out = []
    for silent, d in zip(wordless, dnsmos):
        ovrl = (d or {}).get("ovrl")
        out.append(not silent and (ovrl_floor is None or ovrl is None or ovrl >= ovrl_floor))
    return out


def decide_speakers(embeddings: np.ndarray, gate_cfg: dict, reference: np.ndarray | None,
                    parts: list[ClipParts | None] | None = None,
                    windows: list[np.ndarray | None] | None = None,
                    durations: list[float] | None = None,
                    judged: list[bool] | None = None) -> SpeakerDecision:
    """Voices and the target decision for every row of ``embeddings`` (all recordings' clips);
    ``parts[i]``: row i's embedded parts when it has several (None otherwise), each
    voiced one checked against its bar; ``windows[i]``: row i's speaker-encoder windows
    (None for a clip of one window); ``durations[i]``: row i's seconds (None: another voice
    needs no seconds, only phrases); ``judged[i]``: whether row i counts in finding the voices
    (judged_rows: Whisper heard words in it, its audio is clean enough; None: every row). The
    target and the other voices are found from those rows only (from all when none is): the
    speaker encoder takes music or a jingle for a voice, and a podcast's intro and outro music
    would otherwise be a second voice that every short part of the speaker's, under the music
    bed, is judged against."""
    e = np.asarray(embeddings, dtype=np.float32).reshape(-1, EMBED_DIM)
    voiced = np.linalg.norm(e, axis=1) > 0
    n = len(e)
    parts = list(parts or [])
    windows = list(windows or [])
    voice = [""] * n
    if not voiced.any():
        return SpeakerDecision(np.zeros(n), voice, [["no_voice"]] * n, "", "reference" if reference is not None else "dominant")
    labels, _ = dominant_speaker(e, gate_cfg["cluster_threshold"])
    for i in np.flatnonzero(voiced):
        voice[i] = f"voice_{labels[i] + 1}"
    rows = voice_rows(voiced, judged)
    row_parts = [parts[i] if i < len(parts) else None for i in rows]
    phrases = phrase_embeddings(e[rows], row_parts)
    phrase_labels, phrase_centroid = dominant_speaker(phrases, gate_cfg["cluster_threshold"])
    target = reference if reference is not None else phrase_centroid
    seconds = None if durations is None else phrase_seconds([durations[i] for i in rows], row_parts)
    others = other_voices(phrases, phrase_labels, target, gate_cfg, seconds)
    mine, turn_others = window_voices([windows[i] for i in rows if i < len(windows)], target,
                                      gate_cfg["cluster_threshold"])
    sims = np.where(voiced, np.atleast_1d(similarity(e, target)), 0.0)
    min_sim = gate_cfg["min_similarity"]
    reasons = []
    for i in range(n):
        if not gate_cfg["enabled"]:
            reasons.append([])
        elif not voiced[i]:
            reasons.append(["no_voice"])
        elif sims[i] < min_sim:
            reasons.append([f"other_speaker:sim={sims[i]:.2f}<{min_sim:g}"])
        else:
            part = part_reasons(parts[i], target, others, gate_cfg) if i < len(parts) and parts[i] is not None else []
            win = windows[i] if i < len(windows) else None
            reasons.append(part or window_reasons(win, target, gate_cfg) or turn_reasons(win, mine, turn_others))
    on_target = [voice[i] for i in range(n) if voiced[i] and sims[i] >= min_sim]
    target_voice = max(sorted(set(on_target)), key=on_target.count) if on_target else ""
    return SpeakerDecision(np.round(sims, 4), voice, reasons, target_voice,
                           "reference" if reference is not None else "dominant", target, others, mine, turn_others)


def voices_by_recording(rows: list[dict]) -> dict[str, dict]:
    """Per recording: the voices found (VOICE_MIN_CLIPS / VOICE_MIN_SECONDS) and, per voice,
    clips, seconds and seconds kept. ``rows`` carry recording, voice, duration, keep."""
    out: dict[str, dict] = {}
    for r in rows:
        rec = out.setdefault(r["recording"], {})
        v = rec.setdefault(r.get("voice") or "no_voice", {"clips": 0, "seconds": 0.0, "kept_seconds": 0.0})
        v["clips"] += 1
        v["seconds"] += r["duration"]
        v["kept_seconds"] += r["duration"] if r["keep"] else 0.0
    result = {}
    for rec, voices in sorted(out.items()):
        voices = {k: {**v, "seconds": round(v["seconds"], 3), "kept_seconds": round(v["kept_seconds"], 3)}
                  for k, v in sorted(voices.items())}
        found = [k for k, v in voices.items()
                 if k != "no_voice" and v["clips"] >= VOICE_MIN_CLIPS and v["seconds"] >= VOICE_MIN_SECONDS]
        result[rec] = {"voices_found": len(found), "voices": voices}
    return result


def embedding_map(embeddings: np.ndarray) -> np.ndarray:
    """2-D coordinates of the rows (first two principal components; rows without voice at
    the origin), signs fixed so the map does not flip between identical runs."""
    e = np.asarray(embeddings, dtype=np.float64).reshape(-1, EMBED_DIM)
    out = np.zeros((len(e), 2))
    voiced = np.linalg.norm(e, axis=1) > 0
    if voiced.sum() < 3:
        return out
    x = e[voiced] - e[voiced].mean(axis=0)
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    axes = vt[:2]
    axes *= np.where(np.abs(axes).max(axis=1, keepdims=True) == axes.max(axis=1, keepdims=True), 1.0, -1.0)
    out[voiced] = x @ axes.T
    return np.round(out, 4)
