"""Recordings for the audio gates' end-to-end test (run with the scoring env's python: the
other voice is Piper's joe, synthesised with piper-tts).

    python tests/gate_recordings.py OUT

Writes, all real speech at 22050 Hz:

* ``OUT/raw/talk.wav``: eight rounds of three target prompts (Debian's Asterisk voice,
  0.6 s apart), then a sentence of Piper's en_US joe (a man) and a prompt of June
  (Asterisk's fr-CA voice, another woman recorded the same way), 2.5 s apart; in the odd
  rounds joe answers the target 0.6 s after her last prompt, as in a conversation, so
  preprocess joins the two voices into one clip; in every fourth round he also says "Right."
  (0.5 s) 0.6 s after her first prompt, and she goes on 0.6 s later (preprocess joins his
  word to her phrases);
* ``OUT/raw/noisy.wav``: four further target prompts under real HF-radio noise at 0 dB SNR;
* ``OUT/reference/ref_{1,2,3}.wav``: three further target prompts (the speaker reference);
* ``OUT/truth.json``: ``{"talk": [[start_s, end_s, voice], ...]}`` (voice: target, joe, june).

Exit status 3 when a source cannot be fetched (the test then skips, or fails under CI).
"""
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests"), str(REPO / "bench")]

import bench_gates as bg  # noqa: E402
import speech_fixtures as sfx  # noqa: E402

SR = bg.SR
ROUNDS = 8


def silence(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * SR), np.float32)


def build(out: Path) -> None:
    import soundfile as sf

    pool = bg.prompt_pool()
    names, texts = [n for n, _ in pool], [t for _, t in pool]
    target = bg.target_clips(names[: 3 * ROUNDS + 7])
    joe = bg.joe_clips(texts[100:100 + ROUNDS])
    right = bg.joe_clips(["Right."])[0][1]
    june = bg.asterisk_voice("june", ROUNDS)
    parts, truth, t = [silence(1.0)], [], 1.0
    for k in range(ROUNDS):
        pieces = [(a, "target", 0.6) for _, a in target[3 * k: 3 * k + 3]]
        if not k % 2:
            pieces[-1] = (pieces[-1][0], "target", 2.5)
        if k % 4 == 3:
            pieces.insert(1, (right, "joe", 0.6))
        pieces += [(joe[k][1], "joe", 2.5), (june[k][1], "june", 2.5)]
        for audio, voice, gap in pieces:
            audio = bg.level(audio)
            truth.append([round(t, 3), round(t + len(audio) / SR, 3), voice])
            parts += [audio, silence(gap)]
            t += len(audio) / SR + gap
    (out / "raw").mkdir(parents=True, exist_ok=True)
    sf.write(str(out / "raw" / "talk.wav"), np.concatenate(parts), SR, subtype="PCM_16")
    clean = np.concatenate([x for _, a in target[3 * ROUNDS: 3 * ROUNDS + 4] for x in (silence(1.0), bg.level(a))]
                           + [silence(1.0)])
    noise = bg.real_noises()["hf"]
    noisy = bg.mix(clean, noise, 0.0)
    sf.write(str(out / "raw" / "noisy.wav"), noisy, SR, subtype="PCM_16")
    (out / "reference").mkdir(exist_ok=True)
    for i, (_, a) in enumerate(target[3 * ROUNDS + 4:], 1):
        sf.write(str(out / "reference" / f"ref_{i}.wav"), bg.level(a), SR, subtype="PCM_16")
    (out / "truth.json").write_text(json.dumps({"talk": truth}) + "\n", encoding="utf-8")


if __name__ == "__main__":
    try:
        build(Path(sys.argv[1]))
    except sfx.FixtureUnavailable as exc:
        print(f"speech fixtures unavailable: {exc}", file=sys.stderr)
        sys.exit(3)
