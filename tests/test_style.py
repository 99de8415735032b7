"""Gates: `snakemake --lint` and `snakefmt --check` are clean; every rule follows the conventions."""
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def smk_files():
    return [REPO / "Snakefile", *sorted((REPO / "rules").glob("*.smk"))]


def test_snakefmt_clean():
    proc = subprocess.run([str(BIN / "snakefmt"), "--check", *map(str, smk_files())], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_snakemake_lint_clean(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "a.wav").write_bytes(b"")
    cfgs = [
        f"inputs={{'directory': '{raw}'}}",
    ]
    for sep in ("none", "spleeter"):
        proc = subprocess.run(
            [str(BIN / "snakemake"), "--lint", "--snakefile", str(REPO / "Snakefile"), "--config", *cfgs, f"separation={sep}", "output_dir=" + str(tmp_path / "out")],
            capture_output=True, text=True, cwd=REPO,
        )
        assert proc.returncode == 0 and "Lints for" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr


def test_snakemake_lint_clean_with_the_shipped_config():
    """The gate as a user runs it: `snakemake --lint` in the repository, config.yaml as is."""
    proc = subprocess.run([str(BIN / "snakemake"), "--lint"], capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 0 and "Lints for" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr


def test_every_rule_has_log_benchmark_env_resources():
    for f in smk_files():
        text = f.read_text()
        for m in re.finditer(r"^(\s*)rule (\w+):\n((?:\1    .*\n|\s*\n)+)", text, re.M):
            name, body = m.group(2), m.group(3)
            if name == "all":
                continue
            for key in ("input:", "output:", "log:", "benchmark:", "conda:", "envmodules:", "threads:", "resources:", "mem_mb=", "runtime="):
                assert key in body, f"{f.name}: rule {name} lacks {key}"
            assert "lambda" not in body, f"{f.name}: rule {name} uses a lambda"
