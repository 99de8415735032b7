"""Streams of Whisper windows decoded side by side (workflow_scripts/stream_decode.py,
workflow_scripts/stream_pool.py): the rules on known answers, then real speech through
tiny.en in the faster-whisper venv."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

import speech_fixtures as sfx  # noqa: E402
from workflow_runner import stage_python  # noqa: E402
from workflow_scripts.decode_windows import Window  # noqa: E402
from workflow_scripts.stream_decode import (CONTEXT_STEPS, context_length, encoder_frames, is_silent,  # noqa: E402
                                            needs_fallback)
from workflow_scripts.stream_pool import STREAM_MIN_WINDOWS, stream_layout  # noqa: E402

# faster-whisper's defaults (WhisperModel.transcribe)
OPTIONS = SimpleNamespace(compression_ratio_threshold=2.4, log_prob_threshold=-1.0, no_speech_threshold=0.6)


def test_prompt_lengths_follow_a_fixed_ladder():
    assert [context_length(n) for n in (0, 15, 16, 100, 127, 128, 222, 223, 400)] == [0, 0, 16, 64, 64, 128, 128, 223, 223]
    assert CONTEXT_STEPS[0] == 0 and CONTEXT_STEPS[-1] == 223  # Whisper's max_length // 2 - 1


def test_a_short_piece_is_encoded_as_10_s_the_rest_as_30_s():
    assert [encoder_frames(n) for n in (1, 330, 899, 900, 901, 1900, 2999, 3000)] == \
        [1000, 1000, 1000, 1000, 3000, 3000, 3000, 3000]


def test_fallback_and_silence_rules_are_the_sequential_decoders():
    assert needs_fallback(-0.3, 2.5, 0.1, OPTIONS)  # repetitive
    assert needs_fallback(-1.2, 1.5, 0.1, OPTIONS)  # improbable
    assert not needs_fallback(-1.2, 1.5, 0.9, OPTIONS)  # improbable but silent: no retry
    assert not needs_fallback(-0.3, 1.5, 0.9, OPTIONS)
    assert is_silent(-1.2, 0.9, OPTIONS)
    assert not is_silent(-0.3, 0.9, OPTIONS)  # confident text despite the no-speech score
    assert not is_silent(-1.2, 0.5, OPTIONS)


def windows(n: int) -> list[Window]:
    return [Window(10.0 * i, 10.0 * i + 9.0, (i,)) for i in range(n)]


@pytest.mark.parametrize("n, batch, streams", [(1, 8, 1), (7, 8, 1), (8, 8, 2), (31, 8, 7), (200, 8, 8), (200, 1, 1)])
def test_a_recording_is_split_only_where_it_is_long(n, batch, streams):
    layout = stream_layout(windows(n), batch)
    assert len(layout) == streams
    assert [w for part in layout for w in part] == windows(n)  # consecutive, in order, all of them
    if streams > 1:
        assert min(len(p) for p in layout) >= STREAM_MIN_WINDOWS - 1


SCRIPT = r"""
import json, logging, sys
from workflow_scripts.transcription import transcribe_shard
cfg, members, together = json.loads(sys.argv[1]), json.loads(sys.argv[2]), sys.argv[3] == "together"
log = logging.getLogger("t")
out = {}
for group in ([members] if together else [[m] for m in members]):
    failed = transcribe_shard([tuple(m) for m in group], cfg, log, 2, lambda name, records: out.__setitem__(name, records))
    assert not failed, failed
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def recordings(tmp_path_factory):
    try:
        good, refs = sfx.speech_clips("a")
    except sfx.FixtureUnavailable as exc:
        pytest.skip(f"speech fixtures unavailable: {exc}")
    root = tmp_path_factory.mktemp("streams")
    # one clip over 30 s: the prompts said one after the other, 0.3 s apart
    sr = 22050
    pause = np.zeros(int(0.3 * sr), dtype=np.float32)
    long_audio = np.concatenate([x for _, a in good for x in (a, pause)])
    long_ref = " ".join(refs[f"{name}.wav"] for name, _ in good)
    assert len(long_audio) / sr > 31
    a = sfx.write_clips_dir(root / "a" / "clips", good)
    b = sfx.write_clips_dir(root / "b" / "clips", [("b_00001", long_audio)] + good[:2])
    refs = {**refs, "b_00001.wav": long_ref, "b_00002.wav": refs["a_00001.wav"], "b_00003.wav": refs["a_00002.wav"]}
    return {"a": a, "b": b, "refs": refs}


def run_shard(recordings, how: str) -> dict:
    py = stage_python("fasterwhisper")
    # 5 s windows: recording a is 11 windows, so two streams; b's 30+ s clip is a window alone
    cfg = sfx.transcription_config(backend="faster-whisper", language="en", decode="batched", window_s=5)
    members = [[n, str(recordings[n].parent / "vocals.wav"), str(recordings[n]), "en"] for n in ("a", "b")]
    res = subprocess.run([str(py), "-c", SCRIPT, json.dumps(cfg), json.dumps(members), how], cwd=REPO,
                         capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout.splitlines()[-1])


@pytest.fixture(scope="module")
def decoded(recordings):
    return {how: run_shard(recordings, how) for how in ("together", "alone")}


def test_a_recordings_transcripts_do_not_depend_on_its_batch_mates(decoded):
    """Two recordings sharing batches give exactly what each gives alone (a batch of 3
    streams against batches of 2 and 1): a window decodes the same in any batch."""
    assert decoded["together"] == decoded["alone"]
    assert {r["decoding"] for recs in decoded["together"].values() for r in recs} == {"batched"}


def test_streams_keep_the_words(recordings, decoded):
    records = [r for recs in decoded["together"].values() for r in recs]
    refs = recordings["refs"]
    score = sfx.wer([refs[r["clip"]] for r in records], [r["text"] for r in records])
    assert score <= 0.10, [(r["clip"], r["text"]) for r in records]


def test_a_window_over_30_s_is_decoded_to_its_end(recordings, decoded):
    """Whisper hears 30 s at a time: the rest of a longer window is decoded from its last word on."""
    (long_clip,) = [r for r in decoded["together"]["b"] if r["clip"] == "b_00001.wav"]
    assert long_clip["duration_s"] > 31
    assert max(w["end"] for w in long_clip["words"]) > long_clip["duration_s"] - 4
    ref = recordings["refs"]["b_00001.wav"]
    assert sfx.wer([ref], [long_clip["text"]]) <= 0.10, long_clip["text"]
