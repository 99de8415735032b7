"""Window planning and the words each clip gets from the long-form decoding (no model)."""
import numpy as np
import pytest

from workflow_scripts.clip_words import assign_words, clip_record, compression_ratio, edge_floor_db, edge_overlap
from workflow_scripts.decode_windows import plan_blocks, plan_windows

SR = 16000


def test_windows_hold_consecutive_clips_and_fit():
    spans = [(1.0 + 3 * i, 3.0 + 3 * i) for i in range(20)]  # 2 s clips every 3 s
    windows = plan_windows(spans, max_s=28.0, lead_s=0.4)
    assert [i for w in windows for i in w.clips] == list(range(20))
    for w in windows:
        first, last = spans[w.clips[0]], spans[w.clips[-1]]
        assert last[1] - first[0] <= 28.0
        assert w.start <= first[0] and w.end >= last[1]
    for a, b in zip(windows, windows[1:]):
        assert a.end <= b.start  # a word is decoded once
        assert spans[a.clips[-1]][1] <= a.end and b.start <= spans[b.clips[0]][0]


def test_window_lead_stops_halfway_to_the_next_window():
    windows = plan_windows([(0.0, 20.0), (20.2, 30.0)], max_s=28.0, lead_s=0.4)
    assert len(windows) == 2 and windows[0].end == pytest.approx(20.1) and windows[1].start == pytest.approx(20.1)


def test_long_clip_gets_a_window_of_its_own():
    windows = plan_windows([(0.0, 2.0), (3.0, 45.0), (46.0, 48.0)], max_s=28.0)
    assert [w.clips for w in windows] == [(0,), (1,), (2,)]


def test_blocks_bound_the_audio_read_at_once():
    spans = [(10.0 * i, 10.0 * i + 8) for i in range(200)]
    blocks = plan_blocks(plan_windows(spans), block_s=600.0)
    assert all(b[-1].end - b[0].start <= 600.0 for b in blocks)
    assert sum(len(b) for b in blocks) == len(plan_windows(spans))


def W(word, start, end, p=0.9, seg=0):
    return {"word": word, "start": start, "end": end, "probability": p, "segment": seg}


def test_words_go_to_the_clip_holding_their_midpoint():
    spans = [(1.0, 3.0), (3.5, 6.0)]
    words = [W(" one", 1.1, 1.5), W(" two", 2.8, 3.3), W(" three", 3.6, 4.0), W(" gap", 7.0, 7.5),
             W(" late", 6.0, 6.15)]
    per_clip, outside = assign_words(words, spans)
    assert [w["word"] for w in per_clip[0]] == [" one", " two"]
    assert [w["word"] for w in per_clip[1]] == [" three", " late"]  # 0.075 s past the end: snapped
    assert [w["word"] for w in outside] == [" gap"]


def test_assignment_uses_whisper_times_when_words_were_realigned():
    words = [dict(W(" moved", 5.0, 5.4), whisper_start=1.2, whisper_end=1.6)]
    per_clip, _ = assign_words(words, [(1.0, 3.0), (4.0, 6.0)])
    assert per_clip[0] and not per_clip[1]


def test_edge_overlap_is_the_depth_inside_a_word():
    words = [W(" a", 0.0, 1.0), W(" b", 1.2, 2.0)]
    assert edge_overlap(words, 0.9) == pytest.approx(0.1)
    assert edge_overlap(words, 0.5) == pytest.approx(0.5)
    assert edge_overlap(words, 1.1) == 0.0


def test_a_word_the_clip_claims_counts_what_the_edge_left_out():
    """A clip starting 0.3 s into a 0.4 s word that Whisper still gave to the clip: 0.3 s of
    its own text's audio is missing (its shorter side would say 0.1)."""
    word = W(" all", 1.0, 1.4)
    assert edge_overlap([word], 1.3) == pytest.approx(0.1)
    assert edge_overlap([word], 1.3, [word], "start") == pytest.approx(0.3)
    assert edge_overlap([word], 1.1, [word], "end") == pytest.approx(0.3)


@pytest.mark.parametrize("noise", [1e-4, 0.01, 0.03])
def test_edge_floor_tells_a_pause_from_a_word_in_any_room(noise):
    rng = np.random.default_rng(0)
    t = np.arange(6 * SR) / SR
    speech = 0.3 * np.sin(2 * np.pi * 180 * t) * ((t > 1.0) & (t < 2.5) | (t > 3.0) & (t < 5.0))
    audio = speech + noise * rng.standard_normal(len(t))
    at_pause = edge_floor_db(audio, SR, 0.0, 2.75, 5.5)  # starts mid-pause, ends in the pause after
    inside = edge_floor_db(audio, SR, 0.0, 3.5, 4.5)  # both edges inside the speech
    assert max(at_pause) < 6.0, at_pause
    assert min(inside) > 12.0, inside


def test_clip_record_text_times_and_confidence():
    words = [W(" Hello", 10.2, 10.6, 0.9), W(" there.", 10.6, 11.0, 0.8)]
    rec = clip_record(words, 10.0, 11.5)
    assert rec["text"] == "Hello there."
    assert rec["words"][0]["start"] == pytest.approx(0.2) and rec["words"][1]["end"] == pytest.approx(1.0)
    assert rec["avg_logprob"] == pytest.approx((np.log(0.9) + np.log(0.8)) / 3, abs=1e-4)
    assert rec["no_speech_prob"] is None
    assert clip_record([], 0.0, 1.0)["text"] == "" and clip_record([], 0.0, 1.0)["avg_logprob"] is None
    assert compression_ratio("") == 0.0 and compression_ratio("ha " * 50) > 2.4


def test_parts_are_contiguous_balanced_and_never_empty():
    from workflow_scripts.decode_pool import split_parts

    windows = plan_windows([(10.0 * i, 10.0 * i + 8) for i in range(30)])
    for n in (1, 2, 3, 7):
        parts = split_parts(windows, n)
        assert len(parts) == min(n, len(windows)) and all(parts)
        assert [w for p in parts for w in p] == windows
        lengths = [sum(w.end - w.start for w in p) for p in parts]
        assert max(lengths) - min(lengths) <= 2 * max(w.end - w.start for w in windows)
    assert split_parts(windows[:2], 4) == [[windows[0]], [windows[1]]]
