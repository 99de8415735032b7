"""Splitter on synthetic signals with known silences."""
import numpy as np
import pytest

from tests.synth import burst, speech_with_pauses
from workflow_scripts.segmentation import SegmentParams, frame_rms, split_on_silence

RATE = 16000


def cuts_s(segments, rate=RATE):
    return [s.start / rate for s in segments[1:]]


def test_cuts_at_silence_midpoints_within_20ms():
    audio, silences = speech_with_pauses(
        [("speech", 3), ("silence", 0.8), ("speech", 4), ("silence", 1.2), ("speech", 2.5)], RATE
    )
    segs = split_on_silence(audio, RATE, SegmentParams(max_clip_s=20))
    mids = [(a + b) / 2 for a, b in silences]
    assert len(segs) == 3
    for cut, mid in zip(cuts_s(segs), mids):
        assert abs(cut - mid) <= 0.02
    assert all(s.method == "silence" and s.depth == 0 for s in segs)
    # contiguous and covering the speech
    assert all(a.end == b.start for a, b in zip(segs, segs[1:]))


def test_short_pauses_ignored_when_no_recursion_needed():
    audio, _ = speech_with_pauses([("speech", 2), ("silence", 0.2), ("speech", 2)], RATE)
    segs = split_on_silence(audio, RATE, SegmentParams(max_clip_s=10, min_silence_s=0.5))
    assert len(segs) == 1  # 0.2 s pause < min_silence_s and the whole fits: no split


def test_recursion_only_when_needed_and_max_holds():
    # 0.25 s pauses only: pass 0 (min 0.5 s) finds nothing, recursion (0.25 s) finds them.
    pattern = []
    for i in range(6):
        pattern += [("speech", 3.0), ("silence", 0.25)]
    pattern += [("speech", 3.0)]
    audio, silences = speech_with_pauses(pattern, RATE)
    p = SegmentParams(max_clip_s=7.0, min_silence_s=0.5, min_silence_step=0.5, min_silence_floor_s=0.1)
    segs = split_on_silence(audio, RATE, p)
    assert all((s.end - s.start) / RATE <= 7.0 for s in segs)
    assert all(s.method == "silence" for s in segs)
    assert max(s.depth for s in segs) >= 1
    mids = [(a + b) / 2 for a, b in silences]
    for cut in cuts_s(segs):
        assert min(abs(cut - m) for m in mids) <= 0.02


def test_quieter_pauses_found_by_higher_factor():
    # The pauses are noise at 8 % of the speech level: silence only for factor >= 0.1.
    rng = np.random.default_rng(1)
    parts = []
    for i in range(4):
        parts.append(burst(4.0, RATE, i))
        parts.append((0.03 * rng.standard_normal(int(0.6 * RATE))).astype(np.float32))
    parts.append(burst(4.0, RATE, 9))
    audio = np.concatenate(parts)
    segs = split_on_silence(audio, RATE, SegmentParams(max_clip_s=9.0, factor=0.05, max_factor=0.4))
    assert all((s.end - s.start) / RATE <= 9.0 for s in segs)
    assert all(s.method == "silence" for s in segs)
    assert any(s.factor > 0.05 for s in segs)


def test_quietest_cut_only_past_the_floor():
    audio = burst(25.0, RATE, 3)  # no pause at all
    segs = split_on_silence(audio, RATE, SegmentParams(max_clip_s=10.0))
    assert all((s.end - s.start) / RATE <= 10.0 for s in segs)
    assert any(s.method == "quietest" for s in segs)
    assert sum(s.end - s.start for s in segs) == len(audio)


def test_silence_only_and_empty_give_no_segments():
    assert split_on_silence(np.zeros(RATE * 5, dtype=np.float32), RATE) == []
    assert split_on_silence(np.zeros(0, dtype=np.float32), RATE) == []


def test_leading_and_trailing_silence_not_split_off_as_segments():
    audio, _ = speech_with_pauses([("silence", 2), ("speech", 3), ("silence", 2)], RATE)
    segs = split_on_silence(audio, RATE, SegmentParams(max_clip_s=10))
    assert len(segs) == 1


def test_deterministic():
    audio, _ = speech_with_pauses([("speech", 5), ("silence", 0.3), ("speech", 9), ("silence", 0.7), ("speech", 4)], RATE)
    p = SegmentParams(max_clip_s=6)
    assert split_on_silence(audio, RATE, p) == split_on_silence(audio.copy(), RATE, p)


@pytest.mark.parametrize("n", [1, 159, 160, 161, 100000])
def test_frame_rms_blocks_match_direct(n):
    x = np.random.default_rng(n).standard_normal(n)
    hop = 160
    got = frame_rms(x, hop, block_frames=7)
    pad = np.concatenate([x, np.zeros(-len(x) % hop)])
    want = np.sqrt(np.mean(pad.reshape(-1, hop) ** 2, axis=1))
    np.testing.assert_allclose(got, want)
