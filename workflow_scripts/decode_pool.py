"""Decode recordings' windows in this process or split across worker processes.

On a CPU, Whisper's sequential decoder (a beam search, one window after the other) keeps
about one core busy whatever its thread count. With ``workers`` > 1 the windows are split
into that many contiguous parts of about equal stem time, and each part is decoded by a
process of its own, in order, with its own context (the text before each window), so
context is lost only at the few part boundaries. Each process loads the model once and
seeds its own sampler, so the text never depends on which process ran first. One worker
(always the case on a GPU, where one process keeps the device busy) decodes in this process.

A shard job (workflow_scripts/shards.py) decodes many recordings with one ``Decoder``: the
processes (or the in-process model) are started once, every recording's parts are queued at
once, so two short recordings keep two workers busy, and each recording is still split
exactly as it would be alone (its text does not depend on the shard it is in).

Each part is decoded in blocks of at most ``block_s`` of stem time (read, resampled and
decoded at once), so memory stays bounded however long the recording.
"""
from __future__ import annotations

import multiprocessing as mp
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

from workflow_scripts.clip_words import edge_floor_db
from workflow_scripts.decode_windows import Window, plan_blocks
from workflow_scripts.io_utils import StageError
from workflow_scripts.longform_decode import SAMPLE_RATE, BlockResult, DecodeOptions, decode_block, detect_clip_languages


@dataclass(frozen=True)
class ModelSpec:
    """What a worker needs to load the model (whisper_loading.load_whisper's arguments)."""

    model: str
    device: str
    compute_type: str
    threads: int


@dataclass
class DecodedBlock:
    windows: list[Window]
    result: BlockResult
    languages: list[tuple[str, float]] | None  # per clip of the block, multilingual models only
    edge_floor_db: list[list[float]]  # per clip of the block (clip_words.edge_floor_db), from the audio decoded


def split_parts(windows: list[Window], parts: int) -> list[list[Window]]:
    """Consecutive windows in ``parts`` runs of about equal stem time (none empty)."""
    parts = max(1, min(parts, len(windows)))
    total = sum(w.end - w.start for w in windows)
    out: list[list[Window]] = [[]]
    done = 0.0
    for i, w in enumerate(windows):
        left = len(windows) - i
        if out[-1] and len(out) < parts and (done >= total * len(out) / parts or left <= parts - len(out)):
            out.append([])
        out[-1].append(w)
        done += w.end - w.start
    return out


def decode_part(model, stem: str, part: list[Window], spans: list[tuple[float, float]], opts: DecodeOptions,
                block_s: float, on_progress) -> list[DecodedBlock]:
    """Decode one part's windows in order, each block conditioned on the text before it."""
    from workflow_scripts.transcription import read_stem

    multilingual = bool(model.model.is_multilingual)
    if not multilingual and opts.language not in (None, "en"):
        raise StageError(f"transcription.language {opts.language!r}: the model is English-only")
    out, prompt = [], None
    for block in plan_blocks(part, block_s):
        offset = block[0].start
        audio = read_stem(stem, offset, block[-1].end)
        result = decode_block(model, audio, offset, block, opts, prompt, on_progress)
        prompt = result.prompt
        clip_spans = [spans[i] for w in block for i in w.clips]
        languages = detect_clip_languages(model, audio, offset, clip_spans) if multilingual else None
        edges = [edge_floor_db(audio, SAMPLE_RATE, offset, a, b) for a, b in clip_spans]
        out.append(DecodedBlock(block, result, languages, edges))
    return out


_WORKER: dict = {}


def _init_worker(spec: ModelSpec, done) -> None:
    import logging

    from workflow_scripts.whisper_loading import load_whisper

    _WORKER["model"] = load_whisper(spec.model, spec.device, spec.compute_type, spec.threads,
                                    logging.getLogger("pvw.worker"))[0]
    _WORKER["done"] = done


def _run_part(stem, part, spans, opts, block_s) -> list[DecodedBlock]:
    done = _WORKER["done"]

    def on_progress(seconds: float) -> None:
        with done.get_lock():
            done.value += seconds

    return decode_part(_WORKER["model"], stem, part, spans, opts, block_s, on_progress)


class Decoder:
    """The model, loaded once for a shard: ``workers`` processes on a CPU (each loads it
    once), else in this process. ``submit`` queues a recording's parts; ``result`` waits for
    them (in order), feeding ``progress.update`` with decoded stem seconds."""

    def __init__(self, spec: ModelSpec, workers: int, block_s: float, log):
        self.spec, self.workers, self.block_s, self.log = spec, workers, block_s, log
        self.pool, self.model, self.done, self.reported = None, None, None, 0.0
        if workers > 1:
            ctx = mp.get_context("spawn")
            self.done = ctx.Value("d", 0.0)
            self.pool = ProcessPoolExecutor(workers, mp_context=ctx, initializer=_init_worker,
                                            initargs=(spec, self.done))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)

    def submit(self, stem: str, windows: list[Window], spans: list[tuple[float, float]], opts: DecodeOptions):
        if self.pool is None:
            return ("local", stem, windows, spans, opts)
        return [self.pool.submit(_run_part, stem, part, spans, opts, self.block_s)
                for part in split_parts(windows, self.workers)]

    def result(self, pending, progress) -> list[DecodedBlock]:
        if self.pool is None:
            _, stem, windows, spans, opts = pending
            if self.model is None:
                from workflow_scripts.whisper_loading import load_whisper

                self.model = load_whisper(self.spec.model, self.spec.device, self.spec.compute_type,
                                          self.spec.threads, self.log)[0]
            return decode_part(self.model, stem, windows, spans, opts, self.block_s, progress.update)
        blocks = []
        for f in pending:
            while True:
                try:
                    part = f.result(timeout=1.0)
                    break
                except TimeoutError:
                    self._report(progress)
            blocks += part
        self._report(progress)
        return blocks

    def _report(self, progress) -> None:
        now = self.done.value
        if now > self.reported:
            progress.update(now - self.reported)
            self.reported = now


def decode_in_workers(spec: ModelSpec, stem: str, windows: list[Window], spans: list[tuple[float, float]],
                      opts: DecodeOptions, workers: int, block_s: float, progress) -> list[DecodedBlock]:
    """All windows of one recording decoded by ``workers`` processes."""
    import logging

    with Decoder(spec, workers, block_s, logging.getLogger("pvw")) as decoder:
        return decoder.result(decoder.submit(stem, windows, spans, opts), progress)
