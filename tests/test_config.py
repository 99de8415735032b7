"""The config is validated before any job runs; messages name the key."""
import subprocess

import pytest

from tests.workflow_runner import REPO, SNAKEMAKE


def dry_run(tmp_path, *config):
    raw = tmp_path / "raw"
    raw.mkdir(exist_ok=True)
    (raw / "a.wav").write_bytes(b"")
    cmd = [SNAKEMAKE, "-n", "--snakefile", str(REPO / "Snakefile"), "--directory", str(tmp_path), "--configfile", str(REPO / "config.yaml"), "--config", f"inputs={{'directory': '{raw}'}}", *config]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path)


@pytest.mark.parametrize(
    "setting,named",
    [
        ("segmentaton={'factor': 0.1}", "segmentaton"),  # unknown key (typo)
        ("sample_rate=44100", "sample_rate"),  # out of the allowed set
        ("preprocess={'max_clip_s': 'long'}", "max_clip_s"),  # wrong type
        ("segmentation={'factor': 3}", "factor"),  # out of range
        ("transcription={'batchsize': 4}", "batchsize"),  # unknown nested key
        ("separation=bogus", "method"),  # shorthand expanded, then validated
    ],
)
def test_bad_config_stops_before_any_job(tmp_path, setting, named):
    proc = dry_run(tmp_path, setting)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert named in out
    assert "Job stats" not in out


def test_valid_config_plans(tmp_path):
    proc = dry_run(tmp_path, "separation=none", "run_until=clips")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "ingest" in proc.stdout


def test_no_recordings_is_a_clear_error(tmp_path):
    # `-n` and `--lint` still work; the run itself stops in its first job with the reason
    from tests.workflow_runner import run_snakemake, write_config

    write_config(tmp_path, inputs={"directory": str(tmp_path / "nothing")})
    dry = run_snakemake(tmp_path, "-n")
    assert dry.returncode == 0 and "no recordings found" in dry.stderr
    proc = run_snakemake(tmp_path)
    assert proc.returncode != 0
    log = (tmp_path / "out" / "logs" / "summary" / "all.log").read_text()
    assert "no recordings found" in log and "nothing" in log
