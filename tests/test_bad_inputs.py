"""The bad-input matrix through the backbone: every bad file fails its own job with one line
naming it (or is handled correctly) while every other recording finishes; inputs untouched."""
import json
import shutil
import subprocess
from pathlib import Path

import pytest
import soundfile as sf

from tests.workflow_runner import example_media, run_snakemake, tree_checksums, write_config

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
WORKS = ["truncated", "telephone_8k_", "surround_6ch_48k_", "studio_24bit_", "float32", "copy_of_studio_24bit_"]


def rec_dir(wd, prefix):
    hits = [p for p in (wd / "out" / "processed").iterdir() if p.name.startswith(prefix)] if (wd / "out" / "processed").exists() else []
    return hits


def ingest_log(wd, prefix):
    logs = [p for p in (wd / "out" / "logs" / "ingest").iterdir() if p.name.startswith(prefix)]
    assert len(logs) == 1, prefix
    return logs[0].read_text()


@pytest.mark.parametrize("prefix,reason", sorted(FAILS.items()))
def test_bad_file_fails_alone_with_one_line_naming_it(matrix, prefix, reason):
    wd, proc, _ = matrix
    log = ingest_log(wd, prefix)
    errors = [ln for ln in log.splitlines() if " ERROR " in ln]
    assert len(errors) == 1, log
    assert reason in errors[0]
    original = {"garbage": "garbage.mp3", "video_only_": "video only.mp4", "zero_bytes_": "zero bytes.wav", "text_renamed_": "text renamed.mp3"}[prefix]
    assert original in errors[0]
    assert all(not (d / "audio.wav").exists() for d in rec_dir(wd, prefix))


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
    assert proc.returncode != 0
    assert tree_checksums(wd / "raw") == before
    assert not [p for p in (wd / "out").rglob("*") if ".tmp" in p.name]


def test_duplicate_reported_once_bad_files_removed(matrix):
    wd, _, _ = matrix
    for name in ["garbage.mp3", "video only.mp4", "zero bytes.wav", "text renamed.mp3"]:
        (wd / "raw" / name).unlink()
    run_snakemake(wd, check=True)
    summary = json.loads((wd / "out" / "summary.json").read_text())
    assert len(summary["duplicates"]) == 1
    assert {r.split("_")[0] for r in summary["duplicates"][0]} == {"studio", "copy"}
