"""Find the user's recordings and give each a safe, unique, stable id.

Ids become directory names and Snakemake wildcard values, so they are restricted to
``[A-Za-z0-9][A-Za-z0-9._-]*``. A name that is already safe keeps its stem (users recognise
their files); any other name gets a readable ASCII form plus 8 hex digits of a hash of the
original name, so two different hostile names never collide and the id never changes between
runs. Nothing here touches the files themselves.
"""
from __future__ import annotations

import csv
import hashlib
import os
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

SUPPORTED_EXTENSIONS = (".mp3", ".mp4", ".m4a", ".wav", ".flac", ".ogg", ".webm")
ID_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]*"
MAX_ID_LEN = 80
_SAFE = re.compile(ID_PATTERN + r"\Z")


@dataclass(frozen=True)
class Recording:
    id: str
    path: str
    speaker: str
    language: str


def short_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:8]


def recording_id(name: str) -> str:
    """Safe id for a file name (without directory, with or without extension)."""
    stem = Path(name).stem if Path(name).suffix.lower() in SUPPORTED_EXTENSIONS else name
    if _SAFE.match(stem) and len(stem) <= MAX_ID_LEN and ".." not in stem and not stem.endswith("."):
        return stem
    ascii_form = unicodedata.normalize("NFKD", stem).encode("ascii", "ignore").decode()
    ascii_form = re.sub(r"[^A-Za-z0-9._-]+", "_", ascii_form)
    ascii_form = re.sub(r"\.{2,}", ".", ascii_form)
    ascii_form = ascii_form.lstrip("._-").rstrip(".")[: MAX_ID_LEN - 9]
    return f"{ascii_form}_{short_hash(stem)}" if ascii_form else f"rec_{short_hash(stem)}"


def scan_directory(directory: str | os.PathLike, extensions=SUPPORTED_EXTENSIONS) -> tuple[list[Path], list[Path]]:
    """Return (supported media files, skipped files) under ``directory``, sorted, hidden ones ignored."""
    root = Path(directory)
    found, skipped = [], []
    if not root.is_dir():
        return found, skipped
    exts = {e.lower() for e in extensions}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for fn in sorted(filenames):
            if fn.startswith("."):
                continue
            p = Path(dirpath) / fn
            (found if p.suffix.lower() in exts else skipped).append(p)
    return sorted(found), sorted(skipped)


def _disambiguate(items: list[tuple[str, Path]], root: Path | None) -> list[tuple[str, Path]]:
    """Give every member of an id collision (e.g. talk.mp3 and talk.wav) a hash suffix."""
    counts: dict[str, int] = {}
    for rid, _ in items:
        counts[rid] = counts.get(rid, 0) + 1
    out = []
    for rid, path in items:
        if counts[rid] > 1:
            rel = str(path.relative_to(root)) if root else str(path)
            rid = f"{rid[: MAX_ID_LEN - 9]}_{short_hash(rel)}"
        out.append((rid, path))
    return out


def recordings_from_directory(directory, speaker: str, language: str, extensions=SUPPORTED_EXTENSIONS) -> list[Recording]:
    root = Path(directory)
    files, _ = scan_directory(root, extensions)
    items = []
    for p in files:
        rel = p.relative_to(root)
        # Nested folders are part of the id so sub/a.mp3 and other/a.mp3 stay distinct.
        prefix = "_".join(recording_id(part) for part in rel.parts[:-1])
        rid = recording_id(rel.name)
        items.append((f"{prefix}_{rid}" if prefix else rid, p))
    return [Recording(rid, str(p.resolve()), speaker, language) for rid, p in _disambiguate(items, root)]


def recordings_from_sheet(sheet, speaker: str, language: str) -> list[Recording]:
    """Read a TSV sample sheet with columns ``id path speaker language`` (id/speaker/language optional)."""
    sheet = Path(sheet)
    with open(sheet, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    if not rows or "path" not in rows[0]:
        raise ValueError(f"{sheet}: sample sheet needs a header with at least a 'path' column")
    items, meta = [], {}
    for n, row in enumerate(rows, start=2):
        raw = (row.get("path") or "").strip()
        if not raw:
            raise ValueError(f"{sheet}: line {n} has an empty path")
        p = Path(raw) if os.path.isabs(raw) else sheet.parent / raw
        given = (row.get("id") or "").strip()
        if given and not _SAFE.match(given):
            raise ValueError(f"{sheet}: line {n}: id {given!r} must match {ID_PATTERN}")
        rid = given or recording_id(p.name)
        items.append((rid, p))
        meta[(rid, p)] = ((row.get("speaker") or "").strip() or speaker, (row.get("language") or "").strip() or language)
    ids = [rid for rid, _ in items]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup and any((row.get("id") or "").strip() for row in rows):
        raise ValueError(f"{sheet}: duplicate ids {dup}")
    return [Recording(rid, str(p.resolve()), *meta[(orig, p)]) for (rid, p), (orig, _) in zip(_disambiguate(items, None), items)]
