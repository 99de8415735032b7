"""Decode a recording's windows in this process or split across worker processes.

On a CPU, Whisper's sequential decoder (a beam search, one window after the other) keeps
about one core busy whatever its thread count. With ``workers`` > 1 the windows are split
into that many contiguous parts of about equal stem time, and each part is decoded by a
process of its own, in order, with its own context (the text before each window), so
context is lost only at the few part boundaries. Each process loads the model once and
seeds its own sampler, so the text never depends on which process ran first. One worker
(always the case on a GPU, where one process keeps the device busy) decodes in this process.

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


def decode_in_workers(spec: ModelSpec, stem: str, windows: list[Window], spans: list[tuple[float, float]],
                      opts: DecodeOptions, workers: int, block_s: float, progress) -> list[DecodedBlock]:
    """All windows decoded by ``workers`` processes (``progress.update`` fed every second)."""
    ctx = mp.get_context("spawn")
    done = ctx.Value("d", 0.0)
    parts = split_parts(windows, workers)
    with ProcessPoolExecutor(len(parts), mp_context=ctx, initializer=_init_worker, initargs=(spec, done)) as pool:
        futures = [pool.submit(_run_part, stem, part, spans, opts, block_s) for part in parts]
        reported = 0.0
        while not all(f.done() for f in futures):
            for f in futures:
                try:
                    f.result(timeout=1.0)
                except TimeoutError:
                    pass
                break
            now = done.value
            if now > reported:
                progress.update(now - reported)
                reported = now
        blocks = [b for f in futures for b in f.result()]
        if done.value > reported:
            progress.update(done.value - reported)
    return blocks
