"""The speaker gate in a conversation: how much of the target's speech is kept, how much of
the other voice gets into the kept clips.

    python3 envs/setup_venvs.py scoring
    $(python3 envs/setup_venvs.py --print-path scoring)/bin/python bench/bench_conversation.py \\
        [--inputs joe,joe-quick,june] [--threads 2] [--out bench/out/conversation.json] \\
        [--config '{"segmentation": {"island_max_s": 0}}']

Each input is built from real speech (bench/bench_gates.py's sources): the target (Debian's
Asterisk voice, 60 prompts) talks with 0.3-0.9 s between her phrases; after every second
phrase the other voice answers in one word 0.2-0.4 s after her ("Yeah.", "Right.", 0 to 6 dB
under her level) and she goes on 0.25-0.45 s later; every tenth phrase he or she takes a turn
of a sentence, 1.2 s apart (``joe-quick``: 0.3 s, so that segmentation has no pause to tell
the turn by). ``joe``: Piper's en_US joe (a man; words synthesised); ``june``: Asterisk's
fr-CA voice (a woman recorded on the same studio chain; her one-word answers are the first
word of her prompts). A room-tone bed at -45 dBFS under all of it. ``telephone``: a real
telephone conversation, two women whose turns are latched or overlap (the 30 s sample in
pyannote.audio's wheel, with its speakers' turns and words; bench/longform_inputs.py fetches
it from PyPI): no pause tells the turns apart, and the target is whichever voice the gate
takes (the other is "other").

The workflow runs to metadata.csv (bench/bench_dataset.run_ours: faster-whisper tiny.en,
``separation: none``, defaults otherwise, or with ``--config``'s sections) and each clip is
matched to the known voice
intervals. Printed per input: target yield (the target's seconds inside kept clips / all her
seconds), the other voice's seconds inside kept clips, the kept clips holding more than 0.2 s
of the other voice, the kept clips' WER against her phrases (``kept_wer``: each kept clip's text
against the phrases whose middle falls inside it), and the rejections by reason.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np

sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parent.parent / "tests")]

import bench_dataset as bd  # noqa: E402
import bench_gates as bg  # noqa: E402
from longform_inputs import REPO, default_cache, pyannote_sample, pyannote_turns, room_tone  # noqa: E402
from speech_fixtures import words_for_wer  # noqa: E402

SR = bg.SR
ANSWERS = ["Yeah.", "Right.", "Okay.", "Mm-hm.", "Sure.", "I see.", "Uh-huh.", "Exactly.", "Really?", "Oh.",
           "Yes.", "No.", "Wow.", "True.", "Hmm."]
TURNS = ["I was thinking the same thing when we talked about it last week.",
         "That makes sense, but I am not sure everybody will agree with it.",
         "Well, it depends on how much time we have left before the deadline.",
         "We could ask them again tomorrow morning and see what they say.",
         "Honestly I did not expect it to go that well on the first try.",
         "Let me check my notes, I think I wrote that number down somewhere."]


def first_word(audio: np.ndarray, lo: float = 0.2, hi: float = 1.0) -> np.ndarray | None:
    """The speech before the first pause of 80 ms or more (``lo``-``hi`` s long), or None."""
    db = bg.frame_db(audio, SR, 0.01)
    active = db > db.max() - 30
    start = int(np.flatnonzero(active)[0])
    quiet = 0
    for i in range(start, len(active)):
        quiet = quiet + 1 if not active[i] else 0
        if quiet >= 8 and lo <= (i - 8 - start) * 0.01 <= hi:
            return audio[int(start * 0.01 * SR): int((i - 5) * 0.01 * SR)]
    return None


def telephone() -> tuple[np.ndarray, list[list]]:
    """pyannote.audio's sample conversation at SR and its turns [[start_s, end_s, speaker, text]]."""
    import soundfile as sf
    import soxr

    wav, stm = pyannote_sample(default_cache())
    audio, rate = sf.read(str(wav), dtype="float32")
    return soxr.resample(audio, rate, SR).astype(np.float32), [list(t) for t in pyannote_turns(stm)]


def target_voice(clips: list[dict], truth: list[list]) -> list[list]:
    """``truth`` with the voice that most of the kept clips' seconds belong to named "target"
    (a real conversation has no target of its own: the gate takes one of its voices; with
    nothing kept, the voice that speaks most)."""
    if any(v == "target" for _, _, v, _ in truth):
        return truth
    kept, total = Counter(), Counter()
    for s, e, voice, _ in truth:
        total[voice] += e - s
        kept[voice] += sum(max(0.0, min(c["end"], e) - max(c["start"], s)) for c in clips if c["kept"])
    mine = max(sorted(total), key=lambda v: (kept[v], total[v]))
    return [[s, e, "target" if v == mine else v, x] for s, e, v, x in truth]


def build(name: str, seed: int = 7) -> tuple[np.ndarray, list[list]]:
    """(audio at SR, [[start_s, end_s, voice], ...]) of input ``name``."""
    if name == "telephone":
        return telephone()
    other, turn_gap = name.split("-")[0], 0.3 if name.endswith("-quick") else 1.2
    rng = np.random.default_rng(seed)
    names = [n for n, _ in bg.prompt_pool()]
    target = bg.target_clips(names[60:120])
    if other == "joe":
        answers = [a for _, a in bg.joe_clips(ANSWERS)]
        turns = [a for _, a in bg.joe_clips(TURNS)]
    else:
        june = bg.asterisk_voice("june", 60)
        answers = [w for w in (first_word(a) for _, a in june[6:]) if w is not None]
        turns = [a for _, a in june[:6]]
    parts, truth, t = [np.zeros(SR, np.float32)], [], 1.0

    def add(audio: np.ndarray, voice: str, gap: float, gain_db: float = 0.0, text: str = "") -> None:
        nonlocal t
        audio = bg.level(audio) * np.float32(10 ** (gain_db / 20))
        truth.append([round(t, 3), round(t + len(audio) / SR, 3), voice, text])
        parts.extend([audio, np.zeros(int(gap * SR), np.float32)])
        t += len(audio) / SR + gap

    texts = dict(bg.prompt_pool())
    n_answer = n_turn = 0
    for k, (prompt, audio) in enumerate(target):
        if k % 10 == 9 and n_turn < len(turns):
            if turn_gap < 1:  # the turn comes straight after the last voice, not after its pause
                parts[-1] = np.zeros(int(turn_gap * SR), np.float32)
                t = truth[-1][1] + turn_gap
            add(turns[n_turn], other, turn_gap)
            n_turn += 1
        if k % 2:
            add(audio, "target", rng.uniform(0.2, 0.4), text=texts[prompt])
            add(answers[n_answer % len(answers)], other, rng.uniform(0.25, 0.45), rng.uniform(-6, 0))
            n_answer += 1
        else:
            add(audio, "target", rng.uniform(0.3, 0.9), text=texts[prompt])
    audio = np.concatenate(parts)
    audio = audio + np.float32(10 ** (-45 / 20)) * room_tone(len(audio), rng, 3000).astype(np.float32)
    return audio, truth


def measure(clips: list[dict], truth: list[list]) -> dict:
    """Her yield, the other voice's seconds in kept clips, and the kept clips' WER against her
    phrases whose middle falls inside them (a phrase cut short, or a word of it given to the
    clip before, counts as deleted)."""
    total, kept, mixed, errors, words = Counter(), Counter(), 0, 0, 0
    for s, e, voice, _ in truth:
        total[voice] += e - s
    for c in clips:
        overlap = Counter()
        for s, e, voice, _ in truth:
            overlap[voice] += max(0.0, min(c["end"], e) - max(c["start"], s))
        if c["kept"]:
            kept.update(overlap)
            mixed += sum(v for k, v in overlap.items() if k != "target") > 0.2
            ref = words_for_wer(" ".join(x for s, e, v, x in truth if v == "target" and c["start"] <= (s + e) / 2 < c["end"]))
            hyp = words_for_wer(c["text"])
            errors += sum(i is None or j is None or ref[i] != hyp[j] for i, j in bd.align(ref, hyp))
            words += len(ref)
    other = sum(v for k, v in total.items() if k != "target")
    return {"target_s": round(total["target"], 1), "target_yield": round(kept["target"] / total["target"], 3),
            "other_s": round(other, 1), "other_kept_s": round(sum(v for k, v in kept.items() if k != "target"), 1),
            "clips": len(clips), "kept": sum(c["kept"] for c in clips), "kept_with_other_voice": mixed,
            "kept_wer": round(errors / words, 4) if words else None, "kept_errors": errors, "kept_words": words}


def main() -> int:
    import soundfile as sf

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--inputs", default="joe,joe-quick,june")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(REPO / "bench" / "out" / "conversation.json"))
    ap.add_argument("--config", default="{}", help="config sections (JSON) the workflow runs with")
    args = ap.parse_args()
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-conversation-") as tmp:
        for name in args.inputs.split(","):
            audio, truth = build(name)
            wav = Path(tmp) / f"conv_{name}.wav"
            sf.write(str(wav), audio, SR, subtype="PCM_16")
            clips, reasons, wall, _ = bd.run_ours(f"conv_{name}", wav, args.threads, json.loads(args.config))
            results[name] = {**measure(clips, target_voice(clips, truth)), "rejected": dict(sorted(reasons.items())), "wall_s": round(wall, 1)}
            print(name, json.dumps(results[name]), flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
