"""Clip preprocessing: loudness, peaks, lengths, merge rules."""
import numpy as np
import pyloudnorm
import pytest
import soundfile as sf

from tests.synth import burst, speech_with_pauses
from workflow_scripts.preprocess import (
    Piece,
    PreprocessParams,
    merge_short_neighbours,
    preprocess_recording,
    speech_bounds,
)
from workflow_scripts.loudness import normalise
from workflow_scripts.segmentation import SegmentParams, write_segments
import logging

RATE = 22050
LOG = logging.getLogger("test")


def test_loudness_within_1_lu_and_no_clipping():
    rng = np.random.default_rng(3)
    clips = [burst(3.0, RATE, 1, level=level) for level in (0.01, 0.3, 0.95)]
    # high crest factors: gain alone would clip these far below the target
    for k in range(3):
        x = 0.02 * rng.standard_normal(RATE * 2)
        x[RATE // 2 + k * 300 : RATE // 2 + k * 300 + 40] = 0.99
        clips.append(x)
    spiky = np.zeros(RATE * 2)
    spiky[RATE] = 1.0
    clips.append(spiky + 1e-3 * rng.standard_normal(len(spiky)))
    for y, before, after in normalise(clips, RATE, -23.0, -1.0):
        measured = pyloudnorm.Meter(RATE).integrated_loudness(y)
        assert abs(measured - -23.0) <= 1.0, (before, after, measured)
        assert abs(measured - after) <= 0.1
        assert np.max(np.abs(y)) <= 10 ** (-1 / 20) + 1e-9


def test_limiter_only_where_needed():
    x = 0.05 * np.sin(2 * np.pi * 220 * np.arange(RATE) / RATE)
    (y, before, after), = normalise([x], RATE, -23.0, -1.0)
    assert np.allclose(y / x.max(), x / x.max() * (y.max() / x.max()))  # a pure gain


def test_speech_bounds_trim():
    audio, _ = speech_with_pauses([("silence", 1.0), ("speech", 2.0), ("silence", 1.5)], RATE)
    a, b = speech_bounds(audio, RATE, -40, 0.01)
    assert abs(a / RATE - 1.0) < 0.02 and abs(b / RATE - 3.0) < 0.02


def P(start, end, s0, s1, name):
    return Piece(start, end, s0, s1, [name])


def test_merge_short_into_neighbour_with_small_gap():
    p = PreprocessParams(min_clip_s=1.0, max_clip_s=12.0, merge_gap_s=0.4, pad_s=0.1)
    r = 1000
    pieces = [P(0, 3000, 100, 2900, "a"), P(3000, 3600, 3100, 3400, "b"), P(3600, 9000, 4000, 8000, "c")]
    out = merge_short_neighbours(pieces, r, p)
    # b (0.3 s) merges with a (gap 0.2 s) rather than c (gap 0.6 s > 0.4 s)
    assert [x.sources for x in out] == [["a", "b"], ["c"]]


def test_no_merge_over_max_or_across_gaps():
    r = 1000
    p = PreprocessParams(min_clip_s=1.0, max_clip_s=3.0, merge_gap_s=0.4, pad_s=0.1)
    pieces = [P(0, 3000, 100, 2900, "a"), P(3000, 3600, 3100, 3400, "b")]
    assert len(merge_short_neighbours(pieces, r, p)) == 2  # would exceed max
    pieces = [P(0, 3000, 100, 2900, "a"), P(3500, 4100, 3600, 3900, "b")]  # not contiguous
    assert len(merge_short_neighbours(pieces, r, PreprocessParams(min_clip_s=1.0, pad_s=0.1))) == 2


def test_short_phrases_join_shortest_first_up_to_the_target():
    r = 1000
    p = PreprocessParams(min_clip_s=1.0, max_clip_s=12.0, merge_gap_s=0.4, pad_s=0.1, join_under_s=5.0)
    # three 2 s phrases 0.2 s apart: one clip of all three (the first pair is still under 5 s)
    pieces = [P(0, 2200, 100, 2100, "a"), P(2200, 4400, 2300, 4300, "b"), P(4400, 6600, 4500, 6500, "c")]
    assert [x.sources for x in merge_short_neighbours(pieces, r, p)] == [["a", "b", "c"]]
    # a 2 s phrase between a 4 s and an 8 s one joins the shorter; the 6 s result is long enough
    pieces = [P(0, 4200, 100, 4100, "a"), P(4200, 6400, 4300, 6300, "b"), P(6400, 14600, 6500, 14500, "c")]
    assert [x.sources for x in merge_short_neighbours(pieces, r, p)] == [["a", "b"], ["c"]]
    # the shortest goes first: c (1 s) takes b (3 s), then a (3 s) finds a+b+c over max 7 s;
    # left to right, a would have taken b and left c alone
    p7 = PreprocessParams(min_clip_s=1.0, max_clip_s=7.0, merge_gap_s=0.4, pad_s=0.1, join_under_s=5.0)
    pieces = [P(0, 3200, 100, 3100, "a"), P(3200, 6400, 3300, 6300, "b"), P(6400, 7600, 6500, 7500, "c")]
    assert [x.sources for x in merge_short_neighbours(pieces, r, p7)] == [["a"], ["b", "c"]]
    # join_under_s 0: only pieces under min_clip_s join
    p0 = PreprocessParams(min_clip_s=1.0, max_clip_s=12.0, merge_gap_s=0.4, pad_s=0.1, join_under_s=0.0)
    pieces = [P(0, 2200, 100, 2100, "a"), P(2200, 4400, 2300, 4300, "b")]
    assert len(merge_short_neighbours(pieces, r, p0)) == 2


def test_recording_end_to_end(tmp_path):
    pattern = [("silence", 0.5), ("speech", 3.0), ("silence", 0.7), ("speech", 0.4), ("silence", 0.55),
               ("speech", 0.5), ("silence", 0.8), ("speech", 13.0), ("silence", 1.0), ("speech", 0.3), ("silence", 1.0)]
    audio, _ = speech_with_pauses(pattern, RATE)
    vocals = tmp_path / "vocals.wav"
    sf.write(vocals, audio, RATE, subtype="PCM_16")
    write_segments(str(vocals), str(tmp_path / "segments"), SegmentParams(max_clip_s=8.0), LOG)
    p = PreprocessParams(sample_rate=RATE, max_clip_s=8.0, min_clip_s=1.0, merge_gap_s=0.6)
    rows, dropped = preprocess_recording("rec", str(vocals), str(tmp_path / "segments"), str(tmp_path / "clips"), p, LOG)
    assert rows
    for r in rows:
        x, sr = sf.read(tmp_path / "clips" / r["clip"])
        info = sf.info(tmp_path / "clips" / r["clip"])
        assert sr == RATE and info.channels == 1 and info.subtype == "PCM_16"
        assert p.min_clip_s <= len(x) / sr <= p.max_clip_s
        assert np.max(np.abs(x)) < 0.999
    assert any("+" in r["segments"] for r in rows)  # the 0.4 s + 0.5 s pair merged
    for r in rows:  # where each joined segment begins, inside the clip
        joins = [float(x) for x in r["joins_s"].split(";") if x]
        assert len(joins) == r["segments"].count("+")
        assert all(0 < t < float(r["duration_s"]) for t in joins) and joins == sorted(joins)
    assert [d[1] for d in dropped] == ["too_short"]  # the lone 0.3 s burst
    assert (tmp_path / "clips" / "clips.tsv").exists()
    assert not list(tmp_path.glob(".*tmp*"))


def test_seams_inside_a_segment_are_part_boundaries_in_joins_s(tmp_path):
    """One segment holding two pauses of 0.3 s (a turn taken after a 1.5 s answer): the clip is
    that segment, and joins_s places a part boundary in the middle of each pause, so the speaker
    gate judges the answer on its own."""
    pattern = [("silence", 0.5), ("speech", 3.0), ("silence", 0.3), ("speech", 1.5), ("silence", 0.3), ("speech", 3.0),
               ("silence", 0.5)]
    audio, sil = speech_with_pauses(pattern, RATE)
    vocals = tmp_path / "vocals.wav"
    sf.write(vocals, audio, RATE, subtype="PCM_16")
    write_segments(str(vocals), str(tmp_path / "segments"), SegmentParams(max_clip_s=12.0), LOG)
    rows, _ = preprocess_recording("rec", str(vocals), str(tmp_path / "segments"), str(tmp_path / "clips"),
                                   PreprocessParams(sample_rate=RATE), LOG)
    (row,) = rows
    assert "+" not in row["segments"]
    joins = [float(row["start_s"]) + float(x) for x in row["joins_s"].split(";")]
    assert joins == pytest.approx([(a + b) / 2 for a, b in sil[1:3]], abs=0.03)


def test_in_a_noisy_room_the_join_follows_segmentations_pauses():
    """The trim finds speech up to both ends of every piece (noise as loud as soft speech), so
    every gap reads 0; segmentation's floor-relative pauses (0.2 s before the short piece,
    1.3 s after it) say where the phrase ends: it joins the phrase before it, the longer one."""
    r = 1000
    p = PreprocessParams(min_clip_s=1.0, max_clip_s=12.0, merge_gap_s=1.5, pad_s=0.1, join_under_s=5.0)
    pieces = [Piece(0, 6600, 0, 6600, ["a"], [], 500, 200), Piece(6600, 7900, 6600, 7900, ["b"], [], 200, 1300),
              Piece(7900, 12000, 7900, 12000, ["c"], [], 1300, 600)]
    assert [x.sources for x in merge_short_neighbours(pieces, r, p)] == [["a", "b"], ["c"]]
    # without the pauses, the shorter neighbour: the phrase is cut before its last word
    bare = [Piece(x.start, x.end, x.speech_start, x.speech_end, x.sources) for x in pieces]
    assert [x.sources for x in merge_short_neighbours(bare, r, p)] == [["a"], ["b", "c"]]


def test_short_phrase_joins_across_the_shorter_pause():
    """A 1.7 s phrase 0.5 s after a 9 s one and 1.0 s before a 4 s one (a hesitation inside a
    sentence, then the sentence gap): it joins the phrase it belongs to, though that is the
    longer neighbour, so the clip ends at the sentence gap."""
    r = 1000
    p = PreprocessParams(min_clip_s=1.0, max_clip_s=12.0, merge_gap_s=1.5, pad_s=0.1, join_under_s=5.0)
    pieces = [P(0, 9300, 100, 9100, "a"), P(9300, 11400, 9600, 11300, "b"), P(11400, 16000, 12300, 16000, "c")]
    assert [x.sources for x in merge_short_neighbours(pieces, r, p)] == [["a", "b"], ["c"]]


def test_segments_of_reads_the_pauses_seams_and_tables_without_them():
    from workflow_scripts.preprocess import segments_of

    rows = [{"segment": "seg_00001", "start_sample": "0", "end_sample": "160", "pause_before_s": "0.500", "pause_after_s": "0.220",
             "seams_s": "0.005;0.0075"}]
    assert segments_of(rows, 16000) == ([("seg_00001", 0, 160)], {"seg_00001": (0.5, 0.22)}, {"seg_00001": [80, 120]})
    old = [{"segment": "seg_00001", "start_sample": "0", "end_sample": "160"}]  # written before pauses were measured
    assert segments_of(old, 16000) == ([("seg_00001", 0, 160)], {"seg_00001": (0.0, 0.0)}, {"seg_00001": []})
