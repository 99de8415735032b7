"""Transcription stage: one job per shard of recordings (workflow_scripts/shards.py), the
model loaded once, each stem decoded with context and each clip given the words spoken
inside it.

Inputs: the recording's vocal stem and its clips directory (``clips.tsv``: each clip's
``start_s``/``end_s`` in the stem). Output: ``transcripts.jsonl``, one JSON object per clip
(in ``clips.tsv`` order)::

    clip, text, language, language_probability, avg_logprob, no_speech_prob,
    compression_ratio, words [{word, start, end, probability}] (clip times), duration_s,
    backend, model, word_timestamps, decoding, edge_overlap_s [start, end],
    edge_floor_db [start, end]

How: the stretches of the stem that hold clips are planned into windows of at most
``window_s`` (workflow_scripts/decode_windows.py), decoded by Whisper with word timestamps,
each window conditioned on the text before it (``decode: batched``: streams of consecutive
windows side by side, all of the shard's recordings in shared batches,
workflow_scripts/stream_pool.py; ``sequential``: faster-whisper's long-form decoder in worker
processes, workflow_scripts/decode_pool.py), and each clip takes
the words whose midpoint falls inside it (workflow_scripts/clip_words.py), so every clip's
text is decoded with the context of the speech around it, as "Whisper on the whole file"
would, and no word is decoded twice. A clip whose words from its window look wrong (none, a
loop, a word stretched over skipped speech, voice with no word timed over it) is decoded
again alone, without a prompt
(workflow_scripts/redecode.py; ``decoding: alone`` where that decode is kept), and that pass
counts in the progress. ``edge_*`` are the evidence for a clip cut inside a
word (see clip_words). ``language`` is the clip's own detected language with a
multilingual model (``language_probability`` its probability), otherwise the decoding
language (probability null). ``word_timestamps``: ``whisper`` (cross-attention DTW) or
``wav2vec2:<model>`` (WhisperX forced alignment, ``backend: whisperx``).

Backends (``transcription.backend``): ``faster-whisper`` (CTranslate2, no torch) and
``whisperx`` (decoded the same way, its words then force-aligned with WhisperX's wav2vec2
aligner, see workflow_scripts/whisper_loading.py).
"""

import contextlib
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

if "snakemake" in globals():
    sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parent))  # noqa: F821

import numpy as np

from workflow_scripts.clip_words import assign_words, clip_record, edge_overlap
from workflow_scripts.decode_pool import Decoder, ModelSpec
from workflow_scripts.decode_windows import plan_windows
from workflow_scripts.io_utils import Progress, StageError, atomic_path, read_clips_table, run_stage
from workflow_scripts.longform_decode import SAMPLE_RATE, DecodeOptions
from workflow_scripts.whisper_loading import Aligner, load_whisper, resolve_device, resolve_model

# Stem time read, resampled and decoded at once: bounds memory on hours-long recordings.
BLOCK_S = 600.0
# Context reaching before/after a window's outer clips (never into the next window).
LEAD_S = 0.4

CONFIG_KEYS = ("backend", "model", "language", "device", "compute_type", "batch_size", "beam_size", "decode",
               "decode_workers", "window_s", "condition_on_previous_text", "seed", "align_model",
               "require_alignment")


def read_stem(path: str | os.PathLike, start_s: float, end_s: float) -> np.ndarray:
    """[start_s, end_s) of the stem as float32 mono at Whisper's 16 kHz."""
    import soundfile as sf

    try:
        info = sf.info(str(path))
        a, b = int(start_s * info.samplerate), int(np.ceil(end_s * info.samplerate))
        audio, sr = sf.read(str(path), start=max(a, 0), stop=min(b, info.frames), dtype="float32", always_2d=True)
    except Exception as exc:
        raise StageError(f"{path}: cannot read vocal stem ({exc})") from exc
    audio = audio.mean(axis=1) if audio.shape[1] > 1 else audio[:, 0]
    if sr != SAMPLE_RATE:
        import soxr

        audio = soxr.resample(audio, sr, SAMPLE_RATE, quality="HQ")
    return np.ascontiguousarray(audio, dtype=np.float32)


def check_config(cfg: dict) -> dict:
    missing = [k for k in CONFIG_KEYS if k not in cfg]
    if missing:
        raise StageError(f"transcription config lacks {', '.join(missing)} (the schema fills them: run through the workflow)")
    return {k: cfg[k] for k in CONFIG_KEYS}


def decode_workers(cfg: dict, device: str) -> int:
    """Decoding processes on a CPU (workflow_scripts/decode_pool.py, stream_pool.py); one on
    a GPU, which one process keeps busy."""
    if device != "cpu":
        return 1
    return max(1, cfg["decode_workers"])


def plan_recording(clips_dir: str | os.PathLike, cfg: dict):
    """(clips.tsv rows, clip spans, windows) of one recording; StageError on a bad table."""
    rows = read_clips_table(clips_dir)
    spans = [(row["start_s"], row["end_s"]) for row in rows]
    if any(b <= a for a, b in spans) or any(b[0] < a[1] - 1e-6 for a, b in zip(spans, spans[1:])):
        raise StageError(f"{Path(clips_dir) / 'clips.tsv'}: clip spans must be increasing and must not overlap")
    return rows, spans, plan_windows(spans, cfg["window_s"], LEAD_S)


def decode_options(cfg: dict) -> DecodeOptions:
    return DecodeOptions(cfg["decode"], cfg["language"], cfg["beam_size"], cfg["batch_size"],
                         cfg["condition_on_previous_text"], cfg["seed"])


def clip_records(rows: list[dict], spans, decoded, cfg: dict, stem, aligner, label: str, log) -> list[dict]:
    """Every clip's record from the decoded blocks of its recording (clips.tsv order)."""
    records: list[dict] = []
    for item in decoded:
        block, result, languages = item.windows, item.result, item.languages
        offset, end = block[0].start, block[-1].end
        timing = "whisper"
        if aligner is not None and result.words:  # WhisperX: the aligner needs this block's audio again
            aligner.load(cfg["language"] or result.segments[0]["language"])
            if aligner.retime(result.segments, result.words, read_stem(stem, offset, end), offset):
                timing = aligner.label
        ids = [i for w in block for i in w.clips]
        block_spans = [spans[i] for i in ids]
        per_clip, outside = assign_words(result.words, block_spans)
        for k, i in enumerate(ids):
            a, b = spans[i]
            rec = clip_record(per_clip[k], a, b)
            if languages:
                rec["language"], rec["language_probability"] = languages[k][0], round(languages[k][1], 4)
            else:
                rec["language"], rec["language_probability"] = cfg["language"] or "en", None
            duration = rows[i].get("duration_s")
            records.append({
                "clip": rows[i]["clip"], **rec,
                "duration_s": round(duration if isinstance(duration, float) else b - a, 3),
                "backend": cfg["backend"], "model": label, "word_timestamps": timing, "decoding": cfg["decode"],
                "edge_overlap_s": [edge_overlap(result.words, a, per_clip[k], "start"),
                                   edge_overlap(result.words, b, per_clip[k], "end")],
                "edge_floor_db": item.edge_floor_db[k],
            })
        if outside:
            log.info("%d words fall between clips (speech outside every clip) in %.0f-%.0f s", len(outside), offset, end)
    return records


def transcribe_shard(members: list[tuple[str, str, str, str | None]], cfg: dict, log, threads: int, on_done,
                     member_context=None) -> list[str]:
    """Transcribe recordings ``(name, stem, clips_dir, language)`` with one model load.

    Every recording's windows are planned and queued first, so the decoding processes stay
    busy across recordings; ``on_done(name, records)`` gets each recording's records in
    ``members`` order. Returns the names that failed (their errors logged, the others done).
    ``member_context(name)``: a context manager around a recording's own work (its log).
    """
    member_context = member_context or (lambda name: contextlib.nullcontext())
    base = check_config({**cfg, "language": None})
    spec = ModelSpec(base["model"], base["device"], base["compute_type"], threads)
    device = resolve_device(base["device"], base["compute_type"])[0]
    workers = decode_workers(base, device)
    if workers > 1:  # the job's threads shared out among the worker processes
        spec = dataclasses.replace(spec, threads=max(1, threads // workers))
    label = resolve_model(base["model"])[1]
    plans, failed = {}, []
    for name, stem, clips_dir, language in members:
        with member_context(name):
            try:
                plans[name] = (stem, clips_dir, {**base, "language": language}, *plan_recording(clips_dir, base))
            except StageError as exc:
                log.error("%s", exc)
                failed.append(name)
                continue
            if not plans[name][3]:
                log.warning("%s: no clips (no model loaded for it)", Path(clips_dir) / "clips.tsv")
                on_done(name, [])
    todo = [n for n, *_ in members if n in plans and plans[n][3]]
    if not todo:
        return failed
    window_s = sum(w.end - w.start for n in todo for w in plans[n][5])
    log.info("%d recording(s), %d clips in %d windows (%.1f s of stem), %s decoding with %s, beam %d, %d worker%s",
             len(todo), sum(len(plans[n][3]) for n in todo), sum(len(plans[n][5]) for n in todo), window_s,
             base["decode"], base["backend"], base["beam_size"], workers, "s" if workers > 1 else "")
    progress = Progress(window_s, "transcribe", log)
    aligner = Aligner(base["align_model"], base["require_alignment"], device, log) if base["backend"] == "whisperx" else None
    t0 = time.monotonic()
    records: dict[str, list[dict]] = {}
    first_pass = _decode_batched if base["decode"] == "batched" else _decode_sequential
    failed += first_pass(plans, todo, base, spec, workers, label, aligner, progress, log, records.__setitem__,
                         member_context)
    _redecode_doubtful(records, plans, base, dataclasses.replace(spec, threads=threads), label, aligner, progress, log)
    for name in todo:
        if name in records:
            with member_context(name):
                on_done(name, records[name])
    elapsed = time.monotonic() - t0
    log.info("transcribed %.1f s of stem in %.1f s (%.1fx realtime)", window_s, elapsed, window_s / max(elapsed, 1e-9))
    return failed


def _redecode_doubtful(records, plans, base, spec, label, aligner, progress, log) -> None:
    """Clips whose words look wrong, decoded again alone (workflow_scripts/redecode.py)."""
    from workflow_scripts.redecode import redecode_doubtful
    from workflow_scripts.stream_pool import StreamOptions

    def records_of(name: str, blocks: list) -> list[dict]:
        stem, _, rcfg, rows, spans, _ = plans[name]
        return clip_records(rows, spans, blocks, rcfg, stem, aligner, label, log)

    opts = StreamOptions(base["beam_size"], base["batch_size"], base["condition_on_previous_text"], base["seed"])
    where = {n: (plans[n][0], plans[n][4], plans[n][2]["language"]) for n in records}
    redecode_doubtful(records, where, spec, opts, LEAD_S, progress, log, records_of, read_stem)


def _decode_sequential(plans, todo, base, spec, workers, label, aligner, progress, log, on_done, member_context) -> list[str]:
    """Each recording decoded in order by the worker pool (workflow_scripts/decode_pool.py)."""
    failed = []
    with Decoder(spec, workers, BLOCK_S, log) as decoder:
        pending = {n: decoder.submit(str(plans[n][0]), plans[n][5], plans[n][4], decode_options(plans[n][2]))
                   for n in todo}
        for name in todo:
            stem, clips_dir, rcfg, rows, spans, windows = plans[name]
            with member_context(name):
                try:
                    decoded = decoder.result(pending.pop(name), progress)
                    on_done(name, clip_records(rows, spans, decoded, rcfg, stem, aligner, label, log))
                except StageError as exc:
                    log.error("%s", exc)
                    failed.append(name)
    return failed


def _decode_batched(plans, todo, base, spec, workers, label, aligner, progress, log, on_done, member_context) -> list[str]:
    """All recordings' windows decoded as streams side by side (workflow_scripts/stream_pool.py)."""
    from workflow_scripts.stream_pool import RecordingJob, StreamOptions, decode_recordings

    jobs = [RecordingJob(n, str(plans[n][0]), plans[n][5], plans[n][4], plans[n][2]["language"]) for n in todo]
    opts = StreamOptions(base["beam_size"], base["batch_size"], base["condition_on_previous_text"], base["seed"])
    decode_recordings(spec, jobs, opts, workers, progress, log)
    failed = []
    for job in jobs:
        stem, clips_dir, rcfg, rows, spans, windows = plans[job.name]
        with member_context(job.name):
            try:
                if job.error is not None:
                    raise job.error
                blocks = [job.blocks[i] for i in range(len(windows))]
                on_done(job.name, clip_records(rows, spans, blocks, rcfg, stem, aligner, label, log))
            except StageError as exc:
                log.error("%s", exc)
                failed.append(job.name)
    return failed


def transcribe_recording(stem: str | os.PathLike, clips_dir: str | os.PathLike, cfg: dict, log, threads: int = 2) -> list[dict]:
    """Records for every clip listed in ``clips_dir/clips.tsv`` (table order)."""
    cfg = check_config(cfg)
    plan_recording(clips_dir, cfg)  # a bad table fails here, with its own message
    out: dict[str, list[dict]] = {}
    failed = transcribe_shard([("rec", str(stem), str(clips_dir), cfg["language"])], cfg, log, threads,
                              lambda name, records: out.__setitem__(name, records))
    if failed:
        raise StageError(f"{clips_dir}: transcription failed (see the log)")
    return out["rec"]


def write_jsonl(records: list[dict], path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as fh:
            for rec in records:
                fh.write(json.dumps(rec, ensure_ascii=False) + "\n")


def main(snakemake, log) -> None:
    """One shard (workflow_scripts/shards.py): every member's transcripts.jsonl, one model load."""
    from workflow_scripts.shards import member_log, member_log_path, member_outputs, out_dir_of, processed_path, write_manifest

    threads = int(getattr(snakemake, "threads", 1) or 1)
    out_dir, recs = out_dir_of(snakemake.output.manifest), list(snakemake.params.recs)
    languages = dict(snakemake.params.languages)
    stems = member_outputs(snakemake.input.vocals, "vocals", recs)
    clips = member_outputs(snakemake.input.clips, "clips", recs)
    rows = []

    def done(rec: str, records: list[dict]) -> None:
        out = processed_path(out_dir, rec, "transcripts.jsonl")
        write_jsonl(records, out)
        log.info("recording %s: wrote %d transcripts to %s", rec, len(records), out)
        rows.append((rec, "transcripts", out))

    def own_log(rec: str):
        return member_log(log, member_log_path(out_dir, "transcribe", rec))

    failed = transcribe_shard([(r, s, c, languages.get(r)) for r, s, c in zip(recs, stems, clips)],
                              dict(snakemake.params.cfg), log, threads, done, own_log)
    if failed:
        raise StageError(f"transcribe: {len(failed)} of {len(recs)} recording(s) failed: {', '.join(failed)} "
                         "(the others' transcripts are written)")
    write_manifest(snakemake.output.manifest, rows)


def cli(argv: list[str] | None = None) -> int:
    """``python -m workflow_scripts.transcription STEM CLIPS_DIR OUT.jsonl --cfg JSON`` (tests, bench).

    ``--cfg`` must hold every key of CONFIG_KEYS (the workflow's schema fills them).
    """
    import argparse

    from workflow_scripts.io_utils import run_cli

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("stem")
    ap.add_argument("clips_dir")
    ap.add_argument("out")
    ap.add_argument("--cfg", required=True, help="transcription config as JSON")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--log", default=None)
    args = ap.parse_args(argv)

    def work(log) -> None:
        write_jsonl(transcribe_recording(args.stem, args.clips_dir, json.loads(args.cfg), log, args.threads), args.out)

    return run_cli(work, args.log)


if "snakemake" in globals():
    run_stage(snakemake, main)  # noqa: F821
elif __name__ == "__main__":
    sys.exit(cli())
