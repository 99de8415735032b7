"""Clips whose words from their window look wrong, decoded again, each alone.

The first pass decodes a clip inside its window, prompted with the text before it: the
context that makes it accurate. Now and then that decode goes wrong for one clip:

- ``empty``: no words, though the clip is speech by construction (segmentation cut it
  between pauses). Prompted with the text before it, a window's decode sometimes starts
  past the window's first seconds, or ends at once.
- ``repetition``: a phrase repeated back to back (Whisper's decoding loop, as in "codec 2,
  codec 2, codec 2, codec"), the speech after it lost.
- ``stretched_word``: a word whose cross-attention times span more than STRETCHED_WORD_S
  with more than VOICED_WORD_S of voice in them: Whisper skipped words here, and the
  alignment stretched a neighbour over their time. A hesitation stretches a word over a
  pause, which is not voice (clip_words.voiced_s: frames 12 dB over the local noise floor).
- ``skipped_speech``: a stretch of the clip with no word in it (before the first word,
  between two, after the last) longer than STRETCHED_WORD_S with more than VOICED_WORD_S of
  voice: Whisper skipped a phrase and timed no word over it (a woman's sentence before a
  man's turn in the same window, where the decode began with his "Well,").

Each such clip is decoded again as a window of its own (its lead meeting its neighbours
halfway, as the window planner cuts, workflow_scripts/decode_windows.py), with no prompt,
in one process, by the stream decoder (workflow_scripts/stream_pool.py). It is seeded as the
first pass is, so the same inputs give the same text. Its record is replaced
(``decoding: alone``) when the alone decode is free of all four signs. For a stretched word
or skipped speech, the alone decode must also give at least as many words: a decode that is
merely shorter has not found the skipped words. Otherwise the clip keeps its first record,
and the gate judges it as before (``empty``, ``repetition``). The seconds decoded again are
added to the stage's progress, so the percentage and ETA count this pass too.

Voice is measured only where a word or a wordless stretch is long enough to be doubted: the
stem around that clip is read then (a few clips in a hundred: 4 of 142 in a 20-minute read
recording), not for every clip.
"""
from __future__ import annotations

import dataclasses
import re
from collections import Counter
from typing import Callable

import numpy as np

from workflow_scripts.clip_words import FLOOR_WINDOW_S, voiced_s
from workflow_scripts.decode_windows import Window, plan_windows
from workflow_scripts.quality_gate import is_loop, max_ngram_repeats

DECODING = "alone"
SAMPLE_RATE = 16000  # Whisper's, as read_stem gives it
# A spoken word rarely lasts over a second: over the Asterisk voice's 1400 s of read and
# spontaneous takes, no word of a correct transcript was timed over 1.22 s. A lecturer's
# hesitations reach 1.8 s. Words skipped on HF radio left one word timed at 2.58 s.
STRETCHED_WORD_S = 1.5
# Voice a word's times hold at most: a lecturer's hesitations (silero-vad's test.wav) held
# 0.76-0.80 s, a slow "Kenwood" on HF radio 0.94 s; the words skipped under a stretched word
# 1.22 s (a repeated "you can't have" in a broadcast) and 1.42 s.
VOICED_WORD_S = 1.0
# Back-to-back repeats of a word n-gram that make a loop (quality_gate.is_loop): the transcript
# gate's default (transcription.gate.max_ngram_repeats), fixed here so that a gate threshold
# change re-gates without decoding again.
LOOP_REPEATS = 3


def _word_count(text: str) -> int:
    return len(re.findall(r"[\w']+", text))


def wordless_spans(words: list[dict], duration: float) -> list[dict]:
    """The stretches of a clip (``duration`` s) that no word's times cover: before the first
    word, between two, after the last ({"start", "end"}, clip seconds)."""
    out, t = [], 0.0
    for w in sorted(words, key=lambda w: w["start"]):
        if w["start"] > t:
            out.append({"start": t, "end": w["start"]})
        t = max(t, w["end"])
    if duration > t:
        out.append({"start": t, "end": duration})
    return out


def doubt(record: dict, voiced: Callable[[dict], float]) -> str | None:
    """Why the clip's transcript looks wrong (``empty``, ``repetition``, ``stretched_word``,
    ``skipped_speech``), or None. ``voiced(stretch)``: seconds of voice in a word's or a
    wordless stretch's times (clip seconds)."""
    text = (record.get("text") or "").strip()
    if not text:
        return "empty"
    if is_loop(*max_ngram_repeats(text), LOOP_REPEATS):
        return "repetition"
    words = record.get("words") or []
    if any(w["end"] - w["start"] > STRETCHED_WORD_S and voiced(w) > VOICED_WORD_S for w in words):
        return "stretched_word"
    duration = float(record.get("duration_s") or 0.0)
    if any(g["end"] - g["start"] > STRETCHED_WORD_S and voiced(g) > VOICED_WORD_S for g in wordless_spans(words, duration)):
        return "skipped_speech"
    return None


def better(first: dict, again: dict, voiced: Callable[[dict], float]) -> bool:
    """Whether the alone decode ``again`` replaces the doubtful ``first`` (of the same clip)."""
    if doubt(again, voiced) is not None:
        return False
    return (doubt(first, voiced) not in ("stretched_word", "skipped_speech")
            or _word_count(again["text"]) >= _word_count(first["text"]))


def clip_voice(read_stem: Callable[[str, float, float], np.ndarray], stem: str, span: tuple[float, float]):
    """``voiced(stretch)`` for a clip at ``span`` (stem seconds) of ``stem``: its surroundings read
    once, when first asked (``read_stem(stem, start, end)``: 16 kHz mono)."""
    a, b = span
    offset = max(a - FLOOR_WINDOW_S, 0.0)
    audio: list[np.ndarray] = []

    def voiced(stretch: dict) -> float:
        if not audio:
            audio.append(read_stem(stem, offset, b + FLOOR_WINDOW_S))
        return voiced_s(audio[0], SAMPLE_RATE, offset, a + stretch["start"], a + stretch["end"])

    return voiced


def alone_windows(spans: list[tuple[float, float]], indices: list[int], lead_s: float) -> list[Window]:
    """A window of its own for each clip of ``indices`` (of every clip's ``spans``)."""
    own = plan_windows(spans, 0.0, lead_s)  # a zero maximum: no two clips share a window
    return [own[i] for i in indices]


def redecode_doubtful(records: dict[str, list[dict]], plans: dict[str, tuple], spec, opts, lead_s: float, progress,
                      log, records_of: Callable[[str, list], list[dict]],
                      read_stem: Callable[[str, float, float], np.ndarray]) -> int:
    """Decode again the clips of ``records`` (recording -> its records, replaced in place)
    whose transcripts look wrong; returns how many were replaced.

    ``plans[name]``: (stem, spans, language); ``spec``: the model (ModelSpec, its threads all
    the job's); ``opts``: the first pass's StreamOptions (no prompt is used here);
    ``records_of(name, blocks)``: the records of the clips in ``blocks`` (decoded windows);
    ``read_stem(stem, start, end)``: the stem's audio there (16 kHz mono float32)."""
    from workflow_scripts.stream_pool import RecordingJob, decode_recordings

    jobs, todo, voice, reasons = [], {}, {}, Counter()
    for name, recs in records.items():
        stem, spans, language = plans[name]
        todo[name] = []
        for k, r in enumerate(recs):
            voiced = clip_voice(read_stem, str(stem), spans[k])
            why = doubt(r, voiced)
            if why is not None:
                todo[name].append(k)
                voice[name, k] = voiced
                reasons[why] += 1
        if todo[name]:
            jobs.append(RecordingJob(name, str(stem), alone_windows(spans, todo[name], lead_s), spans, language))
    if not jobs:
        return 0
    seconds = sum(w.end - w.start for job in jobs for w in job.windows)
    log.info("%d clip(s) with doubtful words from their windows (%s): decoding each again alone, without context "
             "(%.1f s of stem)", sum(reasons.values()), ", ".join(f"{k} {v}" for k, v in sorted(reasons.items())),
             seconds)
    progress.extend(seconds)
    decode_recordings(spec, jobs, dataclasses.replace(opts, condition_on_previous_text=False), 1, progress, log)
    replaced = 0
    for job in jobs:
        if job.error is not None:
            log.warning("%s: decoding clips again failed (%s); they keep their first transcripts", job.name, job.error)
            continue
        again = {r["clip"]: r for r in records_of(job.name, [job.blocks[i] for i in range(len(job.windows))])}
        recs = records[job.name]
        for k in todo[job.name]:
            r = again.get(recs[k]["clip"])
            if r is not None and better(recs[k], r, voice[job.name, k]):
                recs[k] = {**r, "decoding": DECODING}
                replaced += 1
    log.info("%d of them replaced by their alone decoding (decoding: %s)", replaced, DECODING)
    return replaced
