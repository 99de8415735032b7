"""Snakemake through the real SLURM executor plugin on a throw-away one-node cluster.

Needs root and Debian's Slurm packages (`bash .ci/install_slurm.sh`) plus the runner venv
(`python3 envs/setup_venvs.py snakemake`); skipped otherwise. Run only these with
`pytest -m slurm tests/test_slurm.py`. Takes about 45 s on 2 busy cores (cluster start and
stop < 1 s each; each job spends ~15 s starting Snakemake twice inside the allocation, and the
plugin polls 2 s, 14 s, 36 s... after submission). The two rules are independent so that both
jobs finish within one polling cycle; a dependent chain doubles the time.
"""

from __future__ import annotations

import sys
import textwrap
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from slurm_cluster import (  # noqa: E402
    SlurmCluster,
    run_snakemake_on_slurm,
    slurm_cluster,  # noqa: F401  (module-scoped fixture)
    snakemake_venv,
)

pytestmark = pytest.mark.slurm

TINY_SNAKEFILE = textwrap.dedent("""\
    rule all:
        input:
            "results/a.txt",
            "results/b.txt",

    rule a:
        output:
            "results/a.txt",
        resources:
            mem_mb=200,
            runtime=5,
        shell:
            'echo "job=$SLURM_JOB_ID host=$(hostname)" > {output}'

    rule b:
        output:
            "results/b.txt",
        threads: 1
        resources:
            mem_mb=200,
            runtime=5,
        script:
            "scripts/b.py"
    """)

TINY_SCRIPT = textwrap.dedent("""\
    import os

    with open(snakemake.output[0], "w") as fh:
        fh.write(f"job={os.environ.get('SLURM_JOB_ID', '')} rule={snakemake.rule}\\n")
    """)


@pytest.fixture(scope="module")
def runner_venv():
    venv = snakemake_venv()
    if (
        not (venv / "bin" / "snakemake").exists()
        or not (venv / ".pvw-complete").exists()
    ):
        pytest.skip(
            f"runner venv {venv} not built: python3 envs/setup_venvs.py snakemake"
        )
    return venv


def _job_id(line: str) -> str:
    fields = dict(f.split("=", 1) for f in line.split() if "=" in f)
    return fields.get("job", "")


def test_cluster_runs_sbatch_wrap(slurm_cluster: SlurmCluster):
    """The bare cluster works: a batch job with an srun step completes (no Snakemake)."""
    job_id, state = slurm_cluster.sbatch_wrap("hostname && srun -n1 true")
    assert state == "COMPLETED", (job_id, state, slurm_cluster.job_states())
    assert job_id in slurm_cluster.submitted_job_ids()


def test_tiny_workflow_runs_through_sbatch(
    slurm_cluster: SlurmCluster, runner_venv, tmp_path
):
    (tmp_path / "scripts").mkdir()
    (tmp_path / "Snakefile").write_text(TINY_SNAKEFILE)
    (tmp_path / "scripts" / "b.py").write_text(TINY_SCRIPT)

    t0 = time.monotonic()
    rc, log, job_ids = run_snakemake_on_slurm(
        tmp_path,
        ["--jobs", "2", "--workflow-profile", "none"],
        cluster=slurm_cluster,
        timeout=600,
    )
    elapsed = time.monotonic() - t0
    print(f"snakemake on slurm: {elapsed:.1f} s, slurm job ids {job_ids}")
    assert rc == 0, log[-6000:]

    # Outputs exist and were written inside SLURM jobs.
    a_lines = (tmp_path / "results" / "a.txt").read_text().splitlines()
    b_lines = (tmp_path / "results" / "b.txt").read_text().splitlines()
    job_a, job_b = _job_id(a_lines[0]), _job_id(b_lines[0])
    assert job_a.isdigit() and job_b.isdigit() and job_a != job_b, (a_lines, b_lines)
    assert b_lines[0].endswith("rule=b"), b_lines

    # Both rules went through sbatch: Snakemake reported two SLURM job ids, they are the
    # ones the jobs saw, slurmctld logged their batch submission, and they completed.
    assert len(job_ids) == 2, log[-6000:]
    assert sorted(job_ids) == sorted({job_a, job_b})
    submitted = set(slurm_cluster.submitted_job_ids())
    assert set(job_ids) <= submitted, (job_ids, submitted)
    states = slurm_cluster.job_states()
    assert all(states.get(j) == "COMPLETED" for j in job_ids), states

    # The plugin wrote one SLURM log per job (kept via --slurm-keep-successful-logs).
    slurm_logs = list((tmp_path / ".snakemake" / "slurm_logs").rglob("*.log"))
    assert {p.stem for p in slurm_logs} >= set(job_ids), slurm_logs
