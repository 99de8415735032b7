"""Uploads into the inputs folder: streamed to disk, never overwriting, checked as media.

A file arrives as the raw body of one request (``PUT /api/upload?name=...``), written chunk
by chunk to a hidden temporary file in the inputs folder (hidden files are never scanned as
recordings) while its sha256 and size are counted. Then: a file with the same bytes already
there is a duplicate (the temporary file is dropped); one ffprobe cannot read, or without an
audio stream, is rejected; anything else is hard-linked under its own sanitised name, or
``name-2.ext``, ``name-3.ext``... when that name is taken (a link never replaces anything and
never follows a symlink), and the temporary file removed. The name is a bare file name: a
path (``../x.mp3``, ``/etc/x.mp3``, ``a\\b.mp3``) is rejected, not cleaned up.
"""
from __future__ import annotations

import hashlib
import json
import os
import secrets
import subprocess
import threading
import unicodedata
from pathlib import Path

MAX_NAME_BYTES = 200
TEMP_PREFIX = ".upload-"


class UploadRejected(Exception):
    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.message, self.status = message, status


def sanitize_name(raw: str | None, extensions) -> str:
    """The name an upload is stored under, or UploadRejected. Keeps the user's name (spaces,
    unicode: the workflow gives every name a safe recording id) minus control characters and
    leading dots/dashes (a hidden file would never be scanned)."""
    if raw is None or not raw.strip():
        raise UploadRejected("no file name")
    name = unicodedata.normalize("NFC", raw)
    if "/" in name or "\\" in name or "\x00" in name:
        raise UploadRejected(f"{raw!r}: a file name is expected, not a path")
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    name = name.strip().lstrip(".-").strip()
    stem, ext = os.path.splitext(name)
    allowed = sorted({e.lower() for e in extensions})
    if ext.lower() not in allowed:
        raise UploadRejected(f"{raw!r}: not an audio or video file (allowed: {' '.join(allowed)})", 415)
    stem = stem.strip() or "upload"
    while len((stem + ext).encode("utf-8")) > MAX_NAME_BYTES:
        stem = stem[:-1]
    return stem + ext


def probe_audio(path: str | os.PathLike, ffprobe: str = "ffprobe") -> str | None:
    """None when ffprobe finds an audio stream, else why not (argument list, no shell)."""
    try:
        proc = subprocess.run(
            [ffprobe, "-v", "error", "-show_entries", "stream=codec_type", "-of", "json", "--", str(path)],
            capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"could not be probed ({exc})"
    if proc.returncode != 0:
        first = (proc.stderr.strip().splitlines() or ["unreadable"])[-1]
        return f"not a media file ffprobe can read ({first.split(': ')[-1]})"
    try:
        kinds = [s.get("codec_type") for s in json.loads(proc.stdout or "{}").get("streams", [])]
    except ValueError:
        kinds = []
    if "audio" not in kinds:
        return f"no audio stream (streams: {', '.join(k or '?' for k in kinds) or 'none'})"
    return None


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class InputsFolder:
    """The inputs folder as uploads see it: the files there, their hashes (computed only for
    files of an upload's size, cached by size and mtime), one commit at a time."""

    def __init__(self, directory: str | os.PathLike, extensions, max_bytes: int):
        self.dir = Path(directory)
        self.extensions = tuple(extensions)
        self.max_bytes = int(max_bytes)
        self._hashes: dict[str, tuple[int, int, str]] = {}
        self._lock = threading.Lock()

    def files(self) -> list[dict]:
        if not self.dir.is_dir():
            return []
        out = []
        for p in sorted(self.dir.rglob("*")):
            rel = p.relative_to(self.dir)
            if any(part.startswith(".") for part in rel.parts) or not p.is_file():
                continue
            out.append({"name": str(rel), "bytes": p.stat().st_size,
                        "media": p.suffix.lower() in {e.lower() for e in self.extensions}})
        return out

    def open_upload(self, raw_name: str | None) -> "Upload":
        name = sanitize_name(raw_name, self.extensions)
        self.dir.mkdir(parents=True, exist_ok=True)
        return Upload(self, name)

    def duplicate_of(self, sha: str, size: int) -> str | None:
        for p in sorted(self.dir.rglob("*")):
            rel = p.relative_to(self.dir)
            if any(part.startswith(".") for part in rel.parts) or p.is_symlink() or not p.is_file():
                continue
            st = p.stat()
            if st.st_size != size:
                continue
            cached = self._hashes.get(str(p))
            if not cached or cached[:2] != (st.st_size, st.st_mtime_ns):
                cached = (st.st_size, st.st_mtime_ns, sha256_file(p))
                self._hashes[str(p)] = cached
            if cached[2] == sha:
                return str(rel)
        return None

    def commit(self, upload: "Upload") -> dict:
        """Check a finished upload and give it its final name (or drop it)."""
        upload.close()
        with self._lock:
            try:
                dup = self.duplicate_of(upload.sha256, upload.size)
                if dup:
                    return {"status": "duplicate", "name": upload.name, "duplicate_of": dup, "sha256": upload.sha256,
                            "message": f"{upload.name}: same bytes as {dup} (sha256 {upload.sha256[:12]}…), not added"}
                why = probe_audio(upload.tmp)
                if why:
                    raise UploadRejected(f"{upload.name}: {why}", 415)
                final = self._link_unique(upload.tmp, upload.name)
                self._hashes[str(final)] = (upload.size, final.stat().st_mtime_ns, upload.sha256)
                note = "" if final.name == upload.name else f" ({upload.name} was taken)"
                return {"status": "saved", "name": final.name, "bytes": upload.size, "sha256": upload.sha256,
                        "message": f"saved as {final.name}{note}"}
            finally:
                upload.discard()

    def _link_unique(self, tmp: Path, name: str) -> Path:
        stem, ext = os.path.splitext(name)
        taken = {p.name.lower() for p in self.dir.iterdir()}
        for n in range(1, 10_000):
            candidate = name if n == 1 else f"{stem}-{n}{ext}"
            if candidate.lower() in taken:
                continue
            dst = self.dir / candidate
            try:
                os.link(tmp, dst, follow_symlinks=False)  # fails on any existing entry
            except FileExistsError:
                continue
            return dst
        raise UploadRejected(f"{name}: no free name left")


class Upload:
    """One upload being received: a hidden temporary file, its size and sha256."""

    def __init__(self, folder: InputsFolder, name: str):
        self.folder, self.name = folder, name
        self.tmp = folder.dir / f"{TEMP_PREFIX}{secrets.token_hex(8)}.part"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        self._fd = os.open(self.tmp, flags, 0o644)
        self._hash = hashlib.sha256()
        self.size = 0

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.folder.max_bytes:
            self.discard()
            raise UploadRejected(f"{self.name}: larger than the limit of {self.folder.max_bytes // 2**20} MB "
                                 "(--max-upload-mb)", 413)
        self._hash.update(chunk)
        view = memoryview(chunk)
        while view:
            view = view[os.write(self._fd, view):]

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def discard(self) -> None:
        self.close()
        try:
            self.tmp.unlink()
        except FileNotFoundError:
            pass
