"""Shards: the recordings grouped into jobs of about ``inputs.shard_minutes`` of audio.

Every per-recording stage (ingest, vocals, segment, clips, transcribe, score) runs one job
per shard: one Python start, one model load, then every member recording in turn. The
outputs stay per recording (``processed/{rec}/...``, ``logs/{rule}/{rec}.log``); each shard
job also writes a manifest, ``shards/{shard}/{rule}.tsv``, its one declared output: a row per
member output with the output's sha256, so the next stage (and Snakemake's checksum
comparison) sees exactly when a member's output changed.

Membership is computed at DAG-build time from the file sizes alone (one ``stat`` per file,
no reading): a cheap, stable proxy for the duration (``estimated_seconds``). The plan:

* a recording estimated at ``target_s`` or more is a shard of its own (``r-{rec}``);
* the others are bucketed by the bits of sha256(recording id): the bucket ``h`` (all of
  them) is split into ``h0``/``h1`` by the first bit while it holds more than ``target_s``,
  each half by the next bit, and so on (extendible hashing).

So a bucket depends only on the recordings whose hash falls into it: adding a recording
changes only the bucket it falls into (which may split in two, its own recordings then
spread over the halves), and removing one only its bucket (which may merge with its
sibling when their parent falls back under the target). Every other shard keeps its members
and is not rerun. Sizes are no function of the folder's order or count; a hash that puts
many recordings into one bucket is split further, so a bucket holds at most ``target_s``
(bar one recording's worth at the depth limit).
"""
from __future__ import annotations

import contextlib
import csv
import hashlib
import logging
import os
import threading
from pathlib import Path

# Bytes per second of audio by extension, for the size-to-duration estimate: the usual
# rates (mp3/aac/opus podcasts and lectures at 128 kbit/s; WAV as 44.1 kHz mono or 22.05
# kHz stereo s16; FLAC at about 60 % of that). A file in another format is mis-estimated
# by a small factor at worst, which only makes its shard smaller or larger than the
# target, never changes what is computed.
BYTES_PER_S = {".mp3": 16000, ".m4a": 16000, ".mp4": 16000, ".ogg": 16000, ".webm": 16000,
               ".wav": 88200, ".flac": 53000}
DEFAULT_BYTES_PER_S = 16000
MAX_DEPTH = 32  # hash bits: 2^32 buckets, never reached by a real folder
LONG_PREFIX = "r-"
BUCKET_PREFIX = "h"


def estimated_seconds(path: str, size: int) -> float:
    return size / BYTES_PER_S.get(os.path.splitext(path)[1].lower(), DEFAULT_BYTES_PER_S)


def _bits(rec: str) -> str:
    digest = hashlib.sha256(rec.encode("utf-8", "surrogateescape")).digest()
    return "".join(f"{b:08b}" for b in digest[: MAX_DEPTH // 8])


def plan_shards(seconds: dict[str, float], target_s: float) -> dict[str, list[str]]:
    """{shard: sorted member ids} for recordings of estimated ``seconds``."""
    shards: dict[str, list[str]] = {}
    short = {}
    for rec, s in seconds.items():
        if s >= target_s:
            shards[LONG_PREFIX + rec] = [rec]
        else:
            short[rec] = (_bits(rec), s)

    def split(prefix: str, members: list[str]) -> None:
        total = sum(short[r][1] for r in members)
        if total <= target_s or len(members) == 1 or len(prefix) >= MAX_DEPTH:
            shards[BUCKET_PREFIX + prefix] = sorted(members)
            return
        d = len(prefix)
        for bit in "01":
            half = [r for r in members if short[r][0][d] == bit]
            if half:
                split(prefix + bit, half)

    if short:
        split("", list(short))
    return dict(sorted(shards.items()))


# --- manifests: the declared output of a shard job ----------------------------------------
MANIFEST_COLUMNS = ["recording", "output", "path", "sha256"]


def digest(path: str | os.PathLike) -> str:
    """sha256 of a file, or of a directory's files (names and bytes, sorted)."""
    h = hashlib.sha256()
    p = Path(path)
    files = sorted(f for f in p.rglob("*") if f.is_file()) if p.is_dir() else [p]
    for f in files:
        if p.is_dir():
            h.update(str(f.relative_to(p)).encode("utf-8", "surrogateescape") + b"\0")
        with open(f, "rb") as fh:
            while chunk := fh.read(1 << 20):
                h.update(chunk)
    return h.hexdigest()


def write_manifest(path: str | os.PathLike, outputs: list[tuple[str, str, str]]) -> None:
    """(recording, output name, path) rows, each with the output's sha256 (written atomically)."""
    from workflow_scripts.io_utils import atomic_path

    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8", newline="") as fh:
            fh.write("\t".join(MANIFEST_COLUMNS) + "\n")
            for rec, name, out in sorted(outputs):  # the same bytes whatever order members finished in
                fh.write(f"{rec}\t{name}\t{out}\t{digest(out)}\n")


def as_paths(paths) -> list[str]:
    """A Snakemake input (one path, or a list of them) as a list of paths."""
    return [str(paths)] if isinstance(paths, (str, os.PathLike)) else [str(p) for p in paths]


def read_manifests(paths) -> dict[str, dict[str, str]]:
    """{recording: {output name: path}} over manifests (one path or a list)."""
    from workflow_scripts.io_utils import StageError

    out: dict[str, dict[str, str]] = {}
    for path in as_paths(paths):
        try:
            with open(path, newline="", encoding="utf-8") as fh:
                rows = list(csv.DictReader(fh, delimiter="\t", quoting=csv.QUOTE_NONE))
        except OSError as exc:
            raise StageError(f"{path}: cannot read shard manifest ({exc.strerror})") from exc
        for row in rows:
            out.setdefault(row["recording"], {})[row["output"]] = row["path"]
    return out


def member_outputs(manifests, name: str, recs: list[str]) -> list[str]:
    """The ``name`` output of every recording in ``recs`` (that order), from the manifests."""
    from workflow_scripts.io_utils import StageError

    table = read_manifests(manifests)
    missing = [r for r in recs if name not in table.get(r, {})]
    if missing:
        raise StageError(f"shard manifests {', '.join(as_paths(manifests))}: no {name} for {', '.join(missing)}")
    return [table[r][name] for r in recs]


# --- running a shard job's members ---------------------------------------------------------
def out_dir_of(manifest) -> str:
    """``output_dir`` from a shard job's manifest path (``{output_dir}/shards/{shard}/{rule}.tsv``)."""
    return str(Path(str(manifest)).parent.parent.parent)


def processed_path(out_dir: str, rec: str, name: str) -> str:
    return f"{out_dir}/processed/{rec}/{name}"


def member_log_path(out_dir: str, rule: str, rec: str) -> str:
    return f"{out_dir}/logs/{rule}/{rec}.log"


# Member logs this process has begun: a member entered again (a stage's second pass) appends.
_STARTED_LOGS: set[str] = set()


@contextlib.contextmanager
def member_log(log: logging.Logger, path: str):
    """While a member is processed, its lines also go to its own log (``logs/{rule}/{rec}.log``,
    as when every recording was a job); lines of other threads are not copied there. The job's
    first entry starts the file afresh, later entries append to it."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    key = str(Path(path).resolve())
    handler = logging.FileHandler(path, mode="a" if key in _STARTED_LOGS else "w", encoding="utf-8")
    _STARTED_LOGS.add(key)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S"))
    me = threading.get_ident()
    handler.addFilter(lambda record: record.thread == me)
    log.addHandler(handler)
    try:
        yield
    finally:
        log.removeHandler(handler)
        handler.close()


def run_members(recs: list[str], work, log: logging.Logger, out_dir: str, rule: str, workers: int = 1) -> None:
    """``work(rec)`` for every member, each with its own log, ``workers`` at a time (threads:
    for work that waits on subprocesses, e.g. ffmpeg). A member that fails (StageError) does
    not stop the others: their outputs are written, then the job fails naming every failed
    member (one ERROR line each, in its log and the shard's)."""
    from concurrent.futures import ThreadPoolExecutor

    from workflow_scripts.io_utils import StageError

    def one(rec: str) -> bool:
        with member_log(log, member_log_path(out_dir, rule, rec)):
            try:
                work(rec)
                return True
            except StageError as exc:
                log.error("%s", exc)
            except Exception:
                log.exception("recording %s: unexpected failure", rec)
            return False

    if workers > 1 and len(recs) > 1:
        with ThreadPoolExecutor(workers) as pool:
            ok = list(pool.map(one, recs))
    else:
        ok = [one(rec) for rec in recs]
    failed = [rec for rec, good in zip(recs, ok) if not good]
    if failed:
        raise StageError(f"{rule}: {len(failed)} of {len(recs)} recording(s) failed: {', '.join(failed)} "
                         f"(the others' outputs are written; see logs/{rule}/<recording>.log)")
