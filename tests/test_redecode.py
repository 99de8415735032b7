"""Clips that got no words, decoded again alone: which clips, their windows, and the records
replaced (the decoder faked: it records what it was asked and answers with known words)."""
from __future__ import annotations

import logging

import pytest

from workflow_scripts import redecode, stream_pool
from workflow_scripts.decode_pool import DecodedBlock
from workflow_scripts.decode_windows import Window
from workflow_scripts.io_utils import Progress
from workflow_scripts.longform_decode import BlockResult

SPANS = [(1.0, 5.0), (5.2, 9.0), (9.3, 12.0), (20.0, 24.0)]


def test_unheard_and_their_own_windows():
    recs = [{"text": "Hello there."}, {"text": ""}, {"text": "  "}, {"text": "Bye."}]
    assert redecode.unheard(recs) == [1, 2]
    # each clip alone, its lead meeting the neighbours halfway in the gaps
    assert redecode.alone_windows(SPANS, [1, 2, 3], 0.4) == [
        Window(5.1, 9.15, (1,)), Window(9.15, 12.4, (2,)), Window(19.6, 24.4, (3,))]
    assert redecode.alone_windows(SPANS, [0], 0.4) == [Window(0.6, 5.1, (0,))]


def test_records_replaced_only_where_the_second_pass_hears_words(monkeypatch):
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
                       for i, t in enumerate(["One.", "", "", "Four."])],
               "other": [{"clip": "o0", "text": "Fine.", "decoding": "batched"}]}

    def records_of(name, blocks):
        return [{"clip": f"c{i}", "text": "".join(w["word"] for w in b.result.words).strip(), "decoding": "batched"}
                for b in blocks for w_ in b.windows for i in w_.clips]

    progress = Progress(10.0, "transcribe", logging.getLogger("test"))
    opts = stream_pool.StreamOptions(beam_size=5, batch_size=8, condition_on_previous_text=True, seed=0)
    plans = {"rec": ("stem.wav", SPANS, "en"), "other": ("o.wav", [(0.0, 2.0)], "en")}
    heard = redecode.redecode_unheard(records, plans, None, opts, 0.4, progress, logging.getLogger("test"), records_of)
    assert heard == 1
    # only the recording with unheard clips is decoded again, in one process, with no prompt
    assert list(asked["windows"]) == ["rec"] and [w.clips for w in asked["windows"]["rec"]] == [(1,), (2,)]
    assert asked["workers"] == 1 and asked["opts"].condition_on_previous_text is False and asked["opts"].seed == 0
    assert [(r["text"], r["decoding"]) for r in records["rec"]] == [
        ("One.", "batched"), ("heard", redecode.DECODING), ("", "batched"), ("Four.", "batched")]
    assert records["other"] == [{"clip": "o0", "text": "Fine.", "decoding": "batched"}]
    # the second pass counts in the progress: its seconds were added to the total, and done
    assert progress.total == pytest.approx(10.0 + (9.15 - 5.1) + (12.4 - 9.15))
    assert progress.done == pytest.approx(progress.total - 10.0)


def test_nothing_to_decode_again(monkeypatch):
    monkeypatch.setattr(stream_pool, "decode_recordings", lambda *a: pytest.fail("decoded with no unheard clip"))
    progress = Progress(1.0, "transcribe", logging.getLogger("test"))
    records = {"rec": [{"clip": "c0", "text": "Hi.", "decoding": "batched"}]}
    assert redecode.redecode_unheard(records, {"rec": ("s", [(0.0, 1.0)], None)}, None, None, 0.4, progress,
                                     logging.getLogger("test"), lambda n, b: []) == 0
    assert progress.total == 1.0
