"""How serve mode and the stage commands call the one DAG: Snakemake as a subprocess.

Nothing here re-implements a stage. It builds Snakemake's argument list (never a shell
string), reads the configuration the way Snakemake will (``config.yaml`` of the working
directory, then each ``--configfile`` on top, then the schema's defaults), and writes the
small config overlay that points a run at other inputs (``--input`` of a stage command).
Runs in the runner venv (``.venv``), which has Snakemake, PyYAML and jsonschema.
"""
from __future__ import annotations

import csv
import hashlib
import io
import os
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
SNAKEFILE = REPO / "Snakefile"
SCHEMA = REPO / "schemas" / "config.schema.yaml"
STAGES = ("clips", "metadata", "dataset", "voice")  # the values of `run_until`
LOCK_MESSAGE = "Directory cannot be locked"


def load_config(workdir: str | os.PathLike, configfiles=(), overrides: dict | None = None) -> dict:
    """The config a run in ``workdir`` sees (Snakefile's ``configfile: config.yaml`` first,
    when present, then ``configfiles`` in order, then ``overrides``), with schema defaults."""
    from snakemake.utils import update_config, validate

    workdir = Path(workdir)
    files = [Path(f) if Path(f).is_absolute() else workdir / f for f in configfiles]
    default = workdir / "config.yaml"
    if default.exists() and all(default.resolve() != f.resolve() for f in files):
        files.insert(0, default)
    config: dict = {}
    for f in files:
        update_config(config, yaml.safe_load(f.read_text(encoding="utf-8")) or {})
    update_config(config, overrides or {})
    if isinstance(config.get("separation"), str):
        config["separation"] = {"method": config["separation"]}
    validate(config, str(SCHEMA), set_default=True)
    return config


def resolve(workdir: str | os.PathLike, path: str) -> Path:
    """A config path as Snakemake reads it: relative to the working directory."""
    p = Path(path)
    return p if p.is_absolute() else Path(workdir) / p


def snakemake_argv(workdir, configfiles=(), config: dict | None = None, until=(), targets=(),
                   cores: int | str | None = None, extra=()) -> list[str]:
    """Snakemake's command line for a run in ``workdir`` (the workflow profile
    ``profiles/default`` is loaded by Snakemake itself: keep-going, rerun-incomplete,
    env-modules). ``config`` values are simple scalars (``--config key=value``)."""
    argv = [sys.executable, "-m", "snakemake", "--snakefile", str(SNAKEFILE), "--directory", str(workdir)]
    if cores is not None:
        argv += ["--cores", str(cores)]
    if configfiles:
        argv += ["--configfile", *map(str, configfiles)]
    if config:
        argv += ["--config", *(f"{k}={v}" for k, v in config.items())]
    if until:
        argv += ["--until", *until]
    argv += ["--rerun-incomplete", *extra]
    if targets:
        argv += ["--", *map(str, targets)]
    return argv


def input_overlay(workdir, path: str | os.PathLike) -> Path:
    """A config overlay that makes ``path`` the run's input: a folder becomes
    ``inputs.directory``; a single file a one-line sample sheet (its recording id is the one
    a folder scan gives it)."""
    src = Path(path).resolve()
    if not src.exists():
        raise FileNotFoundError(f"{path}: no such file or folder")
    if src.is_dir():
        return config_overlay(workdir, {"inputs": {"directory": str(src), "sample_sheet": ""}})
    buf = io.StringIO()
    csv.writer(buf, delimiter="\t", lineterminator="\n").writerows([["path"], [str(src)]])
    sheet = _overlay_dir(workdir) / f"input-{_digest(str(src))}.tsv"
    _write_if_changed(sheet, buf.getvalue())
    return config_overlay(workdir, {"inputs": {"sample_sheet": str(sheet.resolve())}})


def config_overlay(workdir, settings: dict) -> Path:
    """``settings`` as a config file for ``--configfile`` (YAML keeps the types that
    ``--config key=value`` would not). Written under ``.snakemake/pvw/`` of the working
    directory, named by content: the same settings give the same file (and no rerun)."""
    text = yaml.safe_dump(settings, allow_unicode=True, sort_keys=True)
    target = _overlay_dir(workdir) / f"overlay-{_digest(text)}.yaml"
    _write_if_changed(target, text)
    return target.resolve()


def dotted(pairs) -> dict:
    """["training.epochs=2", "separation=none"] -> {"training": {"epochs": 2}, "separation": "none"}."""
    out: dict = {}
    for kv in pairs:
        key, sep, value = kv.partition("=")
        if not sep or not key:
            raise ValueError(f"{kv}: expected KEY=VALUE")
        node = out
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = yaml.safe_load(value)
    return out


def _overlay_dir(workdir) -> Path:
    out = Path(workdir) / ".snakemake" / "pvw"
    out.mkdir(parents=True, exist_ok=True)
    return out


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:12]


def _write_if_changed(path: Path, text: str) -> None:
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
