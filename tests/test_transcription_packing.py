"""Packing short clips into shared Whisper windows: the pure layout and word-split logic,
on synthetic numbers with known answers (the real-model checks are in test_transcription)."""
import math

import numpy as np
import pytest

from workflow_scripts.transcription import (
    PACK_GAP_S,
    SAMPLE_RATE,
    assign_words,
    pack_windows,
    packed_record,
    use_packing,
    verify_alone,
    window_layout,
)


def word(text, start, end, p=0.9, n=1):
    return {"word": text, "start": start, "end": end, "probability": p, "n_tokens": n}


def test_windows_are_consecutive_and_fit():
    durs = [3.0, 4.0, 10.0, 9.0, 2.0, 27.0, 29.5, 1.0]
    windows = pack_windows(durs, max_s=28.0, gap_s=0.8)
    assert [i for w in windows for i in w] == list(range(len(durs)))  # order kept, nothing lost
    for w in windows:
        if len(w) > 1:
            assert sum(durs[i] for i in w) + PACK_GAP_S * (len(w) - 1) <= 28.0
    # 3 + 4 + 10 + 9 s with gaps is 28.4 s: the 9 s clip opens the next window; 27 s fills
    # one alone, and 29.5 s (longer than a packed window) is alone too
    assert windows == [[0, 1, 2], [3, 4], [5], [6], [7]]


def test_layout_places_clips_with_silent_gaps():
    a = np.ones(SAMPLE_RATE, dtype=np.float32)
    b = np.full(SAMPLE_RATE // 2, 0.5, dtype=np.float32)
    audio, spans = window_layout([a, b], gap_s=0.5)
    assert spans == [(0.0, 1.0), (1.5, 2.0)]
    assert len(audio) == int(2.0 * SAMPLE_RATE)
    assert not audio[SAMPLE_RATE : SAMPLE_RATE + SAMPLE_RATE // 2].any()


def test_words_go_to_their_clip_with_clip_relative_times():
    spans = [(0.0, 2.0), (2.8, 5.0)]
    words = [word(" Hello", 0.1, 0.6), word(" there.", 0.7, 2.1), word(" Good", 2.9, 3.3), word(" day.", 3.4, 4.0)]
    per_clip, doubtful = assign_words(words, spans)
    assert doubtful == set()
    assert [w["word"] for w in per_clip[0]] == [" Hello", " there."]
    assert per_clip[0][1]["end"] == 2.0  # clamped to the clip
    assert (per_clip[1][0]["start"], per_clip[1][1]["end"]) == (pytest.approx(0.1), pytest.approx(1.2))


@pytest.mark.parametrize("words, expect", [
    ([word(" a", 0.1, 1.0), word(" b", 3.0, 3.5), word(" across", 1.5, 3.4)], {0, 1}),  # spans both clips
    ([word(" a", 0.1, 1.0), word(" b", 3.0, 3.5), word(" mid", 2.3, 2.5)], {0, 1}),  # halfway across the gap
    ([word(" a", 0.1, 1.0), word(" long", 1.0, 3.2), word(" b", 3.3, 3.5)], {0, 1}),  # runs 0.4 s into clip 2
    ([word(" a", 0.1, 1.0), word(" dialed", 1.0, 2.95), word(" b", 3.3, 3.5)], set()),  # a pause absorbed: fine
    ([word(" a", 0.1, 1.0)], {1}),  # the second clip got nothing: silence, or skipped by Whisper
    ([word(" a", None, None), word(" b", 3.0, 3.5)], {0, 1}),  # no times: no split
])
def test_doubtful_clips_are_named(words, expect):
    _, doubtful = assign_words(words, [(0.0, 2.0), (2.8, 5.0)])
    assert doubtful == expect


def test_packed_record_signals():
    window = {"language": "en", "language_probability": None, "decode_language": "en", "word_timestamps": "whisper"}
    rec = packed_record(window, [word(" All", 0.0, 0.3, p=0.5, n=1), word(" right.", 0.3, 0.8, p=0.25, n=2)])
    assert rec["text"] == "All right."
    assert rec["avg_logprob"] == pytest.approx((math.log(0.5) + 2 * math.log(0.25)) / 4, abs=1e-4)
    assert rec["no_speech_prob"] is None  # the window's belongs to no single clip
    assert packed_record(window, [])["avg_logprob"] is None


def test_auto_packs_unless_the_language_is_detected_per_clip():
    assert use_packing({"pack_clips": "auto", "language": None}, multilingual=False)
    assert use_packing({"pack_clips": "auto", "language": "en"}, multilingual=True)
    assert not use_packing({"pack_clips": "auto", "language": None}, multilingual=True)
    assert use_packing({"pack_clips": True, "language": None}, multilingual=True)
    assert not use_packing({"pack_clips": False, "language": "en"}, multilingual=False)


@pytest.mark.parametrize("window_lang, probs, logprob, expect", [
    ("en", [0.95, 0.9], -0.05, False),  # sure, in the window's (expected) language
    ("de", [0.95, 0.9], -0.05, True),  # the window itself is not in the expected language
    ("en", [0.4, 0.5], -0.05, True),  # unsure words
    ("en", [0.95, 0.9], -0.9, True),  # unsure tokens
    ("en", [], None, True),  # nothing to go by
])
def test_multilingual_packed_clip_verified_alone_when_unsure(window_lang, probs, logprob, expect):
    record = {"words": [{"probability": p} for p in probs], "avg_logprob": logprob}
    assert verify_alone({"language": window_lang}, record, "en") is expect
