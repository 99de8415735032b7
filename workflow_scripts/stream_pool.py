"""A shard's recordings decoded as streams, side by side (``transcription.decode: batched``).

Each recording's windows are laid out in streams of consecutive windows
(workflow_scripts/stream_decode.py decodes them: each stream in order with its own
context, up to ``batch_size`` streams per step). The layout depends only on the recording
and the settings, never on its shard: a window decodes to the same text in any batch, so
a recording's transcripts are the same whatever else its shard holds. The shard's streams
share the batches, so a folder of short recordings fills them as one long recording does.

A recording gets one stream per ``STREAM_MIN_WINDOWS`` windows, at most ``batch_size``:
a stream's first window is decoded without context, so a recording is split only where
it is long enough for that loss to be small (a 2-minute recording is one stream; a
20-minute one, eight at the default).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from workflow_scripts.clip_words import edge_floor_db
from workflow_scripts.decode_pool import DecodedBlock, split_parts
from workflow_scripts.decode_windows import Window
from workflow_scripts.io_utils import StageError
from workflow_scripts.longform_decode import SAMPLE_RATE, BlockResult
from workflow_scripts.stream_decode import decode_streams

STREAM_MIN_WINDOWS = 4
# Stem read around a window for the clips' edge floors (clip_words.FLOOR_WINDOW_S).
EDGE_CONTEXT_S = 5.0


def stream_layout(windows: list[Window], batch_size: int) -> list[list[Window]]:
    """A recording's windows as streams of consecutive windows."""
    return split_parts(windows, max(1, min(batch_size, len(windows) // STREAM_MIN_WINDOWS)))


@dataclass(frozen=True)
class _Item:
    """A window of one recording (windows of two recordings may be equal)."""

    start: float
    window: Window
    job: int


@dataclass
class RecordingJob:
    name: str
    stem: str
    windows: list[Window]
    spans: list[tuple[float, float]]  # every clip's (start, end) in the stem
    language: str | None
    blocks: dict = field(default_factory=dict)  # window index -> DecodedBlock
    error: StageError | None = None


def decode_recordings(model, jobs: list[RecordingJob], *, beam_size: int, batch_size: int,
                      condition_on_previous_text: bool, seed: int, progress, on_recording) -> None:
    """Decode every job's windows; ``on_recording(job)`` as each recording completes (its
    ``blocks`` in window order, or ``error`` set when its stem could not be read)."""
    from workflow_scripts.longform_decode import detect_clip_languages
    from workflow_scripts.transcription import read_stem

    multilingual = bool(model.model.is_multilingual)
    streams, owners, languages = [], [], []
    for j, job in enumerate(jobs):
        if not multilingual and job.language not in (None, "en"):
            job.error = StageError(f"transcription.language {job.language!r}: the model is English-only")
            on_recording(job)
            continue
        index = {w: i for i, w in enumerate(job.windows)}
        for part in stream_layout(job.windows, batch_size):
            streams.append([_Item(w.start, w, j) for w in part])
            owners.append([index[w] for w in part])
            languages.append(job.language)
    left = {j: len(job.windows) for j, job in enumerate(jobs) if job.error is None}

    def read(item: _Item):
        job = jobs[item.job]
        try:
            return read_stem(job.stem, item.window.start, item.window.end)
        except StageError as exc:  # this recording fails; its streams go on with silence
            job.error = job.error or exc
            return read_stem_silence(item.window)

    def on_window(k: int, i: int, text) -> None:
        item = streams[k][i]
        job, w = jobs[item.job], item.window
        progress.update(w.end - w.start)
        if job.error is None:
            job.blocks[owners[k][i]] = _block(job, w, text, model, multilingual, read_stem, detect_clip_languages)
        left[item.job] -= 1
        if left[item.job] == 0:
            on_recording(job)

    decode_streams(model, streams, read, languages, beam_size=beam_size, batch_size=batch_size,
                   condition_on_previous_text=condition_on_previous_text, seed=seed, on_window=on_window)


def read_stem_silence(window: Window):
    import numpy as np

    return np.zeros(max(int((window.end - window.start) * SAMPLE_RATE), 1), dtype=np.float32)


def _block(job: RecordingJob, w: Window, text, model, multilingual: bool, read_stem, detect_clip_languages) -> DecodedBlock:
    """A decoded window as the transcription stage's block: stem-time words, the clips'
    languages (multilingual models) and edge floors."""
    segment = {"start": w.start, "end": w.end, "text": text.text, "avg_logprob": text.avg_logprob,
               "no_speech_prob": text.no_speech_prob, "language": text.language}
    words = [{**x, "start": x["start"] + w.start, "end": x["end"] + w.start, "segment": 0} for x in text.words]
    offset = max(w.start - EDGE_CONTEXT_S, 0.0)
    try:
        audio = read_stem(job.stem, offset, w.end + EDGE_CONTEXT_S)
    except StageError as exc:
        job.error = job.error or exc
        audio = read_stem_silence(w)
    clip_spans = [job.spans[i] for i in w.clips]
    languages = detect_clip_languages(model, audio, offset, clip_spans) if multilingual else None
    edges = [edge_floor_db(audio, SAMPLE_RATE, offset, a, b) for a, b in clip_spans]
    return DecodedBlock([w], BlockResult([segment], words, text.text), languages, edges)
