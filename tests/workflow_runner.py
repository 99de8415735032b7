"""Run the real workflow with Snakemake in a temp directory (shared by the end-to-end tests)."""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))


def unavailable(why: str):
    """Skip a test whose environment is missing, but fail under CI, which must run it."""
    import pytest

    if os.environ.get("CI"):
        pytest.fail(f"CI must run this test: {why}")
    pytest.skip(why)


def stage_python(name: str) -> Path:
    """The python of the stage venv ``name`` (envs/NAME.yaml), or skip/fail when it is not built."""
    out = subprocess.run([sys.executable, str(REPO / "envs" / "setup_venvs.py"), "--print-path", name],
                         capture_output=True, text=True, check=True).stdout.strip()
    py = Path(out) / "bin" / "python"
    if not (Path(out) / ".pvw-complete").exists() or not py.exists():
        unavailable(f"venv {name} not built (python3 envs/setup_venvs.py {name})")
    return py


def example_media(n_prompts: int = 12, n_recordings: int = 2) -> Path:
    """Small real-speech recordings (mp3, mp4) built once and cached between test runs."""
    from workflow_scripts.example_data import build, cache_root

    out = cache_root().parent / "test-data" / f"example-{n_prompts}-{n_recordings}" / "raw"
    if not (out / ".complete").exists():
        build(str(out), n_prompts, n_recordings)
        (out / ".complete").write_text("ok\n")
    return out


def write_config(workdir: Path, **overrides) -> Path:
    cfg = {
        "output_dir": "out",
        "inputs": {"directory": "raw"},
        "separation": "none",
        "run_until": "clips",
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(cfg.get(key), dict):
            cfg[key] = {**cfg[key], **value}
        else:
            cfg[key] = value
    path = workdir / "config.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True))
    return path


def snakemake_argv(workdir: Path, *args: str) -> list[str]:
    # ``args`` first: a target after an option that takes a list (``--sdm``) would be read as
    # one of its values
    return [
        SNAKEMAKE,
        *args,
        "--snakefile", str(REPO / "Snakefile"),
        "--directory", str(workdir),
        "--configfile", str(workdir / "config.yaml"),
        "--cores", "2",
        "--sdm", "env-modules",
    ]


def start_snakemake(workdir: Path, *args: str) -> subprocess.Popen:
    """A run in the background, in a session of its own (``os.killpg(proc.pid, ...)`` kills it)."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.Popen(snakemake_argv(workdir, *args), cwd=workdir, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


def kill_leftovers(marker: str) -> None:
    """SIGKILL any process still running with ``marker`` (e.g. the temp dir) in its command
    line: a job a killed Snakemake started in another process group."""
    import signal
    import time

    for proc_dir in Path("/proc").iterdir():
        if not proc_dir.name.isdigit() or int(proc_dir.name) == os.getpid():
            continue
        try:
            cmdline = (proc_dir / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in cmdline:
            try:
                os.kill(int(proc_dir.name), signal.SIGKILL)
            except ProcessLookupError:
                pass
    time.sleep(1)


def kill_once_logged(proc: subprocess.Popen, log: Path, marker: str, leftovers: str, timeout: float = 600) -> None:
    """SIGKILL the run ``proc`` (a session of its own) and every job it started, as soon as
    ``log`` holds ``marker``; fails when the run ends first."""
    import signal
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if log.exists() and marker in log.read_text(errors="replace"):
            break
        time.sleep(0.5)
    assert proc.poll() is None, f"the run ended before {marker!r} appeared in {log}"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    kill_leftovers(leftovers)


def run_snakemake(workdir: Path, *args: str, check: bool = False, timeout: int = 900) -> subprocess.CompletedProcess:
    cmd = snakemake_argv(workdir, *args)
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=workdir)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}")
    return proc


def pending_jobs(workdir: Path, *args: str) -> dict[str, int]:
    """Rule → job count that `snakemake -n` reports (empty when nothing is to be done)."""
    proc = run_snakemake(workdir, "-n", *args, check=True)
    text = proc.stdout + proc.stderr
    counts: dict[str, int] = {}
    if "Job stats:" not in text:
        return counts
    table = text.split("Job stats:", 1)[1]
    for line in table.splitlines()[3:]:
        m = re.match(r"^(\w+)\s+(\d+)\s*$", line.strip())
        if not m:
            break
        if m.group(1) != "total":
            counts[m.group(1)] = int(m.group(2))
    return counts


def tree_checksums(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def copy_media(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)
