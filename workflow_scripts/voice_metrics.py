"""What the voice evaluation measures per synthesised sentence (workflow_scripts/voice_eval.py):
pure functions, standard library and numpy only (tests and the runner import them).

Intelligibility: the word and character error rates (WER, CER) of Whisper's transcript of the
audio against the sentence, both texts normalised by ``normalize_for_scoring``:

1. ``quality_gate.normalize_text``, the normalisation the training transcripts get: numbers,
   common abbreviations and symbols spelt out ("10" -> "ten", "Dr." -> "doctor", "&" -> "and"),
   typographic quotes and dashes to ASCII, Whisper's non-speech tags ("[Music]") removed;
2. Unicode NFKC, lower case;
3. every character that is not a letter, a digit, an apostrophe or white space becomes a space
   (so "well-known" = "well known"), apostrophes at a word's edge go (quotes), an apostrophe
   inside a word stays ("it's" != "its": a different word is an error);
4. white space collapsed to single spaces.

WER = word-level Levenshtein distance (substitutions + deletions + insertions) / words of the
sentence; CER = the same over the characters of the normalised text, spaces included. Neither
is capped: a transcript with more insertions than the sentence has words scores over 1. Over
several sentences, ``error_rate`` sums the edits and the lengths (a corpus rate, so a long
sentence weighs by its length), not a mean of per-sentence rates.

Duration: ``expected_seconds`` = characters of the normalised sentence (spaces included) /
``chars_per_second`` (config ``evaluation.chars_per_second``), the speaking rate of natural
read speech in those units; the duration ratio = synthesised seconds / expected seconds.

Level checks (``level_measures``, on the model's own output before Piper's peak
normalisation, which would otherwise hide both a quiet and a saturated decoder): 20 ms frames;
a frame within ``SOUND_RANGE_DB`` of the loudest frame is sound, a quieter one silence; samples
at or above ``CLIP_LEVEL`` in magnitude are clipped (Piper's decoder ends in tanh, so a
saturated decoder sits at full scale). ``flags`` turns them into problems with the thresholds of
the config.
"""
from __future__ import annotations

import re
import unicodedata
from typing import Sequence

import numpy as np

from workflow_scripts.quality_gate import normalize_text

FRAME_S = 0.02
# frames this far (dB) under the sentence's loudest frame are silence: a pause in real speech
# lies 40-60 dB under the voice, breath and room tone 30-40 dB
SOUND_RANGE_DB = 40.0
# |sample| at or above this is clipped (tanh output this close to 1 is saturation, not speech)
CLIP_LEVEL = 0.99
FLAG_NAMES = ("silent", "clipped", "long_silence", "too_short", "too_long")


def normalize_for_scoring(text: str, language: str = "en") -> str:
    """``text`` as WER/CER compare it (module docstring, steps 1-4)."""
    t = normalize_text(text or "", language)
    t = unicodedata.normalize("NFKC", t).lower()
    t = re.sub(r"[^\w\s']|_", " ", t)
    t = re.sub(r"(?<!\w)'+|'+(?!\w)", " ", t)
    return " ".join(t.split())


def edit_distance(ref: Sequence, hyp: Sequence) -> int:
    """Levenshtein distance (unit costs) between two sequences."""
    if len(ref) < len(hyp):
        ref, hyp = hyp, ref  # the shorter one indexes the row
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i]
        for j, h in enumerate(hyp, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h)))
        prev = cur
    return prev[-1]


def word_edits(reference: str, hypothesis: str, language: str = "en") -> tuple[int, int]:
    """(word edits, words of the reference) after normalisation."""
    ref, hyp = normalize_for_scoring(reference, language).split(), normalize_for_scoring(hypothesis, language).split()
    return edit_distance(ref, hyp), len(ref)


def char_edits(reference: str, hypothesis: str, language: str = "en") -> tuple[int, int]:
    """(character edits, characters of the reference, spaces included) after normalisation."""
    ref, hyp = normalize_for_scoring(reference, language), normalize_for_scoring(hypothesis, language)
    return edit_distance(ref, hyp), len(ref)


def error_rate(counts: Sequence[tuple[int, int]]) -> float:
    """Corpus error rate of (edits, reference length) pairs: sum of edits / sum of lengths."""
    edits, length = sum(c[0] for c in counts), sum(c[1] for c in counts)
    if length == 0:
        raise ValueError("no reference text to score against (empty after normalisation)")
    return edits / length


def wer(reference: str, hypothesis: str, language: str = "en") -> float:
    return error_rate([word_edits(reference, hypothesis, language)])


def cer(reference: str, hypothesis: str, language: str = "en") -> float:
    return error_rate([char_edits(reference, hypothesis, language)])


def expected_seconds(text: str, chars_per_second: float, language: str = "en") -> float:
    """How long natural read speech takes to say ``text`` (normalised characters / rate)."""
    return len(normalize_for_scoring(text, language)) / float(chars_per_second)


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(start, length) of each run of True in a boolean array."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return [(int(s), int(e - s)) for s, e in zip(starts, ends)]


def level_measures(audio: np.ndarray, sr: int) -> dict:
    """Level, clipping and silence of one sentence's raw output (float in [-1, 1])::

        {"seconds", "peak_dbfs", "rms_dbfs", "clipped_fraction", "sound_fraction",
         "leading_silence_s", "trailing_silence_s", "longest_pause_s"}

    dBFS re full scale 1.0 (-inf -> -200); silence as in the module docstring; a clip without
    any sound frame has sound_fraction 0 and its whole length as leading silence."""
    a = np.asarray(audio, dtype=np.float64).reshape(-1)
    seconds = len(a) / sr
    frame = max(1, int(round(FRAME_S * sr)))
    n = len(a) // frame
    peak = float(np.max(np.abs(a))) if len(a) else 0.0
    rms = float(np.sqrt(np.mean(a ** 2))) if len(a) else 0.0
    db = lambda x: float(max(20 * np.log10(max(x, 1e-10)), -200.0))  # noqa: E731
    out = {"seconds": round(seconds, 3), "peak_dbfs": round(db(peak), 2), "rms_dbfs": round(db(rms), 2),
           "clipped_fraction": round(float(np.mean(np.abs(a) >= CLIP_LEVEL)) if len(a) else 0.0, 6)}
    frames_db = 10 * np.log10(np.maximum(np.mean(a[: n * frame].reshape(n, frame) ** 2, axis=1), 1e-20)) if n else np.zeros(0)
    sound = frames_db >= frames_db.max() - SOUND_RANGE_DB if n and peak > 0 else np.zeros(n, bool)
    if not sound.any():
        return {**out, "sound_fraction": 0.0, "leading_silence_s": round(seconds, 3), "trailing_silence_s": 0.0,
                "longest_pause_s": 0.0}
    first, last = int(np.argmax(sound)), int(n - 1 - np.argmax(sound[::-1]))
    pauses = [length for start, length in _runs(~sound[first: last + 1])]
    return {**out, "sound_fraction": round(float(sound.mean()), 4),
            "leading_silence_s": round(first * FRAME_S, 3),
            "trailing_silence_s": round(seconds - (last + 1) * frame / sr, 3),
            "longest_pause_s": round(max(pauses, default=0) * FRAME_S, 3)}


def flags(measures: dict, duration_ratio: float, settings: dict) -> list[str]:
    """The problems of one sentence (names in FLAG_NAMES order), thresholds from the config's
    ``evaluation`` section: ``silent`` (RMS under ``silence_dbfs``), ``clipped`` (more than
    ``max_clipped_fraction`` of the samples), ``long_silence`` (leading, trailing or inner
    silence over ``max_silence_s``), ``too_short``/``too_long`` (duration ratio outside
    ``min_duration_ratio``..``max_duration_ratio``)."""
    found = {
        "silent": measures["rms_dbfs"] < settings["silence_dbfs"],
        "clipped": measures["clipped_fraction"] > settings["max_clipped_fraction"],
        "long_silence": max(measures["leading_silence_s"], measures["trailing_silence_s"],
                            measures["longest_pause_s"]) > settings["max_silence_s"],
        "too_short": duration_ratio < settings["min_duration_ratio"],
        "too_long": duration_ratio > settings["max_duration_ratio"],
    }
    return [name for name in FLAG_NAMES if found[name]]
