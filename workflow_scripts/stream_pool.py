"""A shard's recordings decoded as streams, side by side (``transcription.decode: batched``).

Each recording's windows are laid out in streams of consecutive windows
(workflow_scripts/stream_decode.py decodes them: each stream in order with its own
context, up to ``batch_size`` streams per step). The layout depends only on the recording
and the settings, never on its shard: a window decodes to the same text in any batch, so
a recording's transcripts are the same whatever else its shard holds. The shard's streams
share the batches, so a folder of short recordings fills them as one long recording does.

On a CPU the shard's streams are shared out among ``decode_workers`` processes (each with
its share of the threads and its own model): a batched beam search of a few streams keeps
about one core busy, and the Python around it (features, word rules) runs in one thread.

A recording gets one stream per ``STREAM_MIN_WINDOWS`` windows, at most ``batch_size`` x
processes: a stream's first window is decoded without context, so a recording is split only
where it is long enough for that loss to be small (a 2-minute recording is one stream; a
20-minute one, twelve), and each process still has a full batch of streams. A shard of one
stream is decoded in this process, the model loaded with a second replica that reads and
encodes the stream's next window while the first runs the beam search (which keeps one core
busy): the cores the other processes would have had are not left idle.
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
    index: int  # the window's index in its recording


@dataclass
class RecordingJob:
    name: str
    stem: str
    windows: list[Window]
    spans: list[tuple[float, float]]  # every clip's (start, end) in the stem
    language: str | None
    blocks: dict = field(default_factory=dict)  # window index -> DecodedBlock
    error: StageError | None = None


@dataclass(frozen=True)
class StreamOptions:
    beam_size: int
    batch_size: int
    condition_on_previous_text: bool
    seed: int


def plan_streams(jobs: list[RecordingJob], batch_size: int) -> list[list[_Item]]:
    """Every recording's streams (workflow_scripts/stream_pool.stream_layout), in job order."""
    return [[_Item(w.start, w, j, job.windows.index(w)) for w in part]
            for j, job in enumerate(jobs) for part in stream_layout(job.windows, batch_size)]


def share_streams(streams: list[list[_Item]], workers: int) -> list[list[int]]:
    """Stream indices per worker process: the longest first to the least loaded, so the
    processes finish together (each keeps its streams in their order)."""
    load = [0] * workers
    shares: list[list[int]] = [[] for _ in range(workers)]
    for k in sorted(range(len(streams)), key=lambda k: (-len(streams[k]), k)):
        w = min(range(workers), key=lambda i: (load[i], i))
        shares[w].append(k)
        load[w] += len(streams[k])
    return [sorted(share) for share in shares if share]


def decode_recordings(spec, jobs: list[RecordingJob], opts: StreamOptions, workers: int, progress, log) -> None:
    """Decode every job's windows, filling each job's ``blocks`` (or ``error``): in this
    process, or split by stream across ``workers`` processes (each loads the model once)."""
    streams = plan_streams(jobs, opts.batch_size * max(1, workers))
    if workers <= 1 or len(streams) <= 1:
        import contextlib
        from concurrent.futures import ThreadPoolExecutor

        from workflow_scripts.whisper_loading import load_whisper

        # one stream (a short recording) keeps one core busy with its beam searches: a second
        # replica of the model encodes each next window on a core of the processes not started
        spare = workers > 1
        model = load_whisper(spec.model, spec.device, spec.compute_type, spec.threads, log, replicas=1 + spare)[0]
        if spare:
            log.info("one stream: decoded in this process, the next window encoded ahead by a second replica")
        with ThreadPoolExecutor(1) if spare else contextlib.nullcontext() as ahead:
            results = [decode_streams_of(model, jobs, streams, opts, progress.update, ahead)]
    else:
        results = _in_workers(spec, jobs, streams, opts, workers, progress)
    for blocks, errors in results:
        for (j, i), block in blocks.items():
            jobs[j].blocks[i] = block
        for j, error in errors.items():
            jobs[j].error = jobs[j].error or error


def _in_workers(spec, jobs, streams, opts, workers: int, progress) -> list:
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, TimeoutError

    from workflow_scripts.decode_pool import _init_worker

    ctx = mp.get_context("spawn")
    done = ctx.Value("d", 0.0)
    reported = 0.0
    results = []
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker, initargs=(spec, done)) as pool:
        futures = [pool.submit(_run_share, jobs, [streams[k] for k in share], opts)
                   for share in share_streams(streams, workers)]
        for f in futures:
            while True:
                try:
                    results.append(f.result(timeout=1.0))
                    break
                except TimeoutError:
                    pass
                finally:
                    if done.value > reported:
                        progress.update(done.value - reported)
                        reported = done.value
    return results


def _run_share(jobs, streams, opts):
    from workflow_scripts.decode_pool import _WORKER

    counter = _WORKER["done"]

    def on_progress(seconds: float) -> None:
        with counter.get_lock():
            counter.value += seconds

    return decode_streams_of(_WORKER["model"], jobs, streams, opts, on_progress)


def decode_streams_of(model, jobs: list[RecordingJob], streams: list[list[_Item]], opts: StreamOptions, on_progress,
                      encode_ahead=None):
    """Decode ``streams`` with ``model``: ({(job, window index): DecodedBlock}, {job: StageError})
    (``encode_ahead``: see stream_decode.decode_streams)."""
    from workflow_scripts.longform_decode import detect_clip_languages
    from workflow_scripts.transcription import read_stem

    multilingual = bool(model.model.is_multilingual)
    blocks, errors = {}, {}
    for j, job in enumerate(jobs):
        if not multilingual and job.language not in (None, "en"):
            errors[j] = StageError(f"transcription.language {job.language!r}: the model is English-only")
    streams = [s for s in streams if s[0].job not in errors]

    def read(item: _Item):
        try:
            return read_stem(jobs[item.job].stem, item.window.start, item.window.end)
        except StageError as exc:  # this recording fails; its streams go on with silence
            errors.setdefault(item.job, exc)
            return read_stem_silence(item.window)

    def on_window(k: int, i: int, text) -> None:
        item = streams[k][i]
        on_progress(item.window.end - item.window.start)
        if item.job not in errors:
            try:
                blocks[item.job, item.index] = _block(jobs[item.job], item.window, text, model, multilingual,
                                                      read_stem, detect_clip_languages)
            except StageError as exc:
                errors.setdefault(item.job, exc)

    decode_streams(model, streams, read, [jobs[s[0].job].language for s in streams], beam_size=opts.beam_size,
                   batch_size=opts.batch_size, condition_on_previous_text=opts.condition_on_previous_text,
                   seed=opts.seed, on_window=on_window, encode_ahead=encode_ahead)
    return blocks, errors


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
    audio = read_stem(job.stem, offset, w.end + EDGE_CONTEXT_S)
    clip_spans = [job.spans[i] for i in w.clips]
    languages = detect_clip_languages(model, audio, offset, clip_spans) if multilingual else None
    edges = [edge_floor_db(audio, SAMPLE_RATE, offset, a, b) for a, b in clip_spans]
    return DecodedBlock([w], BlockResult([segment], words, text.text), languages, edges)
