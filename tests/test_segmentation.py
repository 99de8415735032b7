"""Segmentation on synthetic signals with known pauses: where it cuts, how few times, robustness."""
import logging
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml

from tests.synth import burst, speech_with_pauses
from workflow_scripts.segmentation import SegmentParams, fewest_cuts, frame_rms, split_on_silence, write_segments

RATE = 16000
TOL = 0.02  # one frame


def bounds_s(segs, rate=RATE):
    return [(s.start / rate, s.end / rate) for s in segs]


def inner_cuts_s(segs, rate=RATE):
    """Where one segment ends and the next begins (the same point when contiguous)."""
    return [(a.end / rate, b.start / rate) for a, b in zip(segs, segs[1:])]


def check_invariants(segs, n, max_clip_s, rate=RATE):
    assert all(0 <= s.start < s.end <= n for s in segs)
    assert all(a.end <= b.start for a, b in zip(segs, segs[1:]))  # ordered, no overlap
    assert all(s.end - s.start <= max_clip_s * rate for s in segs)


def pink(n, seed, low_hz=20.0):
    """1/f noise above ``low_hz`` (room noise after a microphone's rumble filter)."""
    spec = np.fft.rfft(np.random.default_rng(seed).standard_normal(n))
    f = np.fft.rfftfreq(n, 1 / RATE)
    spec[f < low_hz] = 0
    spec[f >= low_hz] /= np.sqrt(f[f >= low_hz])
    x = np.fft.irfft(spec, n)
    return x / x.std()


# A 20 s stretch: six 3 s phrases with 0.25 s pauses (too short for a clear pause).
STRETCH = sum(([("speech", 3.0), ("silence", 0.25)] for _ in range(5)), []) + [("speech", 3.0)]


def test_clear_pauses_cut_at_midpoints_and_long_ones_trimmed():
    audio, sil = speech_with_pauses([("speech", 3), ("silence", 0.6), ("speech", 4), ("silence", 1.4), ("speech", 2.5)], RATE)
    p = SegmentParams(max_clip_s=20, keep_silence_s=0.5)
    segs = split_on_silence(audio, RATE, p)
    assert len(segs) == 3 and all(s.method == "silence" and s.depth == 0 for s in segs)
    (end1, start2), (end2, start3) = inner_cuts_s(segs)
    mid = sum(sil[0]) / 2
    # 0.6 s <= 2 × keep: one cut in the middle (an evenly deep pause: its midpoint, to a frame
    # or two where the frames at its ends hold a little of the speech)
    assert end1 == start2 and abs(end1 - mid) <= 2 * TOL
    # 1.4 s > 2 × keep: keep 0.5 s of it on either side, drop the middle
    assert abs(end2 - (sil[1][0] + 0.5)) <= TOL and abs(start3 - (sil[1][1] - 0.5)) <= TOL


def test_short_pauses_ignored_when_the_whole_fits():
    audio, _ = speech_with_pauses([("speech", 2), ("silence", 0.2), ("speech", 2)], RATE)
    assert len(split_on_silence(audio, RATE, SegmentParams(max_clip_s=10, min_silence_s=0.5))) == 1


def test_island_between_phrases_is_a_segment_of_its_own():
    """A 0.6 s word 0.3 s after one phrase and 0.35 s before the next (another voice's "Yeah."):
    with island_max_s 1 (the default), cut out at the two pauses' midpoints, as clear pauses
    are; not with islands off (0); a phrase longer than island_max_s is not cut at its short
    pauses."""
    pattern = [("speech", 3), ("silence", 0.3), ("speech", 0.6), ("silence", 0.35), ("speech", 4)]
    audio, sil = speech_with_pauses(pattern, RATE)
    islands = SegmentParams(max_clip_s=20, island_max_s=1.0)
    segs = split_on_silence(audio, RATE, islands)
    assert len(segs) == 3 and all(s.method == "silence" and s.depth == 0 for s in segs)
    cuts = inner_cuts_s(segs)
    assert all(c == d for c, d in cuts)
    assert [round(c, 2) for c, _ in cuts] == pytest.approx([(a + b) / 2 for a, b in sil], abs=TOL)
    assert split_on_silence(audio, RATE, SegmentParams(max_clip_s=20)) == segs
    assert len(split_on_silence(audio, RATE, SegmentParams(max_clip_s=20, island_max_s=0.0))) == 1
    longer = [("speech", 3), ("silence", 0.3), ("speech", 1.5), ("silence", 0.35), ("speech", 4)]
    audio, _ = speech_with_pauses(longer, RATE)
    assert len(split_on_silence(audio, RATE, islands)) == 1


def test_seams_mark_the_pauses_left_inside_a_segment():
    """A turn taken 0.3 s after a 1.5 s answer (too long for an island) stays in one segment,
    with a seam in the middle of each pause of island_pause_s or more: the speaker gate's part
    boundaries. A 0.1 s dip is no seam, nor a pause that would leave a part under
    SEAM_MIN_PART_S; with no seam the column is empty."""
    from workflow_scripts.segmentation import SEAM_MIN_PART_S

    pattern = [("speech", 3), ("silence", 0.3), ("speech", 1.5), ("silence", 0.35), ("speech", 4), ("silence", 0.1), ("speech", 2)]
    audio, sil = speech_with_pauses(pattern, RATE)
    (seg,) = split_on_silence(audio, RATE, SegmentParams(max_clip_s=20))
    assert [c / RATE for c in seg.seams] == pytest.approx([(a + b) / 2 for a, b in sil[:2]], abs=TOL)
    edge = [("speech", 3), ("silence", 0.3), ("speech", SEAM_MIN_PART_S - 0.2)]
    audio, _ = speech_with_pauses(edge, RATE)
    (seg,) = split_on_silence(audio, RATE, SegmentParams(max_clip_s=20, island_max_s=0.0))
    assert seg.seams == ()


def test_island_at_the_edge_of_a_stretch():
    """A short answer after a clear pause and 0.3 s before the next phrase: one cut, between them."""
    pattern = [("speech", 3), ("silence", 0.8), ("speech", 0.5), ("silence", 0.3), ("speech", 3)]
    audio, sil = speech_with_pauses(pattern, RATE)
    segs = split_on_silence(audio, RATE, SegmentParams(max_clip_s=20, island_max_s=1.0))
    assert len(segs) == 3, bounds_s(segs)
    assert segs[1].end / RATE == pytest.approx(sum(sil[1]) / 2, abs=TOL)


def test_fewest_cuts_not_one_per_pause():
    audio, sil = speech_with_pauses(STRETCH, RATE)
    segs = split_on_silence(audio, RATE, SegmentParams(max_clip_s=12))
    assert len(segs) == 2  # 19.25 s: one cut, not five
    check_invariants(segs, len(audio), 12)
    assert all(s.method == "silence" and s.depth >= 1 for s in segs)
    (cut, start), = inner_cuts_s(segs)
    assert cut == start and min(abs(cut - (a + b) / 2) for a, b in sil) <= 2 * TOL


def test_dp_minimum_pieces_then_avoid_short_then_strongest_weakest():
    # 0..30 with max 12: 3 pieces needed
    pos, score = np.array([5, 10, 11, 20, 22, 29]), np.array([1.0, 5.0, 1.0, 1.0, 3.0, 9.0])
    assert fewest_cuts(pos, score, np.zeros(6), 30, 12, 0) == [1, 4]  # 10, 22: weakest 3
    # a piece under 3 frames is avoided even at the cost of a weaker cut (29 leaves 1)
    pos, score = np.array([10, 12, 22, 29]), np.array([5.0, 1.0, 5.0, 9.0])
    assert fewest_cuts(pos, score, np.zeros(4), 30, 12, 3) == [0, 2]
    assert fewest_cuts(np.array([5]), np.array([1.0]), np.zeros(1), 30, 12, 0) is None  # cannot fit
    # a real pause is preferred to a fallback cut
    assert fewest_cuts(np.array([10, 12]), np.array([1.0, 9.0]), np.array([0, 1]), 20, 12, 0) == [0]


@pytest.mark.parametrize("kind", ["longest", "deepest"])
def test_best_pause_wins_among_feasible_ones(kind):
    # 17 s, max 12: one cut fits at any of the three pauses; the third is the best.
    pattern = [("speech", 6), ("silence", 0.35), ("speech", 2), ("silence", 0.35), ("speech", 2), ("silence", 0.35), ("speech", 6)]
    if kind == "longest":
        pattern[5] = ("silence", 0.45)
    audio, sil = speech_with_pauses(pattern, RATE)
    if kind == "deepest":  # the first two pauses hold noise 30 dB under the voice, the third is clean
        rng = np.random.default_rng(5)
        for a, b in sil[:2]:
            i, j = int(a * RATE), int(b * RATE)
            audio[i:j] = 0.3 * 10 ** (-30 / 20) * rng.standard_normal(j - i)
    segs = split_on_silence(audio, RATE, SegmentParams(max_clip_s=12))
    assert len(segs) == 2
    (cut, _), = inner_cuts_s(segs)
    assert abs(cut - sum(sil[2]) / 2) <= TOL


def take(level_db, seed):
    """A take: two clear pauses and a 20 s stretch of short ones, at ``level_db``."""
    pattern = [("speech", 3), ("silence", 0.8), ("speech", 4), ("silence", 1.0), *STRETCH]
    audio, sil = speech_with_pauses(pattern, RATE, seed=seed)
    return audio * 10 ** (level_db / 20), sil


def test_quiet_take_is_segmented_like_the_loud_one():
    loud, _ = take(0, 0)
    quiet, _ = take(-15, 0)
    gap = np.full(int(1.5 * RATE), 1e-4, dtype=np.float32)
    audio = np.concatenate([loud, gap, quiet, gap]).astype(np.float32)
    segs = split_on_silence(audio, RATE, SegmentParams(max_clip_s=12))
    check_invariants(segs, len(audio), 12)
    offset = (len(loud) + len(gap)) / RATE
    first = [(a, b) for a, b in bounds_s(segs) if b <= offset]
    second = [(a - offset, b - offset) for a, b in bounds_s(segs) if b > offset]
    assert len(first) == len(second) == 4
    # the quiet take's first segment starts in the gap, at its midpoint (not trimmed: 1.5 s)
    assert abs(second[0][0] - -0.75) <= TOL
    second[0] = (0.0, second[0][1])
    # cuts weigh a pause's frames by their depth under the threshold, which is 15 dB less here,
    # so the frames at a pause's ends (part speech) weigh differently: within three frames
    for (a1, b1), (a2, b2) in zip(first, second):
        assert abs(a1 - a2) <= 3 * TOL and abs(b1 - b2) <= 3 * TOL
    assert not any(s.method == "quietest" for s in segs)


@pytest.mark.parametrize("noise", ["white", "pink"])
def test_room_noise_bed_20db_under_the_voice(noise):
    audio, sil = take(0, 1)
    clean = split_on_silence(audio, RATE, SegmentParams(max_clip_s=12))
    voice_rms = np.sqrt(np.mean(audio[np.abs(audio) > 0.01] ** 2))
    bed = pink(len(audio), 2) if noise == "pink" else np.random.default_rng(2).standard_normal(len(audio))
    noisy = (audio + voice_rms * 10 ** (-20 / 20) * bed).astype(np.float32)
    segs = split_on_silence(noisy, RATE, SegmentParams(max_clip_s=12))
    check_invariants(segs, len(audio), 12)
    assert len(segs) == len(clean) == 4
    assert not any(s.method == "quietest" for s in segs)
    for end, start in inner_cuts_s(segs):  # every cut lands in a pause
        assert any(a - TOL <= end and start <= b + TOL for a, b in sil)


@pytest.mark.parametrize("seed", range(8))
def test_random_signals_max_holds_no_overlap_deterministic(seed):
    rng = np.random.default_rng(seed)
    pattern = []
    for _ in range(rng.integers(5, 25)):
        pattern += [("speech", float(rng.uniform(0.3, 15))), ("silence", float(rng.uniform(0.05, 1.5)))]
    audio, _ = speech_with_pauses(pattern, RATE, seed=seed)
    gains = np.repeat(10 ** (rng.uniform(-20, 0, len(audio) // RATE + 1) / 20), RATE)[: len(audio)]
    audio = (audio * gains).astype(np.float32)
    if seed % 2:
        audio += (0.01 * rng.standard_normal(len(audio))).astype(np.float32)
    max_clip = float(rng.uniform(3, 15))
    p = SegmentParams(max_clip_s=max_clip)
    segs = split_on_silence(audio, RATE, p)
    assert segs
    check_invariants(segs, len(audio), max_clip)
    assert segs == split_on_silence(audio.copy(), RATE, p)


def test_silence_only_and_empty_give_no_segments():
    assert split_on_silence(np.zeros(RATE * 5, dtype=np.float32), RATE) == []
    assert split_on_silence(np.zeros(0, dtype=np.float32), RATE) == []
    hiss = (1e-4 * np.random.default_rng(0).standard_normal(RATE * 30)).astype(np.float32)  # -80 dBFS
    assert split_on_silence(hiss, RATE) == []


def test_leading_and_trailing_silence_not_split_off():
    audio, _ = speech_with_pauses([("silence", 2), ("speech", 3), ("silence", 2)], RATE)
    segs = split_on_silence(audio, RATE, SegmentParams(max_clip_s=10, keep_silence_s=0.5))
    assert len(segs) == 1
    (a, b), = bounds_s(segs)
    assert abs(a - 1.5) <= TOL and abs(b - 5.5) <= TOL


def test_long_noisy_pause_is_no_voice():
    # 30 s of room noise between two phrases: no segment of noise in the middle
    audio, sil = speech_with_pauses([("speech", 3), ("silence", 30), ("speech", 3)], RATE, noise=0.01)
    segs = split_on_silence(audio, RATE, SegmentParams(max_clip_s=12))
    assert len(segs) == 2
    assert segs[0].end / RATE <= sil[0][0] + 1.0 and segs[1].start / RATE >= sil[0][1] - 1.0


def test_quietest_only_when_no_pause_exists():
    audio = burst(25.0, RATE, 3)  # no pause at all
    segs = split_on_silence(audio, RATE, SegmentParams(max_clip_s=10))
    check_invariants(segs, len(audio), 10)
    assert len(segs) == 3 and all(s.method == "quietest" for s in segs)
    assert sum(s.end - s.start for s in segs) == len(audio)
    # one usable pause in the middle: it is used, and quietest cuts only where still needed
    a2, sil = speech_with_pauses([("speech", 9), ("silence", 0.3), ("speech", 9)], RATE)
    segs = split_on_silence(a2, RATE, SegmentParams(max_clip_s=10))
    assert len(segs) == 2 and all(s.method == "silence" for s in segs)


def test_three_hour_int16_stem_completes():
    rate = 8000
    n = 3 * 3600 * rate
    audio = np.zeros(n, dtype=np.int16)
    b = (burst(4.0, rate, 1) * 32767).astype(np.int16)
    for start in range(0, n - len(b), 7 * rate):
        audio[start : start + len(b)] = b
    segs = split_on_silence(audio, rate, SegmentParams())
    check_invariants(segs, n, 12.0, rate)
    assert len(segs) == len(range(0, n - len(b), 7 * rate))


def test_tiers_raise_factor_and_shorten_silence_to_their_limits():
    assert SegmentParams().tiers() == [(0.05, 0.5), (0.1, 0.25), (0.2, 0.125), (0.4, 0.1)]
    assert SegmentParams(min_silence_step=1.0, factor=0.4).tiers() == [(0.4, 0.5)]


def test_schema_defaults_equal_dataclass_defaults():
    schema = yaml.safe_load((Path(__file__).resolve().parent.parent / "schemas" / "config.schema.yaml").read_text())
    props = schema["properties"]["segmentation"]["properties"]
    want = {k: v for k, v in vars(SegmentParams()).items() if k != "max_clip_s"}
    assert {k: v["default"] for k, v in props.items()} == want


def test_write_segments_tsv_only_and_streamed_envelope_matches(tmp_path):
    audio, _ = speech_with_pauses([("silence", 0.5), ("speech", 3), ("silence", 0.7), *STRETCH, ("silence", 1)], RATE)
    wav = tmp_path / "vocals.wav"
    sf.write(wav, audio, RATE, subtype="PCM_16")
    p = SegmentParams(max_clip_s=12)
    rows = write_segments(str(wav), str(tmp_path / "segments"), p, logging.getLogger("test"))
    assert [f.name for f in (tmp_path / "segments").iterdir()] == ["segments.tsv"]
    lines = (tmp_path / "segments" / "segments.tsv").read_text().splitlines()
    assert lines[0].split("\t") == ["segment", "start_sample", "end_sample", "start_s", "end_s", "duration_s", "method", "depth",
                                    "factor", "min_silence_s", "pause_before_s", "pause_after_s", "seams_s"]
    assert [r["segment"] for r in rows] == [f"seg_{i:05d}" for i in range(1, len(rows) + 1)] and len(lines) == len(rows) + 1
    stem, _ = sf.read(wav, dtype="int16")
    direct = split_on_silence(stem, RATE, p)
    assert [(r["start_sample"], r["end_sample"]) for r in rows] == [(s.start, s.end) for s in direct]


def test_write_segments_rejects_stereo(tmp_path):
    from workflow_scripts.io_utils import StageError

    wav = tmp_path / "st.wav"
    sf.write(wav, np.zeros((RATE, 2), dtype=np.float32), RATE, subtype="PCM_16")
    with pytest.raises(StageError, match="mono"):
        write_segments(str(wav), str(tmp_path / "out"), SegmentParams(), logging.getLogger("test"))


@pytest.mark.parametrize("n", [1, 159, 160, 161, 100000])
def test_frame_rms_blocks_match_direct(n):
    x = np.random.default_rng(n).standard_normal(n)
    hop = 160
    got = frame_rms(x, hop, block_frames=7)
    pad = np.concatenate([x, np.zeros(-len(x) % hop)])
    want = np.sqrt(np.mean(pad.reshape(-1, hop) ** 2, axis=1))
    np.testing.assert_allclose(got, want)


def test_each_cut_carries_the_pause_it_lies_in():
    """A 14 s stretch cut once, in a 0.3 s pause at 6 s (the deeper of two), beside a 0.12 s dip:
    both pieces record the 0.3 s at their shared cut; the stem's edges record its leading and
    trailing silence; a noisy room (pink noise 12 dB under the speech) gives the same pauses,
    because the silence is judged against the local floor."""
    pattern = [("silence", 0.6), ("speech", 3.0), ("silence", 0.12), ("speech", 2.6), ("silence", 0.3),
               ("speech", 7.0), ("silence", 0.8)]
    clean, sil = speech_with_pauses(pattern, RATE)
    noisy = clean + pink(len(clean), 3) * np.sqrt(np.mean(clean[clean != 0] ** 2)) * 10 ** (-12 / 20)
    for audio in (clean, noisy.astype(np.float32)):
        segs = split_on_silence(audio, RATE, SegmentParams(max_clip_s=12))
        assert len(segs) == 2
        assert abs(segs[0].end / RATE - sum(sil[2]) / 2) <= TOL
        assert abs(segs[0].pause_after_s - 0.3) <= 2 * TOL and segs[1].pause_before_s == segs[0].pause_after_s
        assert abs(segs[0].pause_before_s - 0.6) <= 2 * TOL and abs(segs[1].pause_after_s - 0.8) <= 2 * TOL


def test_a_faint_word_tail_in_noise_does_not_pull_the_cut_into_the_word():
    """Room noise 20 dB under the speech; a phrase ends in a 0.3 s tail 17 dB under it (a
    fading consonant, under the floor-relative threshold), then 0.3 s of room tone: one
    0.6 s silence run. Its plain midpoint is the end of the tail; the cut lies in the room
    tone, where the frames lie deepest under the threshold."""
    rng = np.random.default_rng(5)
    speech1, tail, gap, speech2 = burst(3.0, RATE, 1), burst(0.3, RATE, 2) * 10 ** (-17 / 20), np.zeros(int(0.3 * RATE)), burst(3.0, RATE, 3)
    clean = np.concatenate([speech1, tail, gap, speech2]).astype(np.float32)
    audio = (clean + pink(len(clean), 4) * np.sqrt(np.mean(speech1 ** 2)) * 10 ** (-20 / 20)).astype(np.float32)
    segs = split_on_silence(audio, RATE, SegmentParams(max_clip_s=20, island_max_s=0))
    assert len(segs) == 2
    tail_end = (len(speech1) + len(tail)) / RATE
    assert tail_end + 0.06 <= segs[0].end / RATE <= tail_end + 0.3


def test_fewest_cuts_count_the_island_cuts():
    """A 14.7 s stretch: an 11 s phrase (a 0.3 s pause inside it), then a 0.5 s island
    between two 0.22 s pauses, then 1.5 s. The island is cut out whatever the length, and
    that leaves 11.7 s before it: no further cut is needed. Counted over the whole stretch,
    the fewest cuts had been one more, at the phrase's inner pause."""
    pattern = [("silence", 1.0), ("speech", 5.0), ("silence", 0.3), ("speech", 5.5), ("silence", 0.22),
               ("speech", 0.5), ("silence", 0.22), ("speech", 1.5), ("silence", 1.0)]
    audio, sil = speech_with_pauses(pattern, RATE)
    segs = split_on_silence(audio, RATE, SegmentParams(max_clip_s=12))
    check_invariants(segs, len(audio), 12)
    assert len(segs) == 3
    assert [c for c, _ in inner_cuts_s(segs)] == pytest.approx([sum(sil[2]) / 2, sum(sil[3]) / 2], abs=2 * TOL)
