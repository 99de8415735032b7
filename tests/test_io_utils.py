"""Atomic outputs: a failed or killed attempt never leaves a file under the final name, and
the rerun leaves nothing of the killed attempt behind."""
import subprocess
import sys
from pathlib import Path

import pytest

from workflow_scripts.io_utils import atomic_dir, atomic_path

REPO = Path(__file__).resolve().parents[1]

KILLED_WRITER = """
import os, signal, sys
from pathlib import Path
from workflow_scripts.io_utils import atomic_dir, atomic_path
kind, final = sys.argv[1], Path(sys.argv[2])
with (atomic_dir if kind == "dir" else atomic_path)(final) as tmp:
    if kind == "dir":
        (tmp / "seg_00001.wav").write_bytes(b"half")
    else:
        tmp.write_bytes(b"half")
    os.kill(os.getpid(), signal.SIGKILL)
"""


@pytest.mark.parametrize("kind", ["dir", "file"])
def test_rerun_after_kill_leaves_only_the_output(tmp_path, kind):
    final = tmp_path / ("segments" if kind == "dir" else "audio.wav")
    proc = subprocess.run([sys.executable, "-c", KILLED_WRITER, kind, str(final)], cwd=REPO)
    assert proc.returncode == -9
    assert not final.exists()
    assert len(list(tmp_path.iterdir())) == 1  # the killed attempt's hidden temp
    with (atomic_dir if kind == "dir" else atomic_path)(final) as tmp:
        if kind == "dir":
            (tmp / "seg_00001.wav").write_bytes(b"whole")
        else:
            tmp.write_bytes(b"whole")
    assert sorted(p.name for p in tmp_path.iterdir()) == [final.name]
    assert (final / "seg_00001.wav" if kind == "dir" else final).read_bytes() == b"whole"


def test_failure_keeps_the_previous_output(tmp_path):
    final = tmp_path / "clips"
    with atomic_dir(final) as tmp:
        (tmp / "a.wav").write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with atomic_dir(final) as tmp:
            (tmp / "a.wav").write_bytes(b"new")
            raise RuntimeError("boom")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clips"]
    assert (final / "a.wav").read_bytes() == b"old"


def test_temp_names_differ_for_outputs_sharing_a_stem(tmp_path):
    with atomic_path(tmp_path / "report.json") as a, atomic_path(tmp_path / "report.md") as b:
        assert a != b and a.parent == b.parent == tmp_path and a.name.startswith(".")
        a.write_text("{}")
        b.write_text("#")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json", "report.md"]


def test_unicode_and_shell_characters_in_the_name(tmp_path):
    final = tmp_path / "$(touch pwned) 'quoted' café.wav"
    with atomic_path(final) as tmp:
        tmp.write_bytes(b"x")
    assert final.read_bytes() == b"x"
    assert not (tmp_path / "pwned").exists()
