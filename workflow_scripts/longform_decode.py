"""Whisper's sequential decoding of a stretch of a vocal stem, restricted to planned windows.

faster-whisper's own long-form decoder (``WhisperModel.transcribe`` with
``clip_timestamps`` = the windows): windows in order, each conditioned on the text before
it (``condition_on_previous_text``), with its temperature fallback when a decode looks bad.
The same decoder as "Whisper on the whole file", minus the stretches that hold no clip
(``transcription.decode: sequential``; ``batched`` is workflow_scripts/stream_decode.py).

The temperature fallback samples; CTranslate2's generator is seeded before every block,
so the same audio and settings give the same text on the same machine.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from workflow_scripts.decode_windows import Window

SAMPLE_RATE = 16000


@dataclass(frozen=True)
class DecodeOptions:
    mode: str  # sequential (this module) | batched (workflow_scripts/stream_decode.py)
    language: str | None  # None: detected (per 30 s window with a multilingual model)
    beam_size: int
    batch_size: int
    condition_on_previous_text: bool
    seed: int


@dataclass
class BlockResult:
    segments: list[dict]  # start, end (stem s), text, avg_logprob, no_speech_prob, language
    words: list[dict]  # word, start, end (stem s), probability, segment (index into segments)
    prompt: str  # the block's last text, to condition the next block on


def decode_block(model, audio: np.ndarray, offset: float, windows: list[Window], opts: DecodeOptions,
                 prompt: str | None, on_progress) -> BlockResult:
    """Decode ``windows`` of ``audio`` (16 kHz mono float32 starting at stem time ``offset``).

    ``on_progress(seconds)`` is called with the window seconds done as decoding advances.
    """
    import ctranslate2

    ctranslate2.set_random_seed(opts.seed)
    multilingual = bool(model.model.is_multilingual)
    language = opts.language if multilingual else "en"
    duration = len(audio) / SAMPLE_RATE  # a window's lead may reach past the stem's end
    stamps = [t for w in windows for t in (w.start - offset, min(w.end - offset, duration))]
    segments, info = model.transcribe(
        audio, language=language, beam_size=opts.beam_size, word_timestamps=True, vad_filter=False,
        clip_timestamps=stamps, condition_on_previous_text=opts.condition_on_previous_text,
        initial_prompt=prompt if opts.condition_on_previous_text and prompt else None,
        multilingual=multilingual and language is None,
    )
    return collect(segments, info, offset, windows, on_progress)


def collect(segments, info, offset: float, windows: list[Window], on_progress) -> BlockResult:
    """Segments and words in stem time, progress reported as the decoder moves on."""
    ends = np.array([w.end for w in windows])
    lengths = np.array([w.end - w.start for w in windows])
    done_s = 0.0
    segs, words = [], []
    for s in segments:
        start, end = float(s.start) + offset, float(s.end) + offset
        k = int(np.searchsorted(ends, end, side="left"))
        now = float(lengths[:k].sum()) + (min(max(end - windows[k].start, 0.0), lengths[k]) if k < len(windows) else 0.0)
        if now > done_s:
            on_progress(now - done_s)
            done_s = now
        segs.append({"start": start, "end": end, "text": s.text, "avg_logprob": float(s.avg_logprob),
                     "no_speech_prob": float(s.no_speech_prob), "language": info.language})
        for w in s.words or []:
            words.append({"word": w.word, "start": float(w.start) + offset, "end": float(w.end) + offset,
                          "probability": float(w.probability), "segment": len(segs) - 1})
    total = float(lengths.sum())
    if total > done_s:
        on_progress(total - done_s)
    text = " ".join(s["text"].strip() for s in segs[-8:]).strip()
    return BlockResult(segs, words, text[-400:])


def detect_clip_languages(model, audio: np.ndarray, offset: float, spans: list[tuple[float, float]]) -> list[tuple[str, float]]:
    """(language, probability) of each clip (stem-time spans) with a multilingual model:
    one encoder pass per clip, so a clip in another language than its window is seen."""
    out = []
    for a, b in spans:
        clip = audio[max(int((a - offset) * SAMPLE_RATE), 0) : max(int((b - offset) * SAMPLE_RATE), 0)]
        lang, prob, _ = model.detect_language(audio=clip)
        out.append((lang, float(prob)))
    return out
