"""Small I/O helpers shared by every stage: atomic outputs, WAV writing, clear errors."""
from __future__ import annotations

import contextlib
import csv
import hashlib
import logging
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Callable, Iterator

import numpy as np


class StageError(Exception):
    """A user-facing failure: the message names the file and the reason, on one line."""


def _temp_sibling(final: Path, kind: str) -> Path:
    """The one temp name for ``final``: hidden, next to it, the same on every attempt.

    Deterministic on purpose: Snakemake's locks let only one job write a given output, and a
    rerun after `kill -9` must find (and remove) what the killed attempt left behind rather
    than leave a stray random-named temp beside the finished output.
    """
    digest = hashlib.sha1(final.name.encode("utf-8", "surrogateescape")).hexdigest()[:10]
    return final.parent / f".{final.stem[:40]}.{digest}.{kind}"


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink()


@contextlib.contextmanager
def atomic_path(final: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temp path next to ``final``; rename it onto ``final`` only on success.

    The temp file lives in the same directory so the rename is atomic; a killed job leaves
    at most a hidden ``.tmp`` file, never a half-written file under the final name, and the
    rerun replaces that leftover.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    suffix = suffix if suffix is not None else final.suffix
    tmp = _temp_sibling(final, f"tmp{suffix}")
    _remove(tmp)  # left by a killed attempt
    # created here with normal permissions (umask applies), so tools that open it for
    # writing by name (ffmpeg, soundfile) find an ordinary file
    tmp.touch()
    try:
        yield tmp
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()


@contextlib.contextmanager
def atomic_dir(final: str | os.PathLike) -> Iterator[Path]:
    """Yield a temp directory next to ``final``; it replaces ``final`` only on success."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_sibling(final, "tmpdir")
    _remove(tmp)  # left by a killed attempt
    tmp.mkdir()
    try:
        yield tmp
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def to_int16(audio: np.ndarray) -> np.ndarray:
    """Float [-1, 1] to int16 with rounding and clipping (never wraps around)."""
    return np.clip(np.round(np.asarray(audio, dtype=np.float64) * 32767.0), -32768, 32767).astype(np.int16)


class Progress:
    """Percent done and ETA written to a logger every ``every_s`` seconds (for `tail -f`)."""

    def __init__(self, total: float, label: str, log: logging.Logger, every_s: float = 10.0):
        self.total, self.label, self.log, self.every_s = max(total, 1e-9), label, log, every_s
        self.start = self.last = time.monotonic()
        self.done = 0.0

    def extend(self, amount: float) -> None:
        """More work found on the way (a second pass): the total grows, and the percentage and
        ETA written next count it."""
        self.total += max(amount, 0.0)
        self.update(0.0, force=True)

    def update(self, amount: float = 1.0, force: bool = False) -> None:
        self.done += amount
        now = time.monotonic()
        if force or now - self.last >= self.every_s or self.done >= self.total:
            self.last = now
            frac = min(self.done / self.total, 1.0)
            elapsed = now - self.start
            eta = elapsed / frac - elapsed if frac > 0 else float("nan")
            self.log.info("%s: %5.1f%% (%g/%g) elapsed %.0fs ETA %.0fs", self.label, 100 * frac, self.done, self.total, elapsed, eta)


def setup_logging(log_path: str | os.PathLike | None) -> logging.Logger:
    """Log to the rule's log file (and stderr), one line per event, flushed as it goes."""
    logger = logging.getLogger("pvw")
    logger.setLevel(logging.INFO)
    logger.handlers.clear()
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%d %H:%M:%S")
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(str(log_path), mode="a", encoding="utf-8"))
    for h in handlers:
        h.setFormatter(fmt)
        logger.addHandler(h)
    return logger


def run_stage(snakemake, fn: Callable[..., None]) -> None:
    """Entry point helper for `script:` rules: logging, one-line errors, non-zero exit.

    ``fn(snakemake, log)`` does the work. A StageError becomes one ERROR line naming the
    file and the reason; any other exception is logged with its traceback.
    """
    log_files = list(getattr(snakemake, "log", []) or [])
    log = setup_logging(log_files[0] if log_files else None)
    try:
        fn(snakemake, log)
    except StageError as exc:
        log.error("%s", exc)
        sys.exit(1)
    except Exception:
        log.exception("unexpected failure in rule %s", getattr(snakemake, "rule", "?"))
        sys.exit(1)


def run_cli(fn: Callable[..., None], log_path: str | None) -> int:
    """Entry point helper for a stage's command line (tests, benchmarks): ``fn(log)`` does
    the work; a StageError becomes one ERROR line and exit status 1."""
    log = setup_logging(log_path)
    try:
        fn(log)
    except StageError as exc:
        log.error("%s", exc)
        return 1
    return 0


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """One JSON object per non-empty line; a bad line is a StageError naming file and line."""
    import json

    out = []
    with open(path, encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if line.strip():
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise StageError(f"{path}:{n}: not JSON ({exc})") from exc
    return out


def read_tsv(path: str | os.PathLike) -> list[dict]:
    """Rows of a TSV with a header; an unreadable file is a StageError naming it."""
    import csv

    try:
        with open(path, newline="", encoding="utf-8") as fh:
            return list(csv.DictReader(fh, delimiter="\t"))
    except OSError as exc:
        raise StageError(f"{path}: cannot read ({exc.strerror})") from exc


def read_clips_table(clips_dir: str | os.PathLike) -> list[dict]:
    """Rows of ``clips.tsv`` (clip, start_s, end_s, duration_s, ...); numbers as floats."""
    table = Path(clips_dir) / "clips.tsv"
    if not table.exists():
        raise StageError(f"{table}: missing (the clips directory has no clips.tsv)")
    with open(table, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh, delimiter="\t")
        if not reader.fieldnames or "clip" not in reader.fieldnames:
            raise StageError(f"{table}: no 'clip' column (columns: {reader.fieldnames})")
        rows = []
        for row in reader:
            for key in ("start_s", "end_s", "duration_s", "lufs_before", "lufs_after"):
                if row.get(key) not in (None, ""):
                    try:
                        row[key] = float(row[key])
                    except ValueError as exc:
                        raise StageError(f"{table}: clip {row['clip']}: bad {key} {row[key]!r}") from exc
            rows.append(row)
    return rows
