"""Manual overrides in aggregate_metadata, the report's data helpers and figures, and the
review page's HTML (no browser: tests/test_review_page.py drives a real Chromium)."""
import csv
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_quality_gate import GATE, rec, write_jsonl  # noqa: E402

from workflow_scripts.aggregate_metadata import aggregate, read_overrides, write_outputs  # noqa: E402
from workflow_scripts.io_utils import StageError  # noqa: E402
from workflow_scripts import report_plots as rp  # noqa: E402
from workflow_scripts.review_page import render, review_rows  # noqa: E402


def three_clips(tmp_path):
    j = tmp_path / "r.jsonl"
    write_jsonl(j, [rec(clip="r_00001.wav", text="Please hold the line."),
                    rec(clip="r_00002.wav", text="Your call is important to us.", avg_logprob=-2.0),
                    rec(clip="r_00003.wav", text="Goodbye and thank you.")])
    return [("r", str(j), None, "alice", "en")]


def write_overrides(path, lines):
    path.write_text("clip\taction\ttext\n" + "".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def test_overrides_win_over_the_gate(tmp_path):
    recs = three_clips(tmp_path)
    gate_only = aggregate(recs, GATE)
    assert [r["keep"] for r in gate_only["rows"]] == [True, False, True]
    ov = read_overrides(write_overrides(tmp_path / "o.tsv", [
        "r_00002.wav\taccept\t",                       # gate rejected it: kept
        "r_00001.wav\treject\t",                       # removed
        "processed/r/clips/r_00003.wav\tedit\tGood bye, see you at 3.",  # new text, normalised
        "gone_00009.wav\treject\t",                    # no such clip: ignored, reported
    ]))
    result = aggregate(recs, GATE, overrides=ov, overrides_file="o.tsv")
    rows = {r["clip"]: r for r in result["rows"]}
    assert rows["r_00002.wav"]["keep"] and rows["r_00002.wav"]["override"] == "accept"
    assert not rows["r_00001.wav"]["keep"] and rows["r_00001.wav"]["reasons"] == ["manual_reject"]
    assert rows["r_00003.wav"]["keep"] and rows["r_00003.wav"]["normalised"] == "Good bye, see you at three."
    s = result["summary"]
    assert s["kept"] == 2 and s["rejected"] == 1
    assert s["rejected_by_reason"] == {"manual_reject": 1}  # the accepted clip's gate reason is not counted
    assert s["overrides"]["counts"] == {"accept": 1, "edit": 1, "reject": 1}
    assert s["overrides"]["unmatched"] == ["gone_00009.wav"]
    edit = next(a for a in s["overrides"]["applied"] if a["action"] == "edit")
    assert edit["previous_text"] == "Goodbye and thank you." and edit["text"] == "Good bye, see you at three."
    out = {k: tmp_path / k for k in ("m.csv", "r.tsv", "s.json", "t.tsv")}
    write_outputs(result, out["m.csv"], out["r.tsv"], out["s.json"], out["t.tsv"])
    assert [ln.split("|")[:2] for ln in out["m.csv"].read_text().splitlines()] == [
        ["r_00002.wav", "Your call is important to us."], ["r_00003.wav", "Good bye, see you at three."]]
    with open(out["t.tsv"], newline="") as fh:
        assert [r["override"] for r in csv.DictReader(fh, delimiter="\t")] == ["reject", "accept", "edit"]


@pytest.mark.parametrize("body, match", [
    ("clip\tverdict\nx.wav\treject\n", "header"),
    ("clip\taction\ttext\nx.wav\tdelete\t\n", "not one of"),
    ("clip\taction\ttext\nx.wav\tedit\t \n", "without text"),
    ("clip\taction\ttext\n\treject\t\n", "no clip"),
])
def test_malformed_overrides_name_file_and_line(tmp_path, body, match):
    p = tmp_path / "overrides.tsv"
    p.write_text(body, encoding="utf-8")
    with pytest.raises(StageError, match=match) as exc:
        read_overrides(p)
    assert str(p) in str(exc.value)


def test_overrides_later_line_wins_and_comments_skipped(tmp_path):
    p = tmp_path / "o.tsv"
    p.write_text("# exported\nclip\taction\ttext\r\nx.wav\treject\t\r\n\nx.wav\tEDIT\tNew | text\twith tab\r\n", encoding="utf-8")
    assert read_overrides(p) == {"x.wav": {"action": "edit", "text": "New text", "line": 5}}
    assert read_overrides(tmp_path / "o.tsv") and read_overrides(write_overrides(tmp_path / "e.tsv", [])) == {}


def test_report_helpers(tmp_path):
    review = [
        {"clip": "a.wav", "recording": "r", "keep": "1", "quality": "0.9", "duration": "2.0", "reasons": "",
         "normalised": "Hello there you"},
        {"clip": "b.wav", "recording": "r", "keep": "0", "quality": "0.2", "duration": "1.0",
         "reasons": "low_logprob:-2.00;chars_per_s_low:2.0", "normalised": "Hi"},
    ]
    assert rp.speaking_rates(review) == [(13 / 2.0, True), (2.0, False)]
    assert rp.rejects_by_reason(review, [{"reason": "too_short"}]) == {
        "chars_per_s_low": 1, "clip stage: too_short": 1, "low_logprob": 1}
    summary = {"recordings": 1, "hours_in": 0.01, "clips": 2, "hours_kept": 0.001, "dropped_by_reason": {"too_short": 1},
               "per_recording": [{"recording": "r", "hours_in": 0.01, "hours_kept": 3 / 3600}]}
    assert rp.hours_per_recording(summary, review) == [
        {"recording": "r", "hours_in": 0.01, "hours_clips": 3 / 3600, "hours_kept": 2 / 3600}]
    bench = tmp_path / "b.tsv"
    bench.write_text("s\th:m:s\tmax_rss\tcpu_time\n1.50\t0:00:01\t10\t1.0\n")
    stages = rp.stage_seconds({"ingest": [str(bench), str(bench)], "transcribe": [str(tmp_path / "missing.tsv")]})
    assert stages == {"ingest": {"jobs": 2, "s": 3.0, "cpu_s": 2.0}}
    tsum = {"clips": 2, "kept": 1, "rejected": 1, "kept_hours": 0.0006, "rejected_by_reason": {"low_logprob": 1},
            "overrides": {"counts": {"edit": 1}}}
    rows = rp.run_summary(summary, tsum, stages)
    assert ("rejected by reason", "low_logprob", 1) in rows and ("rejected by reason", "clip stage: too_short", 1) in rows
    assert ("manual overrides", "edit", 1) in rows and rows[-1] == ("time per stage (s)", "total (summed over jobs)", 3.0)
    rp.write_summary_table(rows, tmp_path / "s.tsv", tmp_path / "s.html")
    assert "low_logprob" in (tmp_path / "s.html").read_text()
    assert (tmp_path / "s.tsv").read_text().splitlines()[0] == "section\titem\tvalue"


def test_figures_are_pngs_even_when_empty(tmp_path):
    limits = {"min_clip_s": 1.0, "max_clip_s": 12.0, "min_chars_per_s": 4.0, "max_chars_per_s": 25.0}
    rp.plot_clip_durations([1.5, 2.5, 11.9], limits, tmp_path / "d.png")
    rp.plot_clip_durations([], limits, tmp_path / "d0.png")
    rp.plot_rejects({}, tmp_path / "r0.png")
    rp.plot_quality([], tmp_path / "q0.png")
    rp.plot_speaking_rate([(10.0, True), (30.0, False)], limits, tmp_path / "s.png")
    rp.plot_loudness([{"lufs_before": "-17", "lufs_after": "-23"}], -23.0, tmp_path / "l.png")
    rp.plot_hours([{"recording": "r", "hours_in": 0.02, "hours_clips": 0.01, "hours_kept": 0.005}], tmp_path / "h.png")
    for p in tmp_path.glob("*.png"):
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]


def test_the_dnsmos_figure_draws_the_bars_the_gate_applied(tmp_path, monkeypatch):
    from workflow_scripts import report_gates as rg

    lines = []
    monkeypatch.setattr(rg, "_limit_line", lambda ax, x, label: lines.append((x, label)))
    rows = [{"keep": "1", "ovrl": "2.7", "p808": "2.9"}, {"keep": "0", "ovrl": "2.1", "p808": "2.6"}]
    limits = {"min_ovrl": 2.8, "min_p808": 3.0}
    rg.plot_audio_quality(rows, limits, tmp_path / "aq.png", {"min_ovrl_applied": 2.5, "min_p808_applied": 2.7})
    assert lines == [(2.5, "ovrl bar applied = 2.5"), (2.7, "p808 bar applied = 2.7")]
    lines.clear()
    rg.plot_audio_quality(rows, limits, tmp_path / "aq.png", None)  # no summary: the configured bars
    assert lines == [(2.8, "min_ovrl = 2.8"), (3.0, "min_p808 = 3")]


def test_audio_gate_figures_and_voices_in_the_summary(tmp_path):
    from workflow_scripts import report_gates as rg

    limits = {"min_ovrl": 2.8, "min_p808": 3.3, "min_similarity": 0.8}
    rows = [{"keep": "1", "ovrl": "3.2", "p808": "3.6", "speaker_sim": "0.91", "voice": "voice_1",
             "map_x": "0.1", "map_y": "0.0"},
            {"keep": "0", "ovrl": "2.1", "p808": "2.9", "speaker_sim": "0.55", "voice": "voice_2",
             "map_x": "-0.4", "map_y": "0.2"}]
    rg.plot_audio_quality(rows, limits, tmp_path / "aq.png")
    rg.plot_speakers(rows, limits, tmp_path / "sp.png")
    off = [{"keep": "1", "ovrl": "", "p808": "", "speaker_sim": "", "voice": "", "map_x": "", "map_y": ""}]
    rg.plot_audio_quality(off, limits, tmp_path / "aq0.png")
    rg.plot_speakers(off, limits, tmp_path / "sp0.png")
    for name in ("aq", "sp", "aq0", "sp0"):
        assert (tmp_path / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    tsum = {"speakers": {"recordings": {"talk": {"voices_found": 2, "voices": {
        "voice_1": {"clips": 9, "seconds": 60.0, "kept_seconds": 58.0},
        "voice_2": {"clips": 3, "seconds": 14.0, "kept_seconds": 0.0}}}}}}
    rows = rp.run_summary({}, tsum, {})
    assert ("voices per recording", "talk", "2 found: voice_1 60 s (kept 58 s), voice_2 14 s (kept 0 s)") in rows


def test_review_page_html(tmp_path):
    t = tmp_path / "transcripts.tsv"
    t.write_text("clip\trecording\tspeaker\tkeep\tquality\tduration\treasons\ttext\tnormalised\toverride\n"
                 "r_1.wav\tr\ts\t1\t0.9000\t2.000\t\tok </script><b>x</b>\tok </script><b>x</b>\t\n"
                 "r_2.wav\tr\ts\t0\t0.1000\t1.000\tlow_logprob:-2.00\tbad\tbad\t\n", encoding="utf-8")
    (tmp_path / "m.csv").write_text("r_1.wav|ok|2.000|s|0.9000\n")
    (tmp_path / "rej.tsv").write_text("clip\trecording\treasons\ttext\tnormalised\tquality\nr_2.wav\tr\tlow_logprob\tbad\tbad\t0.1\n")
    rows = review_rows(t, tmp_path / "m.csv", tmp_path / "rej.tsv")
    assert [r["clip"] for r in rows] == ["r_2.wav", "r_1.wav"]  # worst first
    assert rows[0]["src"] == "../processed/r/clips/r_2.wav"
    page = render(rows, "out/overrides.tsv")
    assert page.count("</script>") == 2  # the transcript cannot close the data element
    data = page.split('<script id="data" type="application/json">', 1)[1].split("</script>", 1)[0]
    assert json.loads(data)["clips"][1]["text"] == "ok </script><b>x</b>"
    (tmp_path / "m.csv").write_text("")
    with pytest.raises(StageError, match="disagrees"):
        review_rows(t, tmp_path / "m.csv", tmp_path / "rej.tsv")
