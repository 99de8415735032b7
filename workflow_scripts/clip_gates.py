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
* Target voice (``speaker_gate.*``): the clips' embeddings over all recordings are
  clustered (speaker_similarity.dominant_speaker); the clusters are the *voices* (numbered by
  size: ``voice_1`` is the largest). The target is the reference's mean embedding when
  reference files are given, else the largest cluster's centroid; a clip whose cosine to
  the target is under ``min_similarity`` is rejected as ``other_speaker:sim=<s><<min>``, a clip
  in which the encoder found no voice as ``no_voice``. A clip joined from several segments
  (preprocess joins short phrases) is also rejected when a voiced part is under
  ``min_part_similarity`` to the target (``other_speaker:part_sim=<s><<min>``), so a turn of
  a clearly different voice joined to a phrase of the target does not pass on the target's
  share. The bar is lower than the whole clip's because a 2 s part's embedding is noisier: the
  target's own 2 s parts scored 0.69-0.77 (silero-vad's one-speaker ``test.wav`` against its
  centroid, the Asterisk voice against a 3-prompt reference), a man's turns 0.46-0.51; another
  woman recorded on the same studio chain scored 0.65-0.75, which the part check cannot tell
  from the target (tests/test_audio_gates_e2e.py, tests/test_scoring.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from workflow_scripts.audio_quality import THRESHOLD_KEYS, gate_reasons
from workflow_scripts.io_utils import StageError, read_jsonl
from workflow_scripts.speaker_similarity import EMBED_DIM, dominant_speaker, similarity

# A voice is reported as found in a recording when it holds at least this many clips and
# seconds there (a single stray clip is more often noise or a cough than a second speaker).
VOICE_MIN_CLIPS = 2
VOICE_MIN_SECONDS = 5.0


@dataclass
class ClipScores:
    """One recording's score_clips output, by clip file name."""

    records: dict[str, dict]
    embeddings: dict[str, np.ndarray]
    parts: dict[str, np.ndarray]  # a joined clip's part embeddings (k x EMBED_DIM); absent otherwise


def read_scores(scores_jsonl: str | Path, embeddings_npy: str | Path) -> ClipScores:
    path = Path(scores_jsonl)
    records = read_jsonl(path)
    try:
        emb = np.load(str(embeddings_npy))
    except (OSError, ValueError) as exc:
        raise StageError(f"{embeddings_npy}: cannot read ({exc})") from exc
    if emb.shape != (len(records), EMBED_DIM):
        raise StageError(f"{embeddings_npy}: shape {emb.shape}, expected ({len(records)}, {EMBED_DIM}) for {path}")
    parts = {}
    for r in records:
        if r.get("part_embeddings"):
            part = np.asarray(r["part_embeddings"], dtype=np.float32)
            if part.ndim != 2 or part.shape[1] != EMBED_DIM:
                raise StageError(f"{path}: clip {r['clip']}: part_embeddings of shape {part.shape}, expected (k, {EMBED_DIM})")
            parts[r["clip"]] = part
    return ClipScores({r["clip"]: r for r in records}, {r["clip"]: emb[i] for i, r in enumerate(records)}, parts)


RELATIVE_KEYS = ("ovrl", "p808")  # the scores whose bar relative_margin may lower


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


def decide_speakers(embeddings: np.ndarray, gate_cfg: dict, reference: np.ndarray | None,
                    parts: list[np.ndarray | None] | None = None) -> SpeakerDecision:
    """Voices and the target decision for every row of ``embeddings`` (all recordings' clips);
    ``parts[i]``: row i's part embeddings when it is a joined clip (None otherwise), each
    voiced one checked against ``min_part_similarity``."""
    e = np.asarray(embeddings, dtype=np.float32).reshape(-1, EMBED_DIM)
    voiced = np.linalg.norm(e, axis=1) > 0
    n = len(e)
    voice = [""] * n
    if not voiced.any():
        return SpeakerDecision(np.zeros(n), voice, [["no_voice"]] * n, "", "reference" if reference is not None else "dominant")
    labels, centroid = dominant_speaker(e, gate_cfg["cluster_threshold"])
    for i in np.flatnonzero(voiced):
        voice[i] = f"voice_{labels[i] + 1}"
    target = reference if reference is not None else centroid
    sims = np.where(voiced, np.atleast_1d(similarity(e, target)), 0.0)
    part_sims = np.ones(n)
    for i, part in enumerate(parts or []):
        if part is None:
            continue
        part = np.asarray(part, dtype=np.float32).reshape(-1, EMBED_DIM)
        part = part[np.linalg.norm(part, axis=1) > 0]
        if len(part):
            part_sims[i] = float(np.min(similarity(part, target)))
    min_sim, min_part = gate_cfg["min_similarity"], gate_cfg["min_part_similarity"]
    reasons = []
    for i in range(n):
        if not gate_cfg["enabled"]:
            reasons.append([])
        elif not voiced[i]:
            reasons.append(["no_voice"])
        elif sims[i] < min_sim:
            reasons.append([f"other_speaker:sim={sims[i]:.2f}<{min_sim:g}"])
        elif part_sims[i] < min_part:
            reasons.append([f"other_speaker:part_sim={part_sims[i]:.2f}<{min_part:g}"])
        else:
            reasons.append([])
    on_target = [voice[i] for i in range(n) if voiced[i] and sims[i] >= min_sim]
    target_voice = max(sorted(set(on_target)), key=on_target.count) if on_target else ""
    return SpeakerDecision(np.round(sims, 4), voice, reasons, target_voice,
                           "reference" if reference is not None else "dominant")


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
