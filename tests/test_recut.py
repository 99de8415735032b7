"""A joined clip rejected for another voice's part, cut again at its joins: which runs of parts
are kept (known answers on constructed embeddings), and the path through aggregate_metadata
(a clip of two phrases around another voice's "Yeah.", real WAV and loudness)."""
from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests import speech_fixtures as sfx  # noqa: E402
from workflow_scripts import aggregate_metadata as agg  # noqa: E402
from workflow_scripts import clip_gates as cg  # noqa: E402
from workflow_scripts import recut  # noqa: E402
from workflow_scripts.loudness import integrated_loudness  # noqa: E402

RATE = 22050


def two_voices(n_a: int, n_b: int, seed: int = 0) -> np.ndarray:
    """Rows of voice A then voice B, around two orthogonal centres (cosine ~0.95 within a voice)."""
    rng = np.random.default_rng(seed)
    a, b = np.zeros(256), np.zeros(256)
    a[:128], b[128:] = 1.0, 1.0
    e = np.array([c + 0.25 * rng.random(256) for c in [a] * n_a + [b] * n_b], dtype=np.float32)
    return e / np.linalg.norm(e, axis=1, keepdims=True)


def test_runs_of_the_target_s_parts_are_kept_never_the_whole_clip():
    e = two_voices(4, 2)
    target = e[:4].mean(axis=0) / np.linalg.norm(e[:4].mean(axis=0))
    spans = recut.part_spans(9.0, [2.0, 3.0, 3.1, 6.0])  # the part 3.0-3.1 is too short to be embedded
    assert spans == [(0.0, 2.0), (2.0, 3.0), (3.0, 3.1), (3.1, 6.0), (6.0, 9.0)]
    parts = cg.ClipParts(np.stack([e[0], e[4], e[1], e[2]]), np.array([2.0, 1.0, 2.9, 3.0]))
    runs = recut.target_runs(spans, parts, ["", "other_speaker:part_sim=0.1<0.6", "", ""], target, 0.8)
    # the other voice's part and the unembedded sliver both end a run
    assert [(r.first, r.last, r.start, r.end) for r in runs] == [(0, 0, 0.0, 2.0), (3, 4, 3.1, 9.0)]
    assert all(r.similarity >= 0.8 and abs(np.linalg.norm(r.embedding) - 1) < 1e-5 for r in runs)
    # every embedded part passing, the sliver alone splits the clip
    assert [(r.first, r.last) for r in recut.target_runs(spans, parts, ["", "", "", ""], target, 0.8)] == [(0, 1), (3, 4)]
    # and a clip whose parts all pass is not cut again (it was judged as it is)
    whole = recut.target_runs(recut.part_spans(4.0, [2.0]), cg.ClipParts(e[:2], np.array([2.0, 2.0])), ["", ""],
                              target, 0.8)
    assert whole == []
    # a run under the clip bar, and parts that do not match the spans, are not kept
    assert recut.target_runs(spans, parts, ["", "", "", ""], e[4], 0.8) == []
    assert recut.target_runs(spans, cg.ClipParts(e[:3], np.array([2.0, 1.0, 2.9])), ["", "", ""], target, 0.8) == []


def test_parts_matched_to_spans_around_the_embedding_length():
    """clips.tsv rounds a join to 1 ms and score_clips counts samples: a 0.24 s sliver was not
    embedded, and the clip's five embedded parts still match its six spans."""
    spans = recut.part_spans(8.4, [0.24, 0.84, 2.90, 4.68, 5.64])
    seconds = np.array([0.6, 2.06, 1.78, 0.96, 2.764])
    assert recut.embedded_spans(spans, seconds) == [1, 2, 3, 4, 5]
    # a sliver that was embedded matches too
    assert recut.embedded_spans(spans, np.array([0.24, 0.6, 2.06, 1.78, 0.96, 2.764])) == [0, 1, 2, 3, 4, 5]
    # a span long enough to be embedded but without a part, or a part left over: no match
    assert recut.embedded_spans(spans, seconds[1:]) is None
    assert recut.embedded_spans(spans[:3], seconds) is None


def phrase(seconds: float, rng: np.random.Generator, f0: float) -> np.ndarray:
    """A speech-like burst: a harmonic tone under a 4 Hz syllable envelope."""
    t = np.arange(int(seconds * RATE)) / RATE
    tone = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 6))
    env = 0.6 + 0.4 * np.sin(2 * np.pi * 4 * t) ** 2
    return (0.1 * tone * env * np.hanning(len(t)) ** 0.1 + 0.002 * rng.standard_normal(len(t))).astype(np.float32)


def conversation_clip(path: Path) -> tuple[float, list[float], list[dict]]:
    """A joined clip: a phrase of the target, another voice's "Yeah.", a second phrase of the
    target, silence between them (joined at the silences' midpoints). Returns its length,
    joins and words."""
    rng = np.random.default_rng(3)
    gap = lambda s: (0.002 * rng.standard_normal(int(s * RATE))).astype(np.float32)  # noqa: E731
    audio = np.concatenate([gap(0.25), phrase(2.0, rng, 180), gap(0.6), phrase(0.6, rng, 110), gap(0.6),
                            phrase(2.5, rng, 180), gap(0.25)])
    sf.write(str(path), audio, RATE, subtype="PCM_16")

    def words(text: str, start: float, end: float) -> list[dict]:
        ws = text.split()
        step = (end - start) / len(ws)
        return [{"word": " " + w, "start": round(start + i * step, 3), "end": round(start + (i + 1) * step - 0.02, 3),
                 "probability": 0.95} for i, w in enumerate(ws)]

    ws = words("Please hold the line.", 0.3, 2.2) + words("Yeah.", 2.9, 3.4) + words("Your call is important to us.", 4.1, 6.5)
    return len(audio) / RATE, [2.55, 3.75], ws


def write_recording(rec_dir: Path, table: list[list[str]], records: list[dict], scores: list[dict]) -> None:
    """A recording's clips/clips.tsv (rows of ``table``), transcripts.jsonl and scores.jsonl."""
    with open(rec_dir / "clips" / "clips.tsv", "w", encoding="utf-8") as fh:
        fh.write("\t".join(["clip", "start_s", "end_s", "duration_s", "lufs_before", "lufs_after", "segments",
                            "joins_s"]) + "\n")
        fh.writelines("\t".join(row) + "\n" for row in table)
    (rec_dir / "transcripts.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    (rec_dir / "scores.jsonl").write_text("".join(json.dumps(r) + "\n" for r in scores), encoding="utf-8")


def write_conversation(root: Path) -> tuple:
    """Recording ``a``: clip 0 joined as above, clips 1-7 the target's, 8-11 the other voice's."""
    e = two_voices(8, 4)
    clips = root / "a" / "clips"
    clips.mkdir(parents=True)
    duration, joins, words = conversation_clip(clips / "a_00000.wav")
    good = {"ovrl": 3.2, "sig": 3.5, "bak": 4.0, "p808": 3.8}
    records, scores, table = [], [], []
    for i in range(12):
        name = f"a_{i:05d}.wav"
        text = "This is a clean sentence of speech."
        rec = {"clip": name, "text": text, "duration_s": 2.5, "language": "en", "language_probability": 1.0,
               "avg_logprob": -0.2, "no_speech_prob": 0.01, "compression_ratio": 1.2, "words": [],
               "edge_overlap_s": [0.0, 0.0], "edge_floor_db": [0.0, 0.0]}
        score = {"clip": name, "duration_s": 2.5, "dnsmos": good, "voiced": True}
        joins_s = ""
        if i == 0:
            rec.update(text="".join(w["word"] for w in words).strip(), duration_s=round(duration, 3), words=words)
            spans = recut.part_spans(duration, joins)
            score.update(duration_s=round(duration, 3), part_embeddings=[e[1].tolist(), e[8].tolist(), e[2].tolist()],
                         part_seconds=[round(b - a, 3) for a, b in spans])
            joins_s = ";".join(f"{j:.3f}" for j in joins)
        else:
            (clips / name).write_bytes(b"")
        records.append(rec)
        scores.append(score)
        table.append([name, f"{10.0 * i:.3f}", f"{10.0 * i + 2.5:.3f}", "2.500", "-23.0", "-23.0", "seg", joins_s])
    write_recording(root / "a", table, records, scores)
    emb = e.copy()
    emb[0] = (e[1] * 2.55 + e[8] * 1.2 + e[2] * 3.05) / np.linalg.norm(e[1] * 2.55 + e[8] * 1.2 + e[2] * 3.05)
    np.save(root / "a" / "embeddings.npy", emb)
    return "a", str(root / "a" / "transcripts.jsonl"), str(clips), "spk", "en"


def run_aggregate(tmp_path: Path, overrides: dict | None = None, **recut_cfg) -> dict:
    rec = write_conversation(tmp_path)
    scores = {"a": cg.read_scores(tmp_path / "a" / "scores.jsonl", tmp_path / "a" / "embeddings.npy")}
    gates = agg.AudioGates(scores, sfx.config_section("quality"), sfx.config_section("speaker_gate"), None)
    params = recut.RecutParams.from_config({**sfx.config_section("preprocess"), "enabled": True, **recut_cfg})
    return agg.aggregate([rec], sfx.transcription_config()["gate"], "en", overrides, None, gates, params)


def test_the_target_s_phrases_of_a_rejected_clip_become_clips(tmp_path):
    result = run_aggregate(tmp_path)
    by = {r["clip"]: r for r in result["rows"]}
    source = by["a_00000.wav"]
    assert not source["keep"] and source["reasons"][0].startswith("other_speaker:part_sim=")
    first, second = by["a_00000-1.wav"], by["a_00000-3.wav"]
    assert first["keep"] and first["text"] == "Please hold the line." and first["cut_from"] == "a_00000.wav"
    assert second["keep"] and second["text"] == "Your call is important to us."
    # cut at the joins, trimmed to the speech plus pad_s (0.25 s): 0-2.5 s and 3.8-6.8 s of the clip
    assert abs(first["duration"] - 2.5) < 0.03 and abs(second["duration"] - 3.0) < 0.03
    assert abs(second["start_s"] - 3.8) < 0.03 and abs(second["end_s"] - 6.8) < 0.03
    assert "a_00000-2.wav" not in by  # the other voice's part
    assert result["summary"]["speakers"]["recut"] == {"clips": 2, "seconds": round(first["duration"] + second["duration"], 3),
                                                       "source_clips": 1}
    out = {k: tmp_path / f"{k}.out" for k in ("metadata", "rejected", "summary", "review")}
    agg.write_outputs(result, out["metadata"], out["rejected"], out["summary"], out["review"], tmp_path / "recut")
    metadata = out["metadata"].read_text("utf-8")
    assert "a_00000-1.wav|Please hold the line.|" in metadata and "a_00000.wav|" not in metadata
    assert "a_00000.wav" in out["rejected"].read_text("utf-8")
    with open(out["review"], newline="", encoding="utf-8") as fh:
        review = {r["clip"]: r for r in csv.DictReader(fh, delimiter="\t")}
    assert review["a_00000-3.wav"]["cut_from"] == "a_00000.wav" and review["a_00001.wav"]["cut_from"] == ""
    with open(tmp_path / "recut" / "clips.tsv", newline="", encoding="utf-8") as fh:
        table = list(csv.DictReader(fh, delimiter="\t"))
    assert [r["clip"] for r in table] == ["a_00000-1.wav", "a_00000-3.wav"]
    assert table[1]["cut_from"] == "a_00000.wav" and table[1]["start_s"] == f"{second['start_s']:.3f}"
    for name in ("a_00000-1.wav", "a_00000-3.wav"):
        x, rate = sf.read(str(tmp_path / "recut" / name))
        info = sf.info(str(tmp_path / "recut" / name))
        assert rate == RATE and info.subtype == "PCM_16" and info.channels == 1
        assert abs(integrated_loudness(x, rate) - sfx.config_section("preprocess")["target_lufs"]) <= 1.0


def test_recut_off_or_a_source_clip_kept_by_hand_leaves_no_recut_clip(tmp_path):
    off = run_aggregate(tmp_path / "off", enabled=False)
    assert not any(r.get("cut_from") for r in off["rows"])
    accepted = run_aggregate(tmp_path / "accepted", {"a_00000.wav": {"action": "accept", "text": "", "line": 2}})
    clips = {r["clip"] for r in accepted["rows"]}
    assert "a_00000.wav" in clips and not any(c.startswith("a_00000-") for c in clips)
    assert accepted["summary"]["speakers"]["recut"]["clips"] == 0
    # a run shorter than min_clip_s once trimmed is not a clip
    long_only = run_aggregate(tmp_path / "long", min_clip_s=2.8)
    assert [r["clip"] for r in long_only["rows"] if r.get("cut_from")] == ["a_00000-3.wav"]


def test_turn_cuts_fall_in_the_pause_nearest_the_target_s_windows():
    words = [{"word": w, "start": a, "end": b} for w, a, b in
             [(" Hello.", 0.2, 0.6), (" Hi.", 0.75, 1.0), (" Oh", 1.2, 1.4), (" yes.", 1.4, 1.8),
              (" Right", 2.5, 2.7), (" now.", 2.7, 3.0)]]
    # a run starting after the cut: the last pause of 0.1 s or more whose middle is in range,
    # cut 0.1 s before the word after it ("Oh")
    assert abs(recut.word_gap_cut(0.5, 1.5, words, after=True) - 1.1) < 1e-9
    # a run ending at the cut: the first such pause, cut 0.1 s after "Hello." but never past
    # the pause's middle (0.6-0.75 s)
    assert abs(recut.word_gap_cut(0.5, 1.5, words, after=False) - 0.675) < 1e-9
    # no pause in range (words back to back): no cut
    assert recut.word_gap_cut(1.3, 1.7, words, after=True) is None
    assert abs(recut.word_gap_cut(2.0, 2.3, words, after=False) - 1.9) < 1e-9
    # windows 0.8 s apart (middles 0.8, 1.6, ... 6.4): the target's (-1), the other voice's (1),
    # as near to both (0)
    spans = np.array([[0.8 * k, 0.8 * k + 1.6] for k in range(8)])
    sides = np.array([1, -1, -1, 0, -1, 1, -1, -1])
    words = [{"word": " w", "start": a, "end": b} for a, b in [(0.1, 1.0), (1.4, 2.6), (2.75, 5.0), (5.3, 6.9)]]
    # runs 1-2 (cut in 0.8-1.6 s and in 2.4-3.2 s) and 6-7 (cut in 4.8-5.6 s, on to the end);
    # window 4 alone is too short a run
    got = recut.turn_stretches(spans, sides, words, 8.0)
    assert [(i, j) for i, j, _, _ in got] == [(1, 2), (6, 7)]
    assert np.allclose([x for _, _, a, b in got for x in (a, b)], [1.3, 2.675, 5.2, 8.0])
    # with no pause at one of its cuts a run is not kept
    words[2]["start"] = 2.6
    assert [(i, j) for i, j, _, _ in recut.turn_stretches(spans, sides, words, 8.0)] == [(6, 7)]


def latched_recording(root: Path) -> tuple:
    """Recording ``t``: clip 0 a turn of the target then, 0.3 s later, a turn of the other voice
    (no pause segmentation would cut at: one part), seen in its speaker-encoder windows; clips
    1-7 the target's, 8-11 the other voice's, four windows each."""
    e = two_voices(40, 30, seed=5)
    a, b = e[:40], e[40:]
    clips = root / "t" / "clips"
    clips.mkdir(parents=True)
    rng = np.random.default_rng(4)
    audio = np.concatenate([np.zeros(int(0.25 * RATE), np.float32), phrase(2.55, rng, 180),
                            np.zeros(int(0.3 * RATE), np.float32), phrase(3.1, rng, 110),
                            np.zeros(int(0.3 * RATE), np.float32)])
    sf.write(str(clips / "t_00000.wav"), audio, RATE, subtype="PCM_16")
    duration = len(audio) / RATE
    words = [{"word": " " + w, "start": s, "end": s + 0.5, "probability": 0.95}
             for w, s in [("Please", 0.3), ("hold", 0.85), ("the", 1.4), ("line.", 2.0)]]
    words += [{"word": " " + w, "start": s, "end": s + 0.5, "probability": 0.95}
              for w, s in [("Yes,", 3.15), ("I", 3.7), ("will", 4.25), ("wait.", 4.8)]]
    good = {"ovrl": 3.2, "sig": 3.5, "bak": 4.0, "p808": 3.8}
    records, scores, table, emb = [], [], [], []
    for i in range(12):
        name = f"t_{i:05d}.wav"
        windows = (np.vstack([a[:3], b[:4]]) if i == 0 else a[3 + 4 * i:7 + 4 * i] if i < 8 else b[4 * (i - 7):4 * (i - 6)])
        spans = [[round(0.8 * k, 3), round(0.8 * k + 1.6, 3)] for k in range(len(windows))]
        rec = {"clip": name, "text": "This is a clean sentence of speech.", "duration_s": 2.5, "language": "en",
               "language_probability": 1.0, "avg_logprob": -0.2, "no_speech_prob": 0.01, "compression_ratio": 1.2,
               "words": [], "edge_overlap_s": [0.0, 0.0], "edge_floor_db": [0.0, 0.0]}
        if i == 0:
            rec.update(text="".join(w["word"] for w in words).strip(), duration_s=round(duration, 3), words=words)
        else:
            (clips / name).write_bytes(b"")
        records.append(rec)
        scores.append({"clip": name, "duration_s": rec["duration_s"], "dnsmos": good, "voiced": True,
                       "window_embeddings": windows.tolist(), "window_spans_s": spans})
        mean = windows.mean(axis=0)
        emb.append(mean / np.linalg.norm(mean))
        table.append([name, f"{10.0 * i:.3f}", f"{10.0 * i + rec['duration_s']:.3f}", f"{rec['duration_s']:.3f}",
                      "-23.0", "-23.0", "seg", ""])
    write_recording(root / "t", table, records, scores)
    np.save(root / "t" / "embeddings.npy", np.array(emb, dtype=np.float32))
    return "t", str(root / "t" / "transcripts.jsonl"), str(clips), "spk", "en"


def test_a_latched_turn_is_rejected_and_the_target_s_turn_cut_out_at_the_pause(tmp_path):
    rec = latched_recording(tmp_path)
    scores = {"t": cg.read_scores(tmp_path / "t" / "scores.jsonl", tmp_path / "t" / "embeddings.npy")}
    gates = agg.AudioGates(scores, sfx.config_section("quality"), sfx.config_section("speaker_gate"), None)
    params = recut.RecutParams.from_config({**sfx.config_section("preprocess"), "enabled": True})
    result = agg.aggregate([rec], sfx.transcription_config()["gate"], "en", None, None, gates, params)
    by = {r["clip"]: r for r in result["rows"]}
    # mostly the other voice's: the whole-clip check fails it first; its windows still show the turn
    assert not by["t_00000.wav"]["keep"] and by["t_00000.wav"]["reasons"][0].startswith("other_speaker:")
    assert all(by[f"t_{i:05d}.wav"]["keep"] for i in range(1, 8))
    assert result["summary"]["speakers"]["window_voices"] == 2
    mine = by["t_00000-w1.wav"]
    # windows 0-2 are hers; the pause 2.5-3.15 s lies between the middles of windows 2 and 3:
    # cut 0.1 s after "line.", her speech trimmed to it plus pad_s from the clip's start
    assert mine["keep"] and mine["text"] == "Please hold the line." and mine["cut_from"] == "t_00000.wav"
    assert abs(mine["start_s"] - 0.0) < 0.03 and abs(mine["end_s"] - 2.6) < 0.03
    # without the windows' spans (scores written before them) the clip is rejected, not cut
    for r in scores["t"].window_spans:
        scores["t"].window_spans[r] = None
    result = agg.aggregate([rec], sfx.transcription_config()["gate"], "en", None, None, gates, params)
    assert not any(r.get("cut_from") for r in result["rows"])
