"""The choice of the exported chunk (select_voice) and the listening page, on evaluation
reports with known metrics; the smoke report's honest verdict (piper_export.judged)."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests import speech_fixtures as sfx  # noqa: E402
from workflow_scripts import evaluation_page, select_voice  # noqa: E402
from workflow_scripts.io_utils import StageError  # noqa: E402


def report(cer: float, similarity: float, verdict: str) -> dict:
    return {"overall": {"cer": cer, "wer": min(1.0, cer * 1.5), "similarity": similarity, "dnsmos_ovrl": 2.9,
                        "duration_ratio": 1.0, "flagged_sentences": 0, "verdict": verdict},
            "sentences": [{"index": 0, "text": "The birch canoe slid on the smooth planks.",
                           "wav": "chunk_x/00.wav", "transcript": "the birch canoe", "cer": cer, "seconds": 2.1,
                           "flags": []}]}


@pytest.fixture
def reports(tmp_path):
    paths = []
    for n, (cer, sim) in enumerate([(0.9, 0.5), (0.2, 0.8), (0.2, 0.85), (0.6, 0.9)]):
        p = tmp_path / "eval" / f"chunk_{n}.json"
        p.parent.mkdir(exist_ok=True)
        r = report(cer, sim, f"verdict {n}")
        r["sentences"][0]["wav"] = f"chunk_{n}/00.wav"
        p.write_text(json.dumps(r))
        paths.append(str(p))
    return paths


SETTINGS = {k: sfx.config_section("evaluation")[k] for k in ("intelligible_max_cer", "partly_intelligible_max_cer")}


def test_best_is_lowest_cer_then_similarity(reports):
    sel = select_voice.selection(reports, "best", [0, 1, 2, 3], [10, 20, 30, 40], SETTINGS)
    assert sel["chosen"] == 2 and sel["chosen_epochs"] == 30 and sel["evaluated"]
    assert sel["intelligibility"] == "partly intelligible" and sel["verdict"] == "verdict 2"
    assert [c["chunk"] for c in sel["candidates"]] == [0, 1, 2, 3]
    assert sel["candidates"][0]["epochs"] == 10 and sel["candidates"][3]["report"].endswith("chunk_3.json")


def test_last_and_no_evaluation(reports):
    last = select_voice.selection(reports, "last", [0, 1, 2, 3], [10, 20, 30, 40], SETTINGS)
    assert last["chosen"] == 3 and last["intelligibility"] == "not intelligible yet"
    none = select_voice.selection([], "best", [0, 1], [5, 10], SETTINGS)
    assert none["chosen"] == 1 and not none["evaluated"] and none["candidates"] == []
    with pytest.raises(StageError, match="not an eval"):
        select_voice.chunk_of("voice.json")


def test_page_plays_every_chunk_and_marks_the_choice(reports):
    sel = select_voice.selection(reports, "best", [0, 1, 2, 3], [10, 20, 30, 40], SETTINGS)
    by = {select_voice.chunk_of(p): select_voice.read_report(p) for p in reports}
    by[1]["sentences"][0]["transcript"] = "<script>x</script>"
    page = evaluation_page.render(by, sel)
    assert page.count("<audio") == 4 and "src='chunk_3/00.wav'" in page
    assert "chunk 2 ★ exported" in page and "<script>x" not in page


def test_smoke_report_is_honest():
    from workflow_scripts.piper_export import chosen_weights, judged

    sel = {"chosen": 1, "chosen_epochs": 2, "intelligibility": "not intelligible yet",
           "verdict": "not intelligible yet (CER 0.93)"}
    out = judged({"ok": True, "voice": "v.onnx"}, sel)
    assert out["ok"] is False and out["audio_ok"] is True and out["verdict"].startswith("not intelligible yet")
    assert judged({"ok": True}, {**sel, "intelligibility": "intelligible"})["ok"] is True
    weights = ["out/checkpoints/chunk_0.weights.ckpt", "out/checkpoints/chunk_1.weights.ckpt"]
    assert chosen_weights(weights, sel, "s.json") == weights[1]
    with pytest.raises(StageError, match="chose chunk 5"):
        chosen_weights(weights, {"chosen": 5}, "s.json")
