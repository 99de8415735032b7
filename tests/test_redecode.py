"""Clips whose words look wrong, decoded again alone: which clips, their windows, and the
records replaced (the decoder faked: it records what it was asked and answers with known words)."""
from __future__ import annotations

import logging

import numpy as np
import pytest

from workflow_scripts import redecode, stream_pool
from workflow_scripts.decode_pool import DecodedBlock
from workflow_scripts.decode_windows import Window
from workflow_scripts.io_utils import Progress
from workflow_scripts.longform_decode import BlockResult

SPANS = [(1.0, 5.0), (5.2, 9.0), (9.3, 12.0), (20.0, 24.0)]


def read_silence(stem, a, b):
    return np.zeros(int((b - a) * redecode.SAMPLE_RATE), dtype=np.float32)


def word(w, start, end):
    return {"word": w, "start": start, "end": end, "probability": 0.9}


def all_voice(w):
    return w["end"] - w["start"]


def test_doubtful_transcripts_and_their_own_windows():
    fine = {"text": "Hello there.", "words": [word(" Hello", 0.1, 0.5), word(" there.", 0.5, 1.3)]}
    loop = {"text": "using codec two, codec two, codec two, codec.", "words": []}
    stretched = {"text": "and presumably you're", "words": [word(" and", 0.0, 0.7), word(" presumably", 0.7, 3.3)]}
    # two repeats of a bigram, three of a word: speech, not a loop
    speech = {"text": "No, no, no. I said it twice, it twice.", "words": []}
    recs = [fine, {"text": ""}, {"text": "  "}, loop, stretched, speech]
    assert [redecode.doubt(r, all_voice) for r in recs] == [None, "empty", "empty", "repetition", "stretched_word",
                                                           None]
    # a word stretched over a pause (a hesitation) holds little voice: no doubt
    assert redecode.doubt(stretched, lambda w: 0.8) is None
    # each clip alone, its lead meeting the neighbours halfway in the gaps
    assert redecode.alone_windows(SPANS, [1, 2, 3], 0.4) == [
        Window(5.1, 9.15, (1,)), Window(9.15, 12.4, (2,)), Window(19.6, 24.4, (3,))]
    assert redecode.alone_windows(SPANS, [0], 0.4) == [Window(0.6, 5.1, (0,))]


def test_speech_without_words_is_doubtful():
    """A woman's sentence skipped before a man's turn: the decode's first word comes 4.5 s into
    the clip, and those seconds hold voice."""
    skipped = {"text": "Well, it depends", "duration_s": 10.1,
               "words": [word(" Well,", 4.47, 5.03), word(" it", 6.85, 6.85), word(" depends", 6.85, 7.19)]}
    assert [(g["start"], g["end"]) for g in redecode.wordless_spans(skipped["words"], 10.1)] == [
        (0.0, 4.47), (5.03, 6.85), (7.19, 10.1)]
    assert redecode.doubt(skipped, all_voice) == "skipped_speech"
    # the same stretches silent (pauses, a clip's pads): no doubt
    assert redecode.doubt(skipped, lambda g: 0.3) is None
    # the alone decode must hear the words, not merely drop the gap
    heard = {"text": "I was thinking the same thing. Well, it depends on the time", "duration_s": 10.1,
             "words": [word(" I", 0.2, 0.4), word(" thinking", 0.4, 1.5), word(" thing.", 2.5, 3.3),
                       word(" Well,", 4.47, 5.03), word(" it", 5.1, 6.4), word(" depends", 6.4, 7.19),
                       word(" on", 7.19, 8.6), word(" time", 8.6, 9.9)]}
    voiced = lambda span: 1.2 if span["end"] - span["start"] > 1.5 else 0.0  # noqa: E731
    assert redecode.doubt(heard, voiced) is None and redecode.better(skipped, heard, voiced)
    # fewer words, or a word stretched over the gap, do not replace it
    assert not redecode.better(skipped, {"text": "Well.", "duration_s": 10.1, "words": [word(" Well.", 4.4, 5.0)]}, voiced)
    assert not redecode.better(skipped, {**heard, "words": [word(" I", 0.2, 4.4), *heard["words"][3:]]}, voiced)


def test_alone_decode_kept_only_when_it_clears_the_doubt():
    stretched = {"text": "and presumably you're", "words": [word(" and", 0.0, 0.7), word(" presumably", 0.7, 3.3)]}
    found = {"text": "to encode this. And presumably you're",
             "words": [word(" to", 0.1, 0.3), word(" presumably", 1.8, 2.4)]}
    shorter = {"text": "presumably you're", "words": [word(" presumably", 0.7, 1.4)]}
    still = {"text": "to encode this. And presumably you're", "words": [word(" presumably", 0.7, 2.9)]}
    assert redecode.better(stretched, found, all_voice)
    assert not redecode.better(stretched, shorter, all_voice)  # fewer words: the skipped ones were not found
    assert not redecode.better(stretched, still, all_voice)
    loop = {"text": "codec two, codec two, codec two, codec.", "words": []}
    assert redecode.better(loop, {"text": "codec two to encode it.", "words": []}, all_voice)  # fewer words, no loop
    assert not redecode.better(loop, {"text": "two, two, two, two", "words": []}, all_voice)
    assert redecode.better({"text": ""}, {"text": "Hi.", "words": [word(" Hi.", 0.1, 0.4)]}, all_voice)
    assert not redecode.better({"text": ""}, {"text": " ", "words": []}, all_voice)


def test_voice_of_a_stretched_word_read_from_the_stem_around_its_clip():
    sr = redecode.SAMPLE_RATE
    rng = np.random.default_rng(0)
    stem = 0.001 * rng.standard_normal(20 * sr).astype(np.float32)  # a room at -60 dBFS
    t = np.arange(int(1.2 * sr)) / sr
    stem[int(10.5 * sr): int(11.7 * sr)] += 0.3 * np.sin(2 * np.pi * 220 * t).astype(np.float32)  # 1.2 s of voice
    reads = []

    def read_stem(path, a, b):
        reads.append((path, a, b))
        return stem[int(a * sr): int(b * sr)]

    voiced = redecode.clip_voice(read_stem, "stem.wav", (10.0, 13.0))
    # a word at 0.2-2.2 s of the clip: 10.2-12.2 s of the stem, 1.2 s of it voice
    assert voiced(word(" presumably", 0.2, 2.2)) == pytest.approx(1.2, abs=0.04)
    assert voiced(word(" pause", 1.8, 2.9)) == pytest.approx(0.0, abs=0.04)
    assert reads == [("stem.wav", 5.0, 18.0)]  # read once, with the floor's surroundings


def test_records_replaced_only_where_the_second_pass_clears_the_doubt(monkeypatch):
    asked = {}

    def fake_decode(spec, jobs, opts, workers, progress, log):
        asked.update(opts=opts, workers=workers, windows={j.name: j.windows for j in jobs})
        for job in jobs:
            for i, w in enumerate(job.windows):
                words = [] if w.clips == (2,) else [{"word": " heard", "start": w.start + 1, "end": w.start + 1.5,
                                                     "probability": 0.9, "segment": 0}]
                job.blocks[i] = DecodedBlock([w], BlockResult([], words, ""), None, [[0.0, 0.0]])
                progress.update(w.end - w.start)

    monkeypatch.setattr(stream_pool, "decode_recordings", fake_decode)
    records = {"rec": [{"clip": f"c{i}", "text": t, "decoding": "batched"}
                       for i, t in enumerate(["One.", "", "", "Four, four, four, four, four."])],
               "other": [{"clip": "o0", "text": "Fine.", "decoding": "batched"}]}

    def records_of(name, blocks):
        return [{"clip": f"c{i}", "text": "".join(w["word"] for w in b.result.words).strip(), "decoding": "batched"}
                for b in blocks for w_ in b.windows for i in w_.clips]

    progress = Progress(10.0, "transcribe", logging.getLogger("test"))
    opts = stream_pool.StreamOptions(beam_size=5, batch_size=8, condition_on_previous_text=True, seed=0)
    plans = {"rec": ("stem.wav", SPANS, "en"), "other": ("o.wav", [(0.0, 2.0)], "en")}
    replaced = redecode.redecode_doubtful(records, plans, None, opts, 0.4, progress, logging.getLogger("test"),
                                          records_of, read_silence)
    assert replaced == 2
    # only the recording with doubtful clips is decoded again, in one process, with no prompt
    assert list(asked["windows"]) == ["rec"] and [w.clips for w in asked["windows"]["rec"]] == [(1,), (2,), (3,)]
    assert asked["workers"] == 1 and asked["opts"].condition_on_previous_text is False and asked["opts"].seed == 0
    assert [(r["text"], r["decoding"]) for r in records["rec"]] == [
        ("One.", "batched"), ("heard", redecode.DECODING), ("", "batched"), ("heard", redecode.DECODING)]
    assert records["other"] == [{"clip": "o0", "text": "Fine.", "decoding": "batched"}]
    # the second pass counts in the progress: its seconds were added to the total, and done
    assert progress.total == pytest.approx(10.0 + (9.15 - 5.1) + (12.4 - 9.15) + (24.4 - 19.6))
    assert progress.done == pytest.approx(progress.total - 10.0)


def test_nothing_to_decode_again(monkeypatch):
    monkeypatch.setattr(stream_pool, "decode_recordings", lambda *a: pytest.fail("decoded with no doubtful clip"))
    progress = Progress(1.0, "transcribe", logging.getLogger("test"))
    records = {"rec": [{"clip": "c0", "text": "Hi.", "decoding": "batched"}]}
    assert redecode.redecode_doubtful(records, {"rec": ("s", [(0.0, 1.0)], None)}, None, None, 0.4, progress,
                                      logging.getLogger("test"), lambda n, b: [], read_silence) == 0
    assert progress.total == 1.0
