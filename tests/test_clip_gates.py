"""The audio gates' decisions (DNSMOS thresholds, target voice) on inputs with known answers,
and their path through aggregate_metadata into the dataset tables."""
from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests import speech_fixtures as sfx  # noqa: E402
from workflow_scripts import aggregate_metadata as agg  # noqa: E402
from workflow_scripts import clip_gates as cg  # noqa: E402


def voices(n_a: int, n_b: int, seed: int = 0, spread: float = 0.25) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings of two voices (rows A then B) around two orthogonal, non-negative centres."""
    rng = np.random.default_rng(seed)
    a, b = np.zeros(256), np.zeros(256)
    a[:128], b[128:] = 1.0, 1.0
    rows = [c + spread * rng.random(256) for c in [a] * n_a + [b] * n_b]
    e = np.array(rows, dtype=np.float32)
    return e / np.linalg.norm(e, axis=1, keepdims=True), np.array([True] * n_a + [False] * n_b)


def test_quality_reasons_follow_the_thresholds():
    q = sfx.config_section("quality")
    good = {"ovrl": 3.2, "sig": 3.5, "bak": 4.0, "p808": 3.8}
    assert cg.quality_reasons(good, q) == []
    assert cg.quality_reasons({**good, "ovrl": 2.41}, q) == ["low_dnsmos_ovrl:2.41<2.8"]
    assert cg.quality_reasons({**good, "ovrl": 2.0, "p808": 2.9}, q) == ["low_dnsmos_ovrl:2.00<2.8",
                                                                         "low_dnsmos_p808:2.90<3"]
    assert cg.quality_reasons({**good, "p808": 3.16}, q) == []  # an ordinary recorded talk passes
    assert cg.quality_reasons({**good, "ovrl": 2.0}, {**q, "min_ovrl": None}) == []
    assert cg.quality_reasons({**good, "ovrl": 1.0}, {**q, "enabled": False}) == []
    assert cg.quality_reasons({"ovrl": None, "sig": None, "bak": None, "p808": None}, q) == ["no_dnsmos"]


def test_bars_follow_the_target_voice_s_own_recordings():
    q = sfx.config_section("quality")  # min_ovrl 2.8, relative_margin 0.3 under the lower quartile, floors 2.0 / 2.2
    clean = [{"ovrl": v, "p808": 3.6} for v in (3.2, 3.3, 3.1, 3.25, 3.15, 3.35, 3.4, 2.2)]
    assert cg.applied_bars(clean, q) == {"ovrl": 2.8, "p808": 3.0}  # recorded well: the fixed bars
    room = [{"ovrl": v, "p808": p} for v, p in ((2.8, 2.97), (2.7, 2.92), (2.75, 2.88), (2.66, 2.95), (2.1, 2.6))]
    # steady room noise: lower quartiles OVRL 2.66, P.808 2.88, less the margin
    assert cg.applied_bars(room, q) == {"ovrl": 2.36, "p808": 2.58}
    assert cg.applied_bars([{"ovrl": 2.95, "p808": 3.1}] * 3, q) == {"ovrl": 2.65, "p808": 2.8}
    bad = [{"ovrl": 1.6, "p808": 2.2}] * 4  # never under the floors
    assert cg.applied_bars(bad, q) == {"ovrl": 2.0, "p808": 2.2}
    assert cg.applied_bars(bad, {**q, "relative_margin": None}) == {"ovrl": 2.8, "p808": 3.0}
    assert cg.applied_bars(bad, {**q, "min_ovrl": 1.8, "min_p808": None}) == {"ovrl": 1.8, "p808": None}
    assert cg.applied_bars([], q) == {"ovrl": 2.8, "p808": 3.0}
    # a quieter, noisier take: 5 of 16 clips are the voice's own condition; 1 of 16 is an outlier
    take = [{"ovrl": 3.2, "p808": 3.5}] * 11 + [{"ovrl": 2.65, "p808": 2.85}] * 5
    assert cg.applied_bars(take, q) == {"ovrl": 2.35, "p808": 2.55}
    assert cg.applied_bars(take[:11] + take[-1:] + take[:4], q) == {"ovrl": 2.8, "p808": 3.0}
    assert cg.applied_bars(take, {**q, "relative_quantile": 0.5}) == {"ovrl": 2.8, "p808": 3.0}  # the median
    reasons = cg.quality_reasons({"ovrl": 2.6, "sig": 3.5, "bak": 3.0, "p808": 2.8}, q, cg.applied_bars(room, q))
    assert reasons == []
    assert cg.quality_reasons({"ovrl": 2.1, "sig": 3.5, "bak": 2.0, "p808": 2.5}, q,
                              cg.applied_bars(room, q)) == ["low_dnsmos_ovrl:2.10<2.36", "low_dnsmos_p808:2.50<2.58"]
    # a voice recorded in noise 10 dB under it (OVRL 2.2-2.6) keeps its clips, and is said to be noisy
    fan = [{"ovrl": 2.2 + 0.02 * i, "p808": 2.4 + 0.02 * i} for i in range(20)]
    assert cg.applied_bars(fan, q) == {"ovrl": 2.0, "p808": 2.2}
    assert cg.noisy_voice(cg.target_quantiles(fan, 0.25)) and not cg.noisy_voice(cg.target_quantiles(room, 0.25))


def test_a_noisy_home_recording_keeps_its_clips_and_not_its_worst(tmp_path):
    """The bars come from the target voice's clips only: the other voice's poor clips (a
    crowd, a phone line) do not lower them, and on a clean dataset they stay fixed."""
    e, truth = voices(8, 4)
    room = [{"ovrl": 2.65 + 0.02 * i, "sig": 3.5, "bak": 3.0, "p808": 2.9} for i in range(8)]
    room[3] = {**room[3], "ovrl": 2.05, "bak": 1.8}  # a burst of noise under one phrase
    other = [{"ovrl": 1.5, "sig": 2.5, "bak": 1.5, "p808": 2.5}] * 4
    recs = [write_recording(tmp_path, "a", 12, room + other, e)]
    scores = {"a": cg.read_scores(tmp_path / "a" / "scores.jsonl", tmp_path / "a" / "embeddings.npy")}
    gates = agg.AudioGates(scores, sfx.config_section("quality"), sfx.config_section("speaker_gate"), None)
    result = agg.aggregate(recs, sfx.transcription_config()["gate"], "en", None, None, gates)
    by = {r["clip"]: r for r in result["rows"]}
    kept = {c for c, r in by.items() if r["keep"]}
    assert kept == {f"a_{i:05d}.wav" for i in range(8) if i != 3}
    assert by["a_00003.wav"]["reasons"] == ["low_dnsmos_ovrl:2.05<2.37"]
    # the other voice: the DNSMOS reasons first, then the speaker's
    assert by["a_00010.wav"]["reasons"][0] == "low_dnsmos_ovrl:1.50<2.37"
    assert by["a_00010.wav"]["reasons"][-1].startswith("other_speaker:sim=")
    q = result["summary"]["quality"]
    assert q["min_ovrl_applied"] == 2.37 and q["min_p808_applied"] == 2.6 and q["target_clips"] == 8
    assert not q["noisy_voice"]
    assert q["min_ovrl"] == 2.8 and q["target_quantile_p808"] == 2.9


def test_dominant_voice_wins_without_a_reference():
    e, truth = voices(12, 5)
    d = cg.decide_speakers(e, sfx.config_section("speaker_gate"), None)
    target = np.array([not r for r in d.reasons])
    assert np.array_equal(target, truth), d.similarity
    assert d.mode == "dominant" and d.target_voice == "voice_1"
    assert set(d.voice[:12]) == {"voice_1"} and set(d.voice[12:]) == {"voice_2"}
    assert all(r[0].startswith("other_speaker:sim=") for r, t in zip(d.reasons, truth) if not t)


def test_reference_picks_the_smaller_voice():
    e, truth = voices(12, 5)
    ref = e[12:].mean(axis=0)
    d = cg.decide_speakers(e, sfx.config_section("speaker_gate"), ref / np.linalg.norm(ref))
    target = np.array([not r for r in d.reasons])
    assert np.array_equal(target, ~truth) and d.mode == "reference" and d.target_voice == "voice_2"


def parts_of(*rows: tuple[np.ndarray, float]) -> cg.ClipParts:
    return cg.ClipParts(np.stack([e for e, _ in rows]).astype(np.float32), np.array([s for _, s in rows]))


def test_a_joined_clip_is_the_target_only_if_every_part_is():
    e, _ = voices(12, 5)
    a_part, b_part = e[0], e[12]
    parts = [None] * len(e)
    parts[1] = parts_of((a_part, 2.0), (e[2], 3.0))  # two phrases of the target
    parts[3] = parts_of((a_part, 3.0), (b_part, 2.0))  # the target, then a turn of the other voice
    parts[4] = parts_of((a_part, 3.0), (np.zeros(256, np.float32), 2.0))  # a part without voice is not judged
    parts[5] = parts_of((a_part, 4.0), (b_part, 0.5))  # the target, then a "Yeah." of the other voice
    d = cg.decide_speakers(e, sfx.config_section("speaker_gate"), None, parts)
    assert d.reasons[1] == [] and d.reasons[4] == []
    assert d.reasons[3][0].startswith("other_speaker:part_sim=") and d.reasons[3][0].endswith("<0.6")
    assert d.similarity[3] >= 0.8  # the whole clip passes: only its part fails
    assert d.voice[3] == "voice_1"  # the voices are the whole clips' clusters
    assert d.reasons[5][0].startswith("other_speaker:part_sim=")
    plain = cg.decide_speakers(e, sfx.config_section("speaker_gate"), None)
    assert plain.reasons[3] == [] and plain.reasons[5] == []
    # (the figures move a little: the target is found from the phrases, parts included)
    assert [bool(r) for i, r in enumerate(d.reasons) if i not in (3, 5)] == \
        [bool(r) for i, r in enumerate(plain.reasons) if i not in (3, 5)]
    assert d.reasons[5][0].endswith("<0.45")  # the short part has its own, lower bar
    # under no bar, the short part is still nearer to the other voice (its own clips) than to the target
    lenient = cg.decide_speakers(e, sfx.config_section("speaker_gate", min_short_part_similarity=0.0), None, parts)
    assert "other_voice=" in lenient.reasons[5][0] and lenient.reasons[3] == d.reasons[3]
    # with no other voice in the recordings, a short part is not judged (its embedding alone
    # says too little); a long one still is
    alone = cg.decide_speakers(e[:12], sfx.config_section("speaker_gate"), None, parts[:12])
    assert alone.reasons[5] == [] and alone.reasons[3][0].startswith("other_speaker:part_sim=")


def test_a_long_part_nearer_to_another_voice_is_hers():
    """Another woman on the same studio chain: her 1.4 s answer scores 0.68 to the target,
    over the 0.6 part bar, and 0.9 to her own voice. Found as another voice, she is told
    apart by the nearer voice; the target's own 1.4 s phrase (0.9 to the target, 0.54 to her)
    passes; with no other voice found, the part bar alone judges, as before."""
    def unit(*pairs):
        v = np.zeros(256, np.float32)
        for i, x in pairs:
            v[i] = x
        return v / np.linalg.norm(v)

    target = unit((0, 1.0))
    her = unit((0, 0.6), (1, 0.8))  # 0.6 to the target
    answer = unit((0, 0.68), (1, 0.733))  # 0.68 to the target, ~0.995 to her
    own = unit((0, 0.9), (2, 0.436))  # the target's own phrase: 0.9 to the target, 0.54 to her
    cfg = sfx.config_section("speaker_gate")
    part = parts_of((own, 1.4), (answer, 1.4))
    verdicts = cg.part_verdicts(part, target, her[None, :], cfg)
    assert verdicts[0] == "" and verdicts[1].startswith("other_speaker:part_sim=0.68,other_voice=")
    assert cg.part_verdicts(part, target, np.zeros((0, 256), np.float32), cfg) == ["", ""]


def test_wordless_clips_are_no_voice_to_judge_short_parts_against():
    """A podcast's intro and outro music: two clips the speaker encoder takes for a voice, in
    which Whisper heard no words. They are no other voice, so the speaker's short parts (under
    the music bed) are not judged; a second speaker with words still is one."""
    e, _ = voices(12, 5)
    parts = [None] * len(e)
    parts[5] = parts_of((e[0], 4.0), (e[12], 0.5))  # a short part as near to the "music" as a "Yeah."
    durations = [6.0] * len(e)
    heard = cg.decide_speakers(e, sfx.config_section("speaker_gate"), None, parts, None, durations, [True] * 17)
    assert heard.reasons[5] and len(heard.others) == 1
    music = cg.decide_speakers(e, sfx.config_section("speaker_gate"), None, parts, None, durations,
                               [True] * 12 + [False] * 5)
    assert music.reasons[5] == [] and len(music.others) == 0
    # the music clips themselves are still judged (and not the target)
    assert all(r and r[0].startswith("other_speaker:sim=") for r in music.reasons[12:])
    # no worded row at all: the voices are found from every row, as without transcripts
    none = cg.decide_speakers(e, sfx.config_section("speaker_gate"), None, parts, None, durations, [False] * 17)
    assert none.reasons == heard.reasons
    assert list(cg.voice_rows(np.array([True, False, True]), [True, True, False])) == [0]
    # nor are clips under the OVRL floor (a take near 0 dB SNR), nor the wordless
    scores = [{"ovrl": 2.6}, {"ovrl": 1.4}, None, {"ovrl": None}, {"ovrl": 3.0}]
    assert cg.judged_rows([False, False, False, False, True], scores, 2.0) == [True, False, True, True, False]
    assert cg.judged_rows([False] * 5, scores, None) == [True] * 5


def test_the_target_is_found_from_phrases_not_from_joined_clips():
    """A voice joined into most of the target's clips: whole-clip embeddings lean towards it,
    the target's phrases (single clips and the joined clips' long parts) do not."""
    e, _ = voices(10, 10, spread=0.1)
    target, other = e[:10], e[10:]
    # eight clips whose whole embedding mixes both voices, each a target phrase then the other
    # voice's turn; two clips of the target alone
    mixed = target[:8] + 1.5 * other[:8]
    mixed /= np.linalg.norm(mixed, axis=1, keepdims=True)
    clips = np.vstack([mixed, target[8:]])
    parts = [parts_of((target[k], 3.0), (other[k], 2.5)) for k in range(8)] + [None, None]
    d = cg.decide_speakers(clips, sfx.config_section("speaker_gate"), None, parts)
    assert all(r and r[0].startswith("other_speaker:") for r in d.reasons[:8]), d.reasons
    assert d.reasons[8:] == [[], []]
    # from the whole clips, the mixture is the largest voice: it passes, the target's own clips do not
    whole = cg.decide_speakers(clips, sfx.config_section("speaker_gate"), None)
    assert whole.reasons[:8] == [[]] * 8 and all(r for r in whole.reasons[8:]), whole.reasons
    phrases = cg.phrase_embeddings(clips, parts)
    assert len(phrases) == 8 * 2 + 2


def test_a_turn_of_another_voice_inside_a_clip_fails_on_its_windows():
    e, _ = voices(12, 5)
    windows = [None] * len(e)
    windows[0] = np.stack([e[1], e[2], e[3], e[4]])  # the target throughout
    windows[1] = np.stack([e[1], e[2], e[12], e[13]])  # two windows of the other voice
    windows[2] = np.stack([e[1], e[2], e[3], e[12]])  # one odd window is not a turn
    d = cg.decide_speakers(e, sfx.config_section("speaker_gate"), None, None, windows)
    assert d.reasons[0] == [] and d.reasons[2] == []
    assert d.reasons[1][0].startswith("other_speaker:window_sim=") and d.reasons[1][0].endswith("<0.6")
    off = cg.decide_speakers(e, sfx.config_section("speaker_gate", min_window_similarity=0.0), None, None, windows)
    assert off.reasons[1] == []


def latched_windows(seed: int = 1) -> tuple[np.ndarray, list[np.ndarray]]:
    """Ten clips of a telephone conversation with latched turns: every clip holds both voices
    (A, the larger share, then B; no pause to cut at), so each clip's embedding is a mixture,
    while each of its speaker-encoder windows is one voice's."""
    e, _ = voices(60, 40, seed=seed, spread=0.4)
    a, b = e[:60], e[60:]
    windows = [np.vstack([a[6 * k:6 * k + 6], b[4 * k:4 * k + 4]]) for k in range(10)]
    clips = np.array([w.mean(axis=0) for w in windows])
    return clips / np.linalg.norm(clips, axis=1, keepdims=True), windows


def test_latched_turns_of_another_voice_are_found_from_the_windows():
    clips, windows = latched_windows()
    cfg = sfx.config_section("speaker_gate")
    d = cg.decide_speakers(clips, cfg, None, None, windows)
    assert all(r == ["other_speaker:turn=4/10"] for r in d.reasons), d.reasons
    # without the windows every clip passes: one mixed voice, no part to judge
    assert cg.decide_speakers(clips, cfg, None).reasons == [[]] * 10
    # a clip of the target's windows alone passes, as does one odd window of the other voice
    own = [np.vstack([w[:6], w[:3]]) for w in windows[:2]]
    odd = [np.vstack([w[:5], w[6:7], w[:3]]) for w in windows[2:4]]
    d = cg.decide_speakers(np.vstack([clips, clips[:4]]), cfg, None, None, windows + own + odd)
    assert d.reasons[10:] == [[]] * 4, d.reasons[10:]
    # a clip of the other voice's windows alone is the whole-clip check's: a second window
    # voice may be one speaker in another room, whose clips hold no window of the first
    theirs = [np.vstack([w[6:], w[6:]]) for w in windows[:2]]
    d = cg.decide_speakers(np.vstack([clips, clips[:2]]), cfg, None, None, windows + theirs)
    assert d.reasons[10:] == [[]] * 2, d.reasons[10:]


def test_one_voice_whose_windows_split_is_not_two():
    """One speaker whose windows form two clusters (a second take, a quieter room) alike to one
    another over WINDOW_VOICE_MAX_SIMILARITY; a minority of odd windows is no voice either."""
    rng = np.random.default_rng(3)
    centre = np.zeros(256)
    centre[:128] = 1.0
    shifted = centre.copy()
    shifted[128:192] = 0.9
    rows = [c + 0.25 * rng.random(256) for c in [centre] * 60 + [shifted] * 40]
    w = np.array(rows, dtype=np.float32)
    w /= np.linalg.norm(w, axis=1, keepdims=True)
    a, b = cg.mean_direction(w[:60]), cg.mean_direction(w[60:])
    assert 0.86 < float(a @ b) < 0.9  # as one speaker's window clusters on real speech
    # clustered finely enough to split them, they are still one voice
    mine, others = cg.window_voices([w], a, 0.93)
    assert mine is None and len(others) == 0
    two, _ = voices(95, 5, spread=0.4)  # 5 % of the windows another's: not a voice
    mine, others = cg.window_voices([two], cg.mean_direction(two[:95]), 0.72)
    assert mine is None and len(others) == 0
    assert cg.turn_reasons(two[:4], None, others) == []


def test_no_voice_rows_and_the_gate_switched_off():
    e, _ = voices(4, 0)
    e = np.vstack([e, np.zeros((1, 256), np.float32)])
    d = cg.decide_speakers(e, sfx.config_section("speaker_gate"), None)
    assert d.reasons[-1] == ["no_voice"] and d.voice[-1] == "" and all(not r for r in d.reasons[:-1])
    off = cg.decide_speakers(e, sfx.config_section("speaker_gate", enabled=False), None)
    assert all(not r for r in off.reasons) and off.voice[:4] == ["voice_1"] * 4  # still reported


def test_voices_by_recording_counts_seconds_kept():
    rows = [{"recording": "a", "voice": "voice_1", "duration": 4.0, "keep": True}] * 3 + \
           [{"recording": "a", "voice": "voice_2", "duration": 6.0, "keep": False}] * 2 + \
           [{"recording": "a", "voice": "voice_3", "duration": 9.0, "keep": False}]  # one stray clip
    v = cg.voices_by_recording(rows)["a"]
    assert v["voices_found"] == 2
    assert v["voices"]["voice_1"] == {"clips": 3, "seconds": 12.0, "kept_seconds": 12.0}
    assert v["voices"]["voice_2"]["kept_seconds"] == 0.0


def test_embedding_map_is_deterministic_and_separates_voices():
    e, truth = voices(10, 6, seed=3)
    m1, m2 = cg.embedding_map(e), cg.embedding_map(e.copy())
    assert np.array_equal(m1, m2) and m1.shape == (16, 2)
    assert (m1[truth, 0].mean() > 0) != (m1[~truth, 0].mean() > 0)  # the first axis splits them


def write_recording(root: Path, rec: str, n: int, dnsmos: list[dict], emb: np.ndarray) -> tuple:
    clips = root / rec / "clips"
    clips.mkdir(parents=True)
    records = []
    with open(root / rec / "transcripts.jsonl", "w", encoding="utf-8") as fh:
        for i in range(n):
            name = f"{rec}_{i:05d}.wav"
            (clips / name).write_bytes(b"")
            record = {"clip": name, "text": "This is a clean sentence of speech.", "duration_s": 2.5,
                      "language": "en", "language_probability": 1.0, "avg_logprob": -0.2,
                      "no_speech_prob": 0.01, "compression_ratio": 1.2, "words": []}
            fh.write(json.dumps(record) + "\n")
            records.append({"clip": name, "duration_s": 2.5, "dnsmos": dnsmos[i], "voiced": bool(np.any(emb[i]))})
    with open(root / rec / "scores.jsonl", "w", encoding="utf-8") as fh:
        fh.writelines(json.dumps(r) + "\n" for r in records)
    np.save(root / rec / "embeddings.npy", emb.astype(np.float32))
    return rec, str(root / rec / "transcripts.jsonl"), str(clips), "spk", "en"


def test_aggregate_applies_both_gates_and_overrides_win(tmp_path):
    e, truth = voices(8, 4)
    good = {"ovrl": 3.2, "sig": 3.5, "bak": 4.0, "p808": 3.8}
    dn = [good] * 12
    dn[1] = {**good, "ovrl": 2.2}
    recs = [write_recording(tmp_path, "a", 6, dn[:6], e[:6]), write_recording(tmp_path, "b", 6, dn[6:], e[6:])]
    scores = {r: cg.read_scores(tmp_path / r / "scores.jsonl", tmp_path / r / "embeddings.npy") for r in ("a", "b")}
    gates = agg.AudioGates(scores, sfx.config_section("quality"), sfx.config_section("speaker_gate"), None)
    gate = sfx.transcription_config()["gate"]
    overrides = {"b_00005.wav": {"action": "accept", "text": "", "line": 2}}
    result = agg.aggregate(recs, gate, "en", overrides, "ov.tsv", gates)
    by = {r["clip"]: r for r in result["rows"]}
    assert by["a_00001.wav"]["reasons"] == ["low_dnsmos_ovrl:2.20<2.8"] and not by["a_00001.wav"]["keep"]
    for i in range(2, 6):  # recording b's last four clips are the other voice
        r = by[f"b_{i:05d}.wav"]
        assert r["voice"] == "voice_2" and r["reasons"][0].startswith("other_speaker:sim=")
    assert by["b_00005.wav"]["keep"] and by["b_00005.wav"]["override"] == "accept"
    assert not by["b_00004.wav"]["keep"]
    kept = {c for c, r in by.items() if r["keep"]}
    assert kept == {f"a_{i:05d}.wav" for i in (0, 2, 3, 4, 5)} | {"b_00000.wav", "b_00001.wav", "b_00005.wav"}
    spk = result["summary"]["speakers"]
    assert spk["mode"] == "dominant" and spk["recordings"]["b"]["voices_found"] == 2
    assert spk["recordings"]["a"]["voices_found"] == 1
    out = {k: tmp_path / f"{k}.out" for k in ("metadata", "rejected", "summary", "review")}
    agg.write_outputs(result, out["metadata"], out["rejected"], out["summary"], out["review"])
    with open(out["review"], newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    assert list(rows[0]) == agg.REVIEW_COLUMNS
    row = next(r for r in rows if r["clip"] == "a_00001.wav")
    assert row["ovrl"] == "2.200" and row["voice"] == "voice_1" and float(row["speaker_sim"]) > 0.8
    assert all(r["map_x"] for r in rows)
    rejected = out["rejected"].read_text("utf-8")
    assert "low_dnsmos_ovrl:2.20<2.8" in rejected and "other_speaker:sim=" in rejected
    assert "b_00005.wav" in out["metadata"].read_text("utf-8")


def test_scores_that_miss_a_clip_are_an_error(tmp_path):
    e, _ = voices(3, 0)
    good = {"ovrl": 3.2, "sig": 3.5, "bak": 4.0, "p808": 3.8}
    rec = write_recording(tmp_path, "a", 3, [good] * 3, e)
    lines = (tmp_path / "a" / "scores.jsonl").read_text().splitlines()
    (tmp_path / "a" / "scores.jsonl").write_text("\n".join(lines[:2]) + "\n")
    np.save(tmp_path / "a" / "embeddings.npy", e[:2])
    scores = {"a": cg.read_scores(tmp_path / "a" / "scores.jsonl", tmp_path / "a" / "embeddings.npy")}
    gates = agg.AudioGates(scores, sfx.config_section("quality"), sfx.config_section("speaker_gate"), None)
    with pytest.raises(agg.StageError, match="a_00002.wav has no scores"):
        agg.aggregate([rec], sfx.transcription_config()["gate"], "en", None, None, gates)


def test_speaker_reference_decodes_any_file_name(tmp_path):
    import soundfile as sf

    from workflow_scripts import speaker_reference as sr

    tone = (0.3 * np.sin(2 * np.pi * 220 * np.arange(22050) / 22050)).astype(np.float32)
    path = tmp_path / "-ref $(echo x) ü.wav"  # an option-like, shell-like, unicode name
    sf.write(str(path), tone, 22050, subtype="PCM_16")
    audio = sr.decode(str(path))
    assert abs(len(audio) - sr.SR) < 50 and np.abs(audio).max() > 0.25
    (tmp_path / "text.wav").write_text("not audio")
    with pytest.raises(agg.StageError, match="text.wav: speaker reference cannot be decoded"):
        sr.decode(str(tmp_path / "text.wav"))
