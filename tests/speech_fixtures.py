"""Real speech and crafted bad clips for transcription tests and benchmarks.

Real speech: Debian's ``asterisk-core-sounds-en-g722`` (studio prompts, one speaker,
CC-BY-SA-3.0) with the texts from ``asterisk-core-sounds-en``. The two packages are fetched
with ``apt-get download`` (Debian's registry) on first use, unpacked with ``dpkg-deb -x``,
and the chosen prompts decoded with ``ffmpeg -f g722``; everything is cached under
``~/.cache/piper-voice-workflow/test-data/asterisk`` (``PVW_CACHE_DIR`` moves it).

Crafted clips: tones/music, near-silence, a phrase repeated, a clip cut inside words, and
German speech from ``espeak-ng`` (wrong language).
"""
from __future__ import annotations

import csv
import gzip
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

PACKAGES = ("asterisk-core-sounds-en-g722", "asterisk-core-sounds-en")
TEXTS = "usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz"
SOUNDS = "usr/share/asterisk/sounds"  # then en_US_f_Allison/ (or en/ in other versions)

# Prompts of 1.5-7 s with plain words (no digits): the "real speech" set.
PROMPTS = (
    "all-circuits-busy-now",
    "cannot-complete-as-dialed",
    "check-number-dial-again",
    "agent-newlocation",
    "auth-incorrect",
    "agent-pass",
    "conf-getpin",
    "pbx-invalid",
    "conf-onlyperson",
    "privacy-unident",
    "vm-nomore",
)


def cache_root() -> Path:
    root = os.environ.get("PVW_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "piper-voice-workflow"
    )
    return Path(root) / "test-data" / "asterisk"


class FixtureUnavailable(RuntimeError):
    """The fixture cannot be built here (no apt-get/ffmpeg/espeak-ng): tests skip on it."""


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    if not shutil.which(cmd[0]):
        raise FixtureUnavailable(f"{cmd[0]} not installed")
    res = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if res.returncode != 0:
        raise FixtureUnavailable(f"{' '.join(cmd[:3])}… failed: {res.stderr.strip()[-400:]}")
    return res


def ensure_asterisk() -> Path:
    """Unpack the two Debian packages once; return the unpacked root."""
    root = cache_root()
    marker = root / ".complete"
    if marker.exists():
        return root / "pkg"
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root) as tmp:
        _run(["apt-get", "download", *PACKAGES], cwd=tmp)
        debs = sorted(Path(tmp).glob("*.deb"))
        if len(debs) < 2:
            raise FixtureUnavailable(f"apt-get download gave {debs}")
        unpack = Path(tmp) / "pkg"
        for deb in debs:
            _run(["dpkg-deb", "-x", str(deb), str(unpack)])
        if (root / "pkg").exists():
            shutil.rmtree(root / "pkg")
        os.replace(unpack, root / "pkg")
    marker.write_text("ok\n")
    return root / "pkg"


def prompt_texts() -> dict[str, str]:
    """name -> reference text of every prompt."""
    texts = {}
    with gzip.open(ensure_asterisk() / TEXTS, "rt", encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if ":" in line and not line.startswith(";"):
                name, text = line.split(":", 1)
                texts[name.strip()] = text.strip()
    return texts


def prompt_audio(name: str, sample_rate: int = 22050) -> np.ndarray:
    """One prompt as float32 mono at ``sample_rate`` (decoded once, cached as WAV)."""
    pkg = ensure_asterisk()
    wav = cache_root() / "wav" / f"{name.replace('/', '_')}_{sample_rate}.wav"
    if not wav.exists():
        found = sorted((pkg / SOUNDS).glob(f"*/{name}.g722"))
        src = found[0] if found else pkg / SOUNDS / f"{name}.g722"
        if not src.exists():
            raise FixtureUnavailable(f"{src}: no such prompt")
        wav.parent.mkdir(parents=True, exist_ok=True)
        tmp = wav.with_suffix(".tmp.wav")
        _run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "g722", "-i", str(src),
              "-ac", "1", "-ar", str(sample_rate), "-c:a", "pcm_s16le", str(tmp)])
        os.replace(tmp, wav)
    audio, sr = sf.read(str(wav), dtype="float32")
    assert sr == sample_rate
    return audio


def espeak_audio(text: str, voice: str = "de", sample_rate: int = 22050) -> np.ndarray:
    """Synthetic speech from espeak-ng (e.g. German for a wrong-language clip)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "x.wav"
        _run(["espeak-ng", "-v", voice, "-s", "150", "-w", str(out), text])
        res = Path(tmp) / "y.wav"
        _run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", str(out), "-ac", "1",
              "-ar", str(sample_rate), "-c:a", "pcm_s16le", str(res)])
        audio, _ = sf.read(str(res), dtype="float32")
    return audio


# ----------------------------------------------------------------- crafted clips


def tones(duration: float = 4.0, sample_rate: int = 22050, seed: int = 0) -> np.ndarray:
    """A little synthetic 'music': chords of harmonics changing every 0.5 s, with a beat."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(duration * sample_rate)) / sample_rate
    out = np.zeros_like(t)
    for k in range(int(np.ceil(duration / 0.5))):
        sl = (t >= k * 0.5) & (t < (k + 1) * 0.5)
        base = 110.0 * 2 ** (rng.integers(0, 24) / 12)
        for mult in (1, 1.25, 1.5, 2):
            out[sl] += np.sin(2 * np.pi * base * mult * t[sl])
        out[sl] *= np.exp(-3 * (t[sl] - k * 0.5))
    return (0.2 * out / np.max(np.abs(out))).astype(np.float32)


def near_silence(duration: float = 3.0, sample_rate: int = 22050, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(int(duration * sample_rate)) * 1e-4).astype(np.float32)


def repeated(audio: np.ndarray, times: int = 6, gap_s: float = 0.15, sample_rate: int = 22050) -> np.ndarray:
    gap = np.zeros(int(gap_s * sample_rate), dtype=np.float32)
    return np.concatenate([np.concatenate([audio, gap]) for _ in range(times)])


def speech_bounds(audio: np.ndarray, sample_rate: int = 22050, thresh_db: float = -35.0) -> tuple[int, int]:
    """First and last sample of frames louder than ``thresh_db`` below the peak frame."""
    hop = int(0.01 * sample_rate)
    frames = audio[: len(audio) // hop * hop].reshape(-1, hop)
    db = 20 * np.log10(np.sqrt(np.mean(frames**2, axis=1)) + 1e-9)
    loud = np.where(db > db.max() + thresh_db)[0]
    return int(loud[0] * hop), int((loud[-1] + 1) * hop)


def cut_inside_words(audio: np.ndarray, sample_rate: int = 22050, into_s: float = 0.18) -> tuple[np.ndarray, tuple[float, float]]:
    """The speech with the context to cut: (audio, (lead_s, tail_s)) such that a clip that
    leaves out ``lead_s`` at the start and ``tail_s`` at the end begins and ends inside a
    word, while the stem around it still holds the whole words."""
    a, b = speech_bounds(audio, sample_rate)
    return audio, ((a / sample_rate) + into_s, (len(audio) - b) / sample_rate + into_s)


# ----------------------------------------------------------------- clips dirs


def write_clips_dir(dest: str | os.PathLike, clips: list[tuple], sample_rate: int = 22050, gap_s: float = 0.5) -> Path:
    """Lay ``clips`` [(name, float audio) or (name, audio, (lead_s, tail_s))] end to end into
    a vocal stem (``dest``/../vocals.wav, ``gap_s`` of silence between them) and write each
    clip (its audio less ``lead_s``/``tail_s`` of context) as a 16-bit WAV plus ``clips.tsv``
    with its span in the stem, as preprocess_clips does."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    gap = np.zeros(int(gap_s * sample_rate), dtype=np.float32)
    rows, parts, pos = [], [gap], len(gap)
    for name, audio, *context in clips:
        lead, tail = context[0] if context else (0.0, 0.0)
        fname = name if name.endswith(".wav") else f"{name}.wav"
        pcm = np.clip(np.round(np.asarray(audio) * 32767), -32768, 32767).astype(np.int16)
        a, b = int(lead * sample_rate), len(pcm) - int(tail * sample_rate)
        sf.write(str(dest / fname), pcm[a:b], sample_rate, subtype="PCM_16")
        rows.append([fname, f"{(pos + a) / sample_rate:.3f}", f"{(pos + b) / sample_rate:.3f}",
                     f"{(b - a) / sample_rate:.3f}", "-23.0", "-23.0"])
        parts += [pcm.astype(np.float32) / 32768, gap]
        pos += len(pcm) + len(gap)
    stem = np.concatenate(parts)
    sf.write(str(dest.parent / "vocals.wav"), np.round(stem * 32767).astype(np.int16), sample_rate, subtype="PCM_16")
    with open(dest / "clips.tsv", "w", newline="") as fh:
        w = csv.writer(fh, delimiter="\t", lineterminator="\n")
        w.writerow(["clip", "start_s", "end_s", "duration_s", "lufs_before", "lufs_after"])
        w.writerows(rows)
    return dest


def config_section(section: str, **overrides) -> dict:
    """A config section as the workflow's schema fills it, with ``overrides``."""
    from snakemake.utils import validate

    cfg = {section: dict(overrides)}
    validate(cfg, schema=str(Path(__file__).resolve().parents[1] / "schemas" / "config.schema.yaml"), set_default=True)
    return cfg[section]


def transcription_config(**overrides) -> dict:
    """The ``transcription`` section as the workflow's schema fills it, with ``overrides``."""
    return config_section("transcription", **overrides)


def speech_clips(rec: str = "rec", names: tuple[str, ...] = PROMPTS, sample_rate: int = 22050) -> tuple[list, dict]:
    """([(clip name, audio)], {clip file: reference text}) for real prompts."""
    texts = prompt_texts()
    clips, refs = [], {}
    for i, name in enumerate(names, 1):
        clip = f"{rec}_{i:05d}"
        clips.append((clip, prompt_audio(name, sample_rate)))
        refs[f"{clip}.wav"] = texts[name]
    return clips, refs


GERMAN = "Guten Morgen, meine Damen und Herren. Heute sprechen wir über das Wetter in Berlin."


def gate_cases(rec: str = "bad", sample_rate: int = 22050) -> tuple[list, dict]:
    """Crafted bad clips: ([(clip, audio)], {clip file: expected reason prefix})."""
    clips = [
        (f"{rec}_00001", tones(4.0, sample_rate), "non_speech"),
        (f"{rec}_00002", near_silence(3.0, sample_rate), "non_speech"),
        (f"{rec}_00003", repeated(prompt_audio("auth-thankyou", sample_rate), 8, 0.1, sample_rate), "repetition"),
        (f"{rec}_00004", *cut_inside_words(prompt_audio("all-circuits-busy-now", sample_rate), sample_rate), "cut"),
        (f"{rec}_00005", espeak_audio(GERMAN, "de", sample_rate), "wrong_language"),
    ]
    return [c[:-1] for c in clips], {f"{c[0]}.wav": c[-1] for c in clips}


# ----------------------------------------------------------------- WER


def words_for_wer(text: str) -> list[str]:
    from workflow_scripts.quality_gate import normalize_text

    text = normalize_text(text).lower()
    text = re.sub(r"[^a-z0-9' ]+", " ", text.replace("-", " "))
    return [w.strip("'") for w in text.split() if w.strip("'")]


def word_errors(ref: str, hyp: str) -> tuple[int, int]:
    """(edit distance in words, reference length) after normalisation."""
    r, h = words_for_wer(ref), words_for_wer(hyp)
    prev = list(range(len(h) + 1))
    for i, rw in enumerate(r, 1):
        cur = [i] + [0] * len(h)
        for j, hw in enumerate(h, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (rw != hw))
        prev = cur
    return prev[-1], len(r)


def wer(refs: list[str], hyps: list[str]) -> float:
    """Corpus WER: total word edits / total reference words."""
    errs = tot = 0
    for r, h in zip(refs, hyps):
        e, n = word_errors(r, h)
        errs, tot = errs + e, tot + n
    return errs / max(tot, 1)
