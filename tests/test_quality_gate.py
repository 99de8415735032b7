"""Fast unit tests of the quality gate, Piper text normalisation and metadata aggregation."""
from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

import speech_fixtures as sfx  # noqa: E402
from workflow_scripts import quality_gate as qg  # noqa: E402
from workflow_scripts.aggregate_metadata import aggregate, write_outputs  # noqa: E402
from workflow_scripts.io_utils import StageError  # noqa: E402

GATE = sfx.transcription_config()["gate"]  # the schema's defaults
EN = {**GATE, "language": "en"}


def rec(text="Please enter your password followed by the pound key.", **kw):
    words = [w for w in text.split()]
    dur = kw.pop("duration_s", 3.5)
    step = (dur - 0.4) / max(len(words), 1)
    base = {
        "clip": "r_00001.wav", "text": text, "language": "en", "language_probability": None,
        "avg_logprob": -0.1, "no_speech_prob": 0.02, "compression_ratio": qg_cr(text),
        "words": [{"word": " " + w, "start": round(0.2 + i * step, 2), "end": round(0.2 + (i + 1) * step, 2),
                   "probability": 0.9} for i, w in enumerate(words)],
        "duration_s": dur, "edge_overlap_s": [0.0, 0.0], "edge_floor_db": [1.0, 1.0], "backend": "faster-whisper", "model": "x",
    }
    base.update(kw)
    return base


def qg_cr(text):
    import zlib

    b = text.encode()
    return len(b) / len(zlib.compress(b)) if b else 0.0


# ----------------------------------------------------------------- numbers / normalisation


@pytest.mark.parametrize("n, words", [
    (0, "zero"), (7, "seven"), (13, "thirteen"), (21, "twenty-one"), (100, "one hundred"),
    (101, "one hundred and one"), (999, "nine hundred and ninety-nine"),
    (1000, "one thousand"), (1001, "one thousand and one"),
    (1234, "one thousand two hundred and thirty-four"), (2000000, "two million"), (-5, "minus five"),
])
def test_number_to_words(n, words):
    assert qg.number_to_words(n) == words


@pytest.mark.parametrize("n, words", [(1, "first"), (2, "second"), (3, "third"), (12, "twelfth"),
                                      (20, "twentieth"), (22, "twenty-second"), (101, "one hundred and first")])
def test_ordinals(n, words):
    assert qg.ordinal_words(n) == words


@pytest.mark.parametrize("text, expected", [
    ("I have 3 cats.", "I have three cats."),
    ("It costs $5.50, not £1.", "It costs five dollars and fifty cents, not one pound."),
    ("On the 21st of May 1984.", "On the twenty-first of May nineteen eighty-four."),
    ("In 2005 and in the 1990s.", "In two thousand and five and in the nineteen nineties."),
    ("Mr. Smith & Dr. Jones are 100% sure.", "Mister Smith and Doctor Jones are one hundred percent sure."),
    ("About 1,250 people, i.e. many.", "About one thousand two hundred and fifty people, that is many."),
    ("Pi is 3.14.", "Pi is three point one four."),
    ("He said “hi” — then left…", 'He said "hi" - then left...'),
    ("[Music] Hello there. (laughs)", "Hello there."),
    ("  lots   of\tspace ", "lots of space"),
])
def test_normalize_text(text, expected):
    assert qg.normalize_text(text) == expected


def test_normalize_keeps_punctuation_and_other_languages_untouched():
    assert qg.normalize_text("Wait, what?! Yes; no: maybe.") == "Wait, what?! Yes; no: maybe."
    assert qg.normalize_text("Es kostet 5 Euro.", "de") == "Es kostet 5 Euro."


def test_unspeakable_chars():
    assert qg.unspeakable_chars("Hello, world! It's fine.") == []
    assert qg.unspeakable_chars("café naïve") == []
    assert qg.unspeakable_chars("a/b_c") == ["/", "_"]
    assert qg.unspeakable_chars("日本") == ["日", "本"]
    assert qg.unspeakable_chars("Привет", "ru") == []


# ----------------------------------------------------------------- signals and score


def test_ngram_repeats():
    assert qg.max_ngram_repeats("thank you thank you thank you") == (3, 2)
    assert qg.max_ngram_repeats("no no no no") == (4, 1)
    assert qg.max_ngram_repeats("a perfectly normal sentence")[0] == 1
    # a loop: three repeats of a phrase, four of a single word ("no, no, no" is speech)
    assert qg.is_loop(*qg.max_ngram_repeats("thank you thank you thank you"), 3)
    assert not qg.is_loop(*qg.max_ngram_repeats("no no no"), 3)
    assert qg.is_loop(*qg.max_ngram_repeats("no no no no"), 3)


def test_quality_score_range_and_order():
    good = qg.quality_score(rec())
    worse = qg.quality_score(rec(avg_logprob=-1.2, no_speech_prob=0.5))
    assert 0.85 < good <= 1.0
    assert 0.0 <= worse < good
    assert qg.quality_score(rec(text="")) == 0.0
    assert qg.quality_score(rec(words=[], avg_logprob=None, no_speech_prob=None, compression_ratio=None)) == 0.0


# ----------------------------------------------------------------- gate


def codes(reasons):
    return {qg.reason_code(r) for r in reasons}


def test_gate_keeps_a_good_clip():
    keep, reasons = qg.gate(rec(), EN)
    assert keep and reasons == []


@pytest.mark.parametrize("overrides, code", [
    ({"text": ""}, "empty"),
    ({"text": "[Music]"}, "non_speech"),
    ({"text": " . . ."}, "non_speech"),
    ({"language": "de", "language_probability": 0.9}, "wrong_language"),
    ({"language_probability": 0.2}, "wrong_language"),
    ({"avg_logprob": -1.5}, "low_logprob"),
    ({"no_speech_prob": 0.9}, "no_speech"),
    ({"compression_ratio": 3.1}, "repetition"),
    ({"text": "I said the thing the thing the thing the thing again", "compression_ratio": 1.5}, "repetition"),
    ({"duration_s": 30.0}, "chars_per_s_low"),
    ({"duration_s": 1.0, "words": []}, "chars_per_s_high"),
    ({"text": "Send it to a/b please now ok", "duration_s": 2.5}, "unspeakable"),
])
def test_gate_rejects(overrides, code):
    keep, reasons = qg.gate(rec(**overrides), EN)
    assert not keep
    assert code in codes(reasons), reasons


def test_gate_cut_needs_a_word_across_the_edge_and_sound_there():
    r = rec(edge_overlap_s=[0.2, 0.15])  # Whisper's word times run over the edges ...
    keep, reasons = qg.gate(r, EN)  # ... but the edges sit at the noise floor
    assert keep, reasons
    r["edge_floor_db"] = [25.0, 30.0]
    keep, reasons = qg.gate(r, EN)
    assert not keep and {"cut_start", "cut_end"} <= codes(reasons)
    r["edge_overlap_s"] = [0.0, 0.02]  # loud edges, no word across them: a clip cut at a pause
    assert qg.gate(r, EN)[0]


def test_gate_cut_thresholds_from_config():
    r = rec(edge_overlap_s=[0.1, 0.0], edge_floor_db=[15.0, 0.0])
    assert codes(qg.gate(r, EN)[1]) == {"cut_start"}
    assert qg.gate(r, {**EN, "edge_floor_db": 20.0})[0]
    assert qg.gate(r, {**EN, "edge_overlap_s": 0.15})[0]


def test_gate_thresholds_from_config():
    r = rec(avg_logprob=-0.8)
    assert qg.gate(r, EN)[0]
    assert not qg.gate(r, {**EN, "min_avg_logprob": -0.5})[0]
    assert not qg.gate(rec(), {**EN, "min_quality": 0.99})[0]


def test_language_not_checked_without_expectation():
    assert qg.gate(rec(language="de", language_probability=0.99), {**EN, "language": None})[0]


# ----------------------------------------------------------------- aggregation


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def test_aggregate_outputs(tmp_path):
    a = tmp_path / "a.jsonl"
    b = tmp_path / "b.jsonl"
    write_jsonl(a, [rec(clip="recA_00002.wav", text="I have 2 dogs and a cat here."),
                    rec(clip="recA_00001.wav", text="")])
    write_jsonl(b, [rec(clip="recB_00001.wav", text="Hello there, how are you today?", avg_logprob=-2.0)])
    result = aggregate([("recA", str(a), None, "alice", "en"), ("recB", str(b), None, "bob", "en")], GATE)
    out = {k: tmp_path / n for k, n in [("m", "metadata.csv"), ("r", "rejected.tsv"), ("s", "s.json"), ("v", "t.tsv")]}
    write_outputs(result, out["m"], out["r"], out["s"], out["v"])
    lines = out["m"].read_text().splitlines()
    assert lines == ["recA_00002.wav|I have two dogs and a cat here.|3.500|alice|" + lines[0].rsplit("|", 1)[1]]
    assert 0 < float(lines[0].rsplit("|", 1)[1]) <= 1
    with open(out["r"]) as fh:
        rej = list(csv.DictReader(fh, delimiter="\t"))
    assert [r["clip"] for r in rej] == ["recA_00001.wav", "recB_00001.wav"]
    assert rej[0]["reasons"] == "empty" and rej[1]["reasons"].startswith("low_logprob")
    summary = json.loads(out["s"].read_text())
    assert summary["clips"] == 3 and summary["kept"] == 1
    assert summary["rejected_by_reason"] == {"empty": 1, "low_logprob": 1}
    with open(out["v"]) as fh:
        review = list(csv.DictReader(fh, delimiter="\t"))
    assert review[1]["text"] == "I have 2 dogs and a cat here." and review[1]["normalised"].startswith("I have two")
    # stable: the same input gives byte-identical files
    before = out["m"].read_bytes()
    write_outputs(aggregate([("recB", str(b), None, "bob", "en"), ("recA", str(a), None, "alice", "en")], GATE),
                  out["m"], out["r"], out["s"])
    assert out["m"].read_bytes() == before


def test_aggregate_rejects_duplicates_and_missing_clips(tmp_path):
    a = tmp_path / "a.jsonl"
    write_jsonl(a, [rec(clip="x.wav")])
    with pytest.raises(StageError, match="also in recording"):
        aggregate([("r1", str(a), None, "s"), ("r2", str(a), None, "s")], GATE)
    (tmp_path / "clips").mkdir()
    with pytest.raises(StageError, match="missing from the clips directory"):
        aggregate([("r1", str(a), str(tmp_path / "clips"), "s")], GATE)


def test_aggregate_pipe_in_text_never_breaks_columns(tmp_path):
    a = tmp_path / "a.jsonl"
    write_jsonl(a, [rec(clip="x.wav", text="Choose this | or that one please, right now.")])
    result = aggregate([("r1", str(a), None, "s")], GATE)
    write_outputs(result, tmp_path / "m.csv", tmp_path / "r.tsv", tmp_path / "s.json")
    for line in (tmp_path / "m.csv").read_text().splitlines():
        assert line.count("|") == 4


# ----------------------------------------------------------------- WER helper


def test_wer_helper():
    from speech_fixtures import wer, word_errors

    assert word_errors("Please press 1.", "please press one") == (0, 3)
    assert word_errors("a b c d", "a x c") == (2, 4)
    assert wer(["a b", "c d"], ["a b", "c"]) == 0.25


# ----------------------------------------------------------------- transcription helpers (no model)


def test_transcription_checks_its_inputs_before_loading_a_model(tmp_path):
    from workflow_scripts.transcription import transcribe_recording

    import logging

    cfg = sfx.transcription_config()
    with pytest.raises(StageError, match="clips.tsv: missing"):
        transcribe_recording(tmp_path / "vocals.wav", tmp_path, cfg, logging.getLogger("t"))
    (tmp_path / "clips.tsv").write_text("clip\tstart_s\tend_s\tduration_s\tlufs_before\tlufs_after\n"
                                        "r_00001.wav\t2\t3\t1\t-23\t-23\nr_00002.wav\t2.5\t4\t1.5\t-23\t-23\n")
    with pytest.raises(StageError, match="must not overlap"):
        transcribe_recording(tmp_path / "vocals.wav", tmp_path, cfg, logging.getLogger("t"))
    with pytest.raises(StageError, match="lacks"):
        transcribe_recording(tmp_path / "vocals.wav", tmp_path, {"backend": "faster-whisper"}, logging.getLogger("t"))
