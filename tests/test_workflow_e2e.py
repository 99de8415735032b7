"""End to end: real mp3/mp4 speech through ingest → vocal slot → segmentation → clips,
with hostile file names, a broken input, resume and rerun triggers."""
import json
import os
import time
from pathlib import Path

import pytest
import soundfile as sf

from tests.workflow_runner import copy_media, example_media, pending_jobs, run_snakemake, tree_checksums, write_config

pytestmark = pytest.mark.e2e

HOSTILE = "$(touch pwned) it's a \"talk\"; `id`.mp4"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    media = example_media()
    wd = tmp_path_factory.mktemp("e2e")
    raw = wd / "raw"
    copy_media(media / "speaker_session_01.mp3", raw / "first session.mp3")
    copy_media(media / "speaker_session_02.mp4", raw / HOSTILE)
    (raw / "notes.txt").write_text("not media, skipped\n")
    (raw / "broken.mp3").write_text("this is text, not audio\n")
    # `fail`: an unreadable input fails its own ingest job (`skip`: tests/test_bad_inputs.py);
    # inputs.on_error is no param of ingest, so the later configs (default skip) rerun nothing
    write_config(wd, inputs={**INPUTS, "on_error": "fail"})
    return wd


# Every recording a shard of its own (they are ~40 s, the shards 3 s; the broken file is a
# shard alone): the jobs below count per recording as before shards, and a recording's failure
# stops only its own shard (a bad file sharing a shard: tests/test_shards.py).
INPUTS = {"directory": "raw", "shard_minutes": 0.05}


def recs(wd: Path) -> list[str]:
    return sorted(p.name for p in (wd / "out" / "processed").iterdir())


def test_first_run_keeps_going_past_a_broken_file(workspace):
    wd = workspace
    before = tree_checksums(wd / "raw")
    proc = run_snakemake(wd, "--keep-going")
    assert proc.returncode != 0  # broken.mp3 fails its ingest job
    assert tree_checksums(wd / "raw") == before  # inputs untouched
    assert not list(wd.rglob("pwned")) and not (Path.cwd() / "pwned").exists()
    clip_dirs = sorted((wd / "out" / "processed").glob("*/clips"))
    assert len(clip_dirs) == 2  # both good recordings finished
    log = (wd / "out" / "logs" / "ingest" / "broken.log").read_text()
    assert "broken.mp3" in log and "ERROR" in log
    assert len([ln for ln in log.splitlines() if "ERROR" in ln]) == 1
    assert not (wd / "out" / "processed" / "broken" / "audio.wav").exists()
    for d in clip_dirs:
        clips = sorted(d.glob("*.wav"))
        assert len(clips) >= 2
        for c in clips:
            info = sf.info(c)
            assert info.samplerate == 22050 and info.channels == 1 and info.subtype == "PCM_16"
            assert 1.0 <= info.duration <= 12.0
    sidecar = json.loads(next((wd / "out" / "processed").glob("*/source.json")).read_text())
    assert len(sidecar["sha256"]) == 64 and sidecar["codec"] in ("mp3", "aac")
    # no temp files left behind
    assert not [p for p in (wd / "out").rglob("*") if ".tmp" in p.name]


def test_rerun_after_removing_broken_does_only_the_summary(workspace):
    wd = workspace
    (wd / "raw" / "broken.mp3").unlink()  # its shard goes with it; no other shard changes
    assert pending_jobs(wd) == {"summary": 1, "all": 1}
    run_snakemake(wd, check=True)
    summary = json.loads((wd / "out" / "summary.json").read_text())
    assert summary["recordings"] == 2 and summary["clips"] >= 5
    assert pending_jobs(wd) == {}  # a second run does nothing


def test_touch_alone_reruns_nothing_but_a_changed_input_reruns_its_chain(workspace):
    wd = workspace
    target = wd / "raw" / "first session.mp3"
    # Newer than every output, but never in the future: a future mtime makes Snakemake
    # reject the rerun's own outputs as older than their input (its clock-skew check).
    time.sleep(1.1)
    t = time.time()
    os.utime(target, (t, t))
    # Snakemake 9 compares checksums of inputs newer than their outputs: same bytes, no rerun.
    assert pending_jobs(wd) == {}
    with open(target, "ab") as fh:  # a new ID3v1 tag: the user edited the file's metadata
        fh.write(b"TAG" + b"edited".ljust(125, b" "))
    time.sleep(1.1)
    t = time.time()
    os.utime(target, (t, t))
    jobs = pending_jobs(wd)
    assert jobs == {"ingest": 1, "copy_vocals": 1, "segment": 1, "preprocess_clips": 1, "summary": 1, "all": 1}
    run_snakemake(wd, check=True)
    assert pending_jobs(wd) == {}


def test_segmentation_parameter_change_reruns_segmentation_onwards(workspace):
    wd = workspace
    write_config(wd, inputs=INPUTS, segmentation={"min_silence_s": 0.4})
    jobs = pending_jobs(wd)
    assert jobs == {"segment": 2, "preprocess_clips": 2, "summary": 1, "all": 1}


def test_adding_a_recording_runs_only_its_jobs(workspace):
    wd = workspace
    write_config(wd, inputs=INPUTS)
    copy_media(wd / "raw" / "first session.mp3", wd / "raw" / "Grüße -dup.mp3")
    jobs = pending_jobs(wd)
    assert jobs == {"ingest": 1, "copy_vocals": 1, "segment": 1, "preprocess_clips": 1, "summary": 1, "all": 1}
    run_snakemake(wd, check=True)
    summary = json.loads((wd / "out" / "summary.json").read_text())
    assert summary["recordings"] == 3
    assert len(summary["duplicates"]) == 1 and len(summary["duplicates"][0]) == 2  # same bytes twice
