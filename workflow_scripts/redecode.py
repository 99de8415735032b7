"""Clips of speech that got no words from their window, decoded again, each alone.

A clip is speech by construction (segmentation cut it between pauses), yet Whisper can give
it no words: prompted with the text before it, a window's decode sometimes starts past the
window's first seconds (the skipped clip gets nothing while the next one is transcribed) or
ends at once. Such a clip would be rejected as ``empty`` with all its speech. Each one is
decoded again as a window of its own (its lead, meeting its neighbours halfway: as the
window planner cuts, workflow_scripts/decode_windows.py), with no prompt, in one process,
by the stream decoder (workflow_scripts/stream_pool.py), seeded as the first pass is: the
same inputs give the same text. Its record is replaced when that gives words
(``decoding: alone``); a clip that is still silent keeps its empty record, and the gate
rejects it as before. The seconds decoded again are added to the stage's progress, so the
percentage and ETA count this pass too.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

from workflow_scripts.decode_windows import Window, plan_windows

DECODING = "alone"


def unheard(records: list[dict]) -> list[int]:
    """Indices of the records whose clip got no words."""
    return [k for k, r in enumerate(records) if not (r.get("text") or "").strip()]


def alone_windows(spans: list[tuple[float, float]], indices: list[int], lead_s: float) -> list[Window]:
    """A window of its own for each clip of ``indices`` (of every clip's ``spans``)."""
    own = plan_windows(spans, 0.0, lead_s)  # a zero maximum: no two clips share a window
    return [own[i] for i in indices]


def redecode_unheard(records: dict[str, list[dict]], plans: dict[str, tuple], spec, opts, lead_s: float, progress,
                     log, records_of: Callable[[str, list], list[dict]]) -> int:
    """Decode again the clips of ``records`` (recording -> its records, replaced in place)
    that got no words; returns how many now have words.

    ``plans[name]``: (stem, spans, language); ``spec``: the model (ModelSpec, its threads all
    the job's); ``opts``: the first pass's StreamOptions (no prompt is used here);
    ``records_of(name, blocks)``: the records of the clips in ``blocks`` (decoded windows)."""
    from workflow_scripts.stream_pool import RecordingJob, decode_recordings

    jobs = []
    for name, recs in records.items():
        todo = unheard(recs)
        if todo:
            stem, spans, language = plans[name]
            jobs.append(RecordingJob(name, str(stem), alone_windows(spans, todo, lead_s), spans, language))
    if not jobs:
        return 0
    seconds = sum(w.end - w.start for job in jobs for w in job.windows)
    log.info("%d clip(s) got no words from their windows: decoding each again alone, without context (%.1f s of stem)",
             sum(len(job.windows) for job in jobs), seconds)
    progress.extend(seconds)
    decode_recordings(spec, jobs, dataclasses.replace(opts, condition_on_previous_text=False), 1, progress, log)
    heard = 0
    for job in jobs:
        if job.error is not None:
            log.warning("%s: decoding clips again failed (%s); they keep their empty transcripts", job.name, job.error)
            continue
        again = {r["clip"]: r for r in records_of(job.name, [job.blocks[i] for i in range(len(job.windows))])}
        recs = records[job.name]
        for k in unheard(recs):
            r = again.get(recs[k]["clip"])
            if r is not None and r["text"].strip():
                recs[k] = {**r, "decoding": DECODING}
                heard += 1
    log.info("%d of them now have words (decoding: %s)", heard, DECODING)
    return heard
