"""Whisper windows decoded side by side, each stream of windows conditioned on its own text.

Whisper's sequential long-form decoder reads one 30 s window after the other, each
conditioned on the text before it: the context that makes it the accurate choice, but one
beam search at a time keeps a CPU's matrix units mostly idle. faster-whisper's
``BatchedInferencePipeline`` fills them by decoding many windows in one call, and pays
with the context (every window starts from nothing) and the temperature fallback.

Here the windows are laid out as *streams*: runs of consecutive windows, each decoded in
order with the text of its own previous windows as the prompt, as the sequential decoder
does. Each step decodes the next window of up to ``batch_size`` streams in one encoder pass
and one batched beam search (CTranslate2 takes a prompt per batch item). Context is lost
only where a stream begins. Per window, the rules of the sequential decoder hold:

- a window whose decode looks bad (compression ratio over 2.4, or mean log-probability
  under -1 unless Whisper also judges it silent) is decoded again alone with Whisper's
  temperature fallback, its sampler seeded for that window, so its text never depends on
  the windows it was batched with;
- a window judged silent (no-speech probability over 0.6 and a low log-probability) gives
  no text;
- a window decoded at a temperature over 0.5 starts its stream's context afresh;
- a window is decoded with timestamp tokens; when the decode stops before the window's
  end (Whisper's last segment unfinished), the stream goes on from its last word, as the
  sequential decoder seeks (without timestamps Whisper often stops early and the rest
  of the window is lost);
- a piece of up to 9 s is encoded as 10 s (SHORT_ENCODER_FRAMES), not padded to 30 s,
  so short windows (a folder of short recordings) cost little;
- words are timed by cross-attention alignment, then faster-whisper's word rules apply
  per stream (its last word end carried along the stream only).

A window longer than 30 s (one Whisper pass) is decoded in pieces the same way.

With ``encode_ahead`` (an executor, and a model with a second replica) each stream's next
window is read and encoded while the current one is decoded (one window per encoder pass:
the batches of a single stream hold one window anyway, so its text does not change; tests/
test_stream_decode.py decodes a recording this way alone and in the processes of a shard).

The per-window steps are faster-whisper's own (``get_prompt``, ``generate_with_fallback``,
``_split_segments_by_timestamps``, ``find_alignment``, ``add_word_timestamps``), so the
rules stay those of the sequential decoder; they are internals of faster-whisper 1.2.1,
the version both transcription envs pin (envs/fasterwhisper.yaml, envs/whisperx.yaml).
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

WHISPER_WINDOW_S = 30.0
# Prompt lengths (previous-text tokens) a window can get; 223 is Whisper's own limit
# (max_length // 2 - 1) and about three windows of speech.
CONTEXT_STEPS = (0, 16, 32, 64, 128, 223)
# Whisper's encoder is trained on 30 s inputs (3000 frames, silence-padded); CTranslate2
# also takes shorter ones, at a fraction of the cost (attention is quadratic in length). A
# piece of up to 9 s (a short recording, the rest of a window after an early stop) is
# encoded as 10 s: on real speech in short windows (tests/test_stream_decode.py, bench) the
# word error rate was no worse than at 30 s, and a 3 s recording costs a fifth of the
# encoder time or less.
ENCODER_PAD_FRAMES = 100
SHORT_ENCODER_FRAMES = 1000


@dataclass
class WindowText:
    """One decoded window: its text, words (window-relative seconds) and decode figures."""

    text: str
    words: list[dict]  # word, start, end, probability
    avg_logprob: float
    no_speech_prob: float
    compression_ratio: float
    temperature: float
    language: str


@dataclass
class _Stream:
    windows: list  # windows (``.start``: stem seconds), decoded in order
    language: str | None  # None: detected per window
    done: int = 0
    context: list[int] = field(default_factory=list)  # previous tokens (since the last reset)
    last_speech_s: float = 0.0  # stem time of the stream's last word end (faster-whisper's word rules)
    features: np.ndarray | None = None  # the current window's log-mel frames (computed once)
    encoded: object = None  # its first piece's encoder output, when encoded ahead
    ahead: object = None  # future (features, encoder output) of the next window, when encoded ahead
    seek: int = 0  # how far into the current window decoding has got (frames)
    pieces: list = field(default_factory=list)  # the current window's decoded pieces


def transcription_options(model, beam_size: int, condition_on_previous_text: bool, multilingual: bool):
    """faster-whisper's TranscriptionOptions with ``WhisperModel.transcribe``'s own defaults."""
    from faster_whisper.tokenizer import Tokenizer
    from faster_whisper.transcribe import TranscriptionOptions, WhisperModel, get_suppressed_tokens

    defaults = {k: p.default for k, p in inspect.signature(WhisperModel.transcribe).parameters.items()
                if p.default is not inspect.Parameter.empty}
    temperature = defaults["temperature"]
    # the suppressed tokens are the same whatever the language
    tokenizer = Tokenizer(model.hf_tokenizer, model.model.is_multilingual, task="transcribe", language="en")
    fields = {f: defaults[f] for f in TranscriptionOptions.__dataclass_fields__ if f in defaults}
    fields.update(
        beam_size=beam_size, condition_on_previous_text=condition_on_previous_text,
        temperatures=list(temperature) if isinstance(temperature, (list, tuple)) else [temperature],
        suppress_tokens=get_suppressed_tokens(tokenizer, defaults["suppress_tokens"]),
        without_timestamps=False, word_timestamps=True, multilingual=multilingual, initial_prompt=None,
    )
    return TranscriptionOptions(**fields)


def needs_fallback(avg_logprob: float, compression_ratio: float, no_speech_prob: float, options) -> bool:
    """The sequential decoder's test for decoding a window again at a higher temperature."""
    if options.compression_ratio_threshold is not None and compression_ratio > options.compression_ratio_threshold:
        return True
    low = options.log_prob_threshold is not None and avg_logprob < options.log_prob_threshold
    silent = options.no_speech_threshold is not None and no_speech_prob > options.no_speech_threshold
    return low and not silent


def is_silent(avg_logprob: float, no_speech_prob: float, options) -> bool:
    """The sequential decoder's test for dropping a window's text as silence."""
    if options.no_speech_threshold is None or no_speech_prob <= options.no_speech_threshold:
        return False
    return not (options.log_prob_threshold is not None and avg_logprob > options.log_prob_threshold)


class _Aligned:
    """Stands in for the model in ``WhisperModel.add_word_timestamps``: the batch's
    alignments are computed once, and the word rules then run per window."""

    def __init__(self, model, alignment: list[dict]):
        self.frames_per_second = model.frames_per_second
        self._alignment = alignment

    def find_alignment(self, *args, **kwargs) -> list[list[dict]]:
        return [self._alignment]


def decode_streams(model, streams: list[list], read: Callable[[object], np.ndarray], languages: list[str | None], *,
                   beam_size: int, batch_size: int, condition_on_previous_text: bool, seed: int,
                   on_window: Callable[[int, int, WindowText], None], encode_ahead=None) -> None:
    """Decode every stream's windows in order, up to ``batch_size`` streams per step.

    A window is any object with ``.start`` (stem seconds, where its audio begins);
    ``read(window)`` gives its 16 kHz mono float32 audio;
    ``languages[k]``: stream k's language, None to detect it per window with a
    multilingual model (an English-only model decodes English);
    ``on_window(stream, index, result)`` is called as each window is decoded;
    ``encode_ahead``: an executor (one thread) that reads and encodes each stream's next
    window while this thread decodes, for a model with a second replica (a process that
    has a core to spare: the encoder pass then costs no time of its own).
    """
    from faster_whisper.tokenizer import Tokenizer

    multilingual = bool(model.model.is_multilingual)
    options = transcription_options(model, beam_size, condition_on_previous_text, multilingual)
    tokenizer = Tokenizer(model.hf_tokenizer, multilingual, task="transcribe", language="en")
    state = [_Stream(list(w), (lang if multilingual else "en")) for w, lang in zip(streams, languages)]
    sr = model.feature_extractor.sampling_rate
    while True:
        active = [k for k, s in enumerate(state) if s.done < len(s.windows)][:batch_size]
        if not active:
            return
        groups: dict[tuple[int, int], list[int]] = {}
        for k in active:  # CTranslate2 needs the same prompt and input lengths across a batch
            key = (context_length(len(state[k].context)), encoder_frames(_piece_frames(model, state[k], read)))
            groups.setdefault(key, []).append(k)
        for (length, _), members in sorted(groups.items()):
            _decode_group(model, tokenizer, options, [state[k] for k in members], members, length, read, sr,
                          condition_on_previous_text, seed, on_window, encode_ahead)


def _piece_frames(model, s: _Stream, read) -> int:
    """Frames of the stream's next piece (its window's frames computed once, here)."""
    if s.features is None:  # a window's frames are computed once, and a piece is a slice of them, as
        if s.ahead is not None:  # the sequential decoder does
            (s.features, s.encoded), s.ahead = s.ahead.result(), None
        else:
            s.features = model.feature_extractor(read(s.windows[s.done]))
    return min(model.feature_extractor.nb_max_frames, s.features.shape[-1] - 1 - s.seek)


def _piece_input(model, features: np.ndarray, seek: int) -> np.ndarray:
    """The encoder input of the piece from ``seek``: its frames padded to encoder_frames."""
    from faster_whisper.audio import pad_or_trim

    frames = min(model.feature_extractor.nb_max_frames, features.shape[-1] - 1 - seek)
    return pad_or_trim(features[:, seek : seek + frames], encoder_frames(frames))


def _first_piece(model, window, read):
    """(log-mel frames, encoder output of the first piece) of a window."""
    features = model.feature_extractor(read(window))
    return features, model.encode(_piece_input(model, features, 0)[None])


def _encoder_output(model, streams: list[_Stream], features: np.ndarray):
    """The batch's encoder output: the pieces encoded ahead joined, or one pass now."""
    if not all(s.encoded is not None and s.seek == 0 for s in streams):
        return model.encode(features)
    if len(streams) == 1:
        return streams[0].encoded
    import ctranslate2

    return ctranslate2.StorageView.from_array(np.concatenate([np.asarray(s.encoded) for s in streams]))


def encoder_frames(frames: int) -> int:
    """Encoder input for a piece of ``frames``: SHORT_ENCODER_FRAMES when it fits there with
    at least ENCODER_PAD_FRAMES of padding after it, else Whisper's 30 s. Two sizes only, so
    the batches of a long recording stay whole."""
    return SHORT_ENCODER_FRAMES if frames + ENCODER_PAD_FRAMES <= SHORT_ENCODER_FRAMES else 3000


def context_length(available: int) -> int:
    """Previous-text tokens a window is prompted with: the longest step of CONTEXT_STEPS
    that the stream has. A fixed ladder, so a window's prompt never depends on the other
    windows of its batch, and a batch mostly needs one call."""
    return max(n for n in CONTEXT_STEPS if n <= available)


def _decode_group(model, tokenizer, options, streams: list[_Stream], ids: list[int], length: int, read, sr: int,
                  condition_on_previous_text: bool, seed: int, on_window, encode_ahead=None) -> None:
    """The next piece of each of ``streams``' current window, all prompted with ``length``
    context tokens."""
    from faster_whisper.transcribe import get_compression_ratio

    content = [s.features.shape[-1] - 1 for s in streams]
    frames = [_piece_frames(model, s, read) for s in streams]
    # one encoder length for the whole group (it is part of the group's key)
    features = np.stack([_piece_input(model, s.features, s.seek) for s in streams])
    encoded = _encoder_output(model, streams, features)
    for s in streams:
        s.encoded = None
        if encode_ahead is not None and s.seek == 0 and s.done + 1 < len(s.windows):
            s.ahead = encode_ahead.submit(_first_piece, model, s.windows[s.done + 1], read)
    langs = [s.language for s in streams]
    if None in langs:
        detected = model.model.detect_language(encoded)
        langs = [lang or detected[i][0][0][2:-2] for i, lang in enumerate(langs)]
    toks = [_tokenizer(model, tokenizer, lang) for lang in langs]
    prompts = [model.get_prompt(tok, s.context[len(s.context) - length:] if length else []) for s, tok in zip(streams, toks)]
    results = model.model.generate(
        encoded, prompts, beam_size=options.beam_size, patience=options.patience,
        length_penalty=options.length_penalty, max_length=model.max_length,
        suppress_blank=options.suppress_blank, suppress_tokens=options.suppress_tokens,
        return_scores=True, return_no_speech_prob=True, repetition_penalty=options.repetition_penalty,
        no_repeat_ngram_size=options.no_repeat_ngram_size,
        max_initial_timestamp_index=int(round(options.max_initial_timestamp / model.time_precision)),
    )
    pieces = []
    for i, (tok, result) in enumerate(zip(toks, results)):
        tokens = list(result.sequences_ids[0])
        avg = result.scores[0] * (len(tokens) ** options.length_penalty) / (len(tokens) + 1)
        ratio = get_compression_ratio(tok.decode(tokens).strip())
        temperature = 0.0
        if needs_fallback(avg, ratio, result.no_speech_prob, options) and len(options.temperatures) > 1:
            tokens, avg, temperature, ratio = _fallback(model, features[i : i + 1], prompts[i], tok, options, seed,
                                                        (tokens, avg, ratio))
        seconds = frames[i] / model.frames_per_second
        if is_silent(avg, result.no_speech_prob, options):
            segments, seek, single_end = [], frames[i], True
        else:
            segments, seek, single_end = model._split_segments_by_timestamps(
                tokenizer=tok, tokens=tokens, time_offset=0.0, segment_size=frames[i], segment_duration=seconds, seek=0)
        pieces.append([segments, seek, single_end, avg, float(result.no_speech_prob), ratio, temperature])
    text_tokens = [[t for seg in p[0] for t in seg["tokens"] if t < tokenizer.eot] for p in pieces]
    alignments = _align(model, toks, encoded, text_tokens, frames)
    for i, (k, s, tok) in enumerate(zip(ids, streams, toks)):
        segments, seek, single_end, avg, no_speech, ratio, temperature = pieces[i]
        start = float(s.windows[s.done].start) + s.seek / model.frames_per_second
        words = _words(model, tok, alignments[i], segments, frames[i], options, s.last_speech_s - start) \
            if text_tokens[i] else []
        if words:
            s.last_speech_s = start + words[-1]["end"]
            if not single_end and words[-1]["end"] > 0:  # the decode stopped early: go on from its last word
                seek = round(words[-1]["end"] * model.frames_per_second)
        if not condition_on_previous_text or temperature > options.prompt_reset_on_temperature:
            s.context = []
        else:
            s.context = (s.context + [t for seg in segments for t in seg["tokens"]])[-(model.max_length // 2 - 1):]
        s.pieces.append((s.seek / model.frames_per_second, text_tokens[i], words, avg, no_speech, ratio, temperature,
                         langs[i]))
        s.seek += seek
        if 0 < seek and s.seek < content[i]:
            continue  # the rest of this window is the stream's next piece
        on_window(k, s.done, _window_text(s.pieces, tok))
        s.done, s.features, s.seek, s.pieces = s.done + 1, None, 0, []


def _window_text(pieces: list, tokenizer) -> WindowText:
    """One window's pieces joined (word times from the window's start)."""
    tokens = [t for p in pieces for t in p[1]]
    words = [{**w, "start": w["start"] + p[0], "end": w["end"] + p[0]} for p in pieces for w in p[2]]
    weights = [max(len(p[1]), 1) for p in pieces]
    avg = sum(p[3] * n for p, n in zip(pieces, weights)) / sum(weights)
    return WindowText(tokenizer.decode(tokens), words, float(avg), max(p[4] for p in pieces),
                      float(max(p[5] for p in pieces)), max(p[6] for p in pieces), pieces[0][7])


_TOKENIZERS: dict = {}


def _tokenizer(model, base, language: str):
    """The tokenizer for ``language`` (one per language, reused)."""
    if language == base.language_code:
        return base
    from faster_whisper.tokenizer import Tokenizer

    key = (id(model), language)
    if key not in _TOKENIZERS:
        _TOKENIZERS[key] = Tokenizer(model.hf_tokenizer, True, task="transcribe", language=language)
    return _TOKENIZERS[key]


def _fallback(model, features: np.ndarray, prompt: list[int], tokenizer, options, seed: int, greedy):
    """Decode one window again with the sampling temperatures (seeded for this window);
    among all tries, the sequential decoder's choice: the first that passes, else the most
    probable of those under the compression limit."""
    import ctranslate2
    from dataclasses import replace

    ctranslate2.set_random_seed(seed)
    encoded = model.encode(features)
    result, avg, temperature, ratio = model.generate_with_fallback(
        encoded, prompt, tokenizer, replace(options, temperatures=options.temperatures[1:]))
    tokens = list(result.sequences_ids[0])
    if needs_fallback(avg, ratio, result.no_speech_prob, options):
        tries = [(greedy[0], greedy[1], 0.0, greedy[2]), (tokens, avg, temperature, ratio)]
        limit = options.compression_ratio_threshold
        fine = [t for t in tries if limit is None or t[3] <= limit] or tries
        best = max(fine, key=lambda t: t[1])
        return best[0], best[1], temperature, best[3]
    return tokens, avg, temperature, ratio


def _align(model, tokenizers: list, encoded, text_tokens: list[list[int]], frames: list[int]) -> list[list[dict]]:
    """Cross-attention word alignment of each window with text, one window per call: in a
    batch, the texts are padded to the longest, which moves the word times a little."""
    import ctranslate2

    out: list[list[dict]] = [[] for _ in text_tokens]
    keep = [i for i, t in enumerate(text_tokens) if t]
    if not keep:
        return out
    on_gpu = encoded.device != "cpu"
    array = np.asarray(encoded.to_device(ctranslate2.Device.cpu) if on_gpu else encoded)
    for i in keep:
        one = ctranslate2.StorageView.from_array(np.ascontiguousarray(array[i : i + 1]))
        if on_gpu:
            one = one.to_device(ctranslate2.Device.cuda)
        out[i] = model.find_alignment(tokenizers[i], [text_tokens[i]], one, frames[i])[0]
    return out


def _words(model, tokenizer, alignment: list[dict], segments: list[dict], frames: int, options,
           last_speech_s: float) -> list[dict]:
    """faster-whisper's word rules for one decoded piece (seconds from the piece's start)."""
    from faster_whisper.transcribe import WhisperModel

    WhisperModel.add_word_timestamps(_Aligned(model, alignment), [segments], tokenizer, None, [frames],
                                     options.prepend_punctuations, options.append_punctuations, last_speech_s)
    return [{"word": w["word"], "start": float(w["start"]), "end": float(w["end"]),
             "probability": float(w["probability"])} for seg in segments for w in seg.get("words", [])]
