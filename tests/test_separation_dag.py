"""Spleeter through the real `separate_vocals` rule of the DAG (tiny model built by the test)."""
import subprocess

import pytest
import soundfile as sf

from tests.workflow_runner import REPO, copy_media, example_media, pending_jobs, run_snakemake, write_config

pytestmark = pytest.mark.e2e


def venv_python(name):
    path = subprocess.run(["python3", str(REPO / "envs" / "setup_venvs.py"), "--print-path", name], capture_output=True, text=True, check=True).stdout.strip()
    py = f"{path}/bin/python"
    import os

    if not os.path.exists(f"{path}/.pvw-complete"):
        if os.environ.get("CI"):
            pytest.fail(f"venv {name} missing in CI")
        pytest.skip(f"venv {name} not built")
    return py


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    py = venv_python("spleeter")
    root = tmp_path_factory.mktemp("spleeter-model")
    subprocess.run([py, str(REPO / "tests" / "tiny_spleeter.py"), str(root)], check=True, capture_output=True, timeout=300)
    return root


def test_spleeter_rule_in_the_dag(tmp_path, tiny_model):
    copy_media(example_media(6, 1) / "speaker_session_01.mp3", tmp_path / "raw" / "with music.mp3")
    sep = {"method": "spleeter", "chunk_s": 15, "overlap_s": 2, "spleeter": {"model_dir": str(tiny_model), "model": "2stems"}}
    write_config(tmp_path, separation=sep)
    run_snakemake(tmp_path, check=True)
    (rec,) = list((tmp_path / "out" / "processed").iterdir())
    a, v = sf.info(rec / "audio.wav"), sf.info(rec / "vocals.wav")
    assert v.frames == a.frames and v.samplerate == a.samplerate == 22050 and v.channels == 1
    assert not (rec / "accompaniment.wav").exists()  # temp() unless keep_accompaniment
    log = (tmp_path / "out" / "logs" / "separate_vocals" / f"{rec.name}.log").read_text()
    assert "%" in log  # progress lines
    assert (rec / "clips" / "clips.tsv").exists()
    # what a separation knob reruns (README "What a config change reruns"): the job reads the
    # chunking and its own method's block; threads, mem_mb and the other method's block are not
    # its params
    assert pending_jobs(tmp_path) == {}
    for change in ({"threads": 1, "mem_mb": 3000}, {"demucs": {"model": "mdx"}}):
        write_config(tmp_path, separation={**sep, **change})
        assert pending_jobs(tmp_path) == {}, change
    write_config(tmp_path, separation={**sep, "chunk_s": 20})
    assert pending_jobs(tmp_path) == {"separate_vocals": 1, "segment": 1, "preprocess_clips": 1, "summary": 1, "all": 1}


def test_empty_model_folder_fails_with_the_reason(tmp_path):
    venv_python("spleeter")
    copy_media(example_media(6, 1) / "speaker_session_01.mp3", tmp_path / "raw" / "a.mp3")
    (tmp_path / "models" / "2stems").mkdir(parents=True)
    write_config(tmp_path, separation={"method": "spleeter", "spleeter": {"model_dir": str(tmp_path / "models")}})
    proc = run_snakemake(tmp_path)
    assert proc.returncode != 0
    log = (tmp_path / "out" / "logs" / "separate_vocals" / "a.log").read_text()
    assert "checkpoint" in log and "random weights" in log
    assert not (tmp_path / "out" / "processed" / "a" / "vocals.wav").exists()


def test_demucs_rule_in_the_dag(tmp_path):
    venv_python("demucs")
    copy_media(example_media(6, 1) / "speaker_session_01.mp3", tmp_path / "raw" / "podcast.mp3")
    # demucs_unittest: Demucs's own built-in (randomly initialised) model, no download
    sep = {"method": "demucs", "chunk_s": 20, "overlap_s": 2, "keep_accompaniment": True, "demucs": {"model": "demucs_unittest"}}
    write_config(tmp_path, separation=sep)
    run_snakemake(tmp_path, check=True)
    (rec,) = list((tmp_path / "out" / "processed").iterdir())
    a = sf.info(rec / "audio.wav")
    for stem in ("vocals.wav", "accompaniment.wav"):  # accompaniment kept when asked
        s = sf.info(rec / stem)
        assert s.frames == a.frames and s.samplerate == a.samplerate and s.channels == 1
    assert (rec / "clips" / "clips.tsv").exists()
