"""Synthesising the evaluation sentences with a Piper voice and scoring each one with the
models of the evaluation (workflow_scripts/voice_eval.py has the report and the CLI; what each
measure means: its docstring and workflow_scripts/voice_metrics.py). Scoring env.
"""
import json
import time
from pathlib import Path

import numpy as np

from workflow_scripts import voice_metrics as vm
from workflow_scripts.io_utils import StageError


class EvaluationModels:
    """Whisper, DNSMOS and the speaker encoder, loaded once."""

    def __init__(self, settings: dict, threads: int, log):
        from workflow_scripts.audio_quality import DnsmosScorer
        from workflow_scripts.speaker_similarity import SpeakerEncoder
        from workflow_scripts.whisper_loading import load_whisper, resolve_device

        t0 = time.monotonic()
        self.threads = max(1, int(threads))
        device, self.compute_type = resolve_device(settings["device"], settings["compute_type"])
        self.whisper, self.whisper_label, self.device = load_whisper(
            settings["whisper_model"], device, self.compute_type, self.threads, log)
        self.beam_size = int(settings["beam_size"])
        self.dnsmos = DnsmosScorer(threads=self.threads, max_windows=settings["dnsmos_max_windows"],
                                   use_providers=None if self.device == "cuda" else ["CPUExecutionProvider"])
        import torch

        # one torch thread: the GE2E LSTM on a sentence's few 1.6 s partials gains nothing from a
        # second one, which on a shared CPU mostly spins (2-4x the CPU time measured at 2 threads)
        self.encoder = SpeakerEncoder(device="cuda" if self.device == "cuda" and torch.cuda.is_available() else "cpu",
                                      threads=1)
        self.load_s = time.monotonic() - t0
        log.info("evaluation models loaded in %.1f s (Whisper %s on %s/%s, DNSMOS, speaker encoder)",
                 self.load_s, self.whisper_label, self.device, self.compute_type)

    def transcribe(self, audio_16k: np.ndarray, language: str) -> str:
        if len(audio_16k) < 160:  # under 10 ms: nothing to hear
            return ""
        segments, _ = self.whisper.transcribe(
            audio_16k, language=language, beam_size=self.beam_size, temperature=0.0,
            condition_on_previous_text=False, vad_filter=False, without_timestamps=True)
        return " ".join(s.text.strip() for s in segments).strip()


def reference_embedding(paths, encoder, max_clips: int) -> tuple[np.ndarray, dict]:
    """(the speaker's reference direction, {"sources", "embeddings"}) from .npy embedding files,
    audio files and folders of WAVs (module docstring)."""
    from workflow_scripts.speaker_similarity import EMBED_DIM, mean_direction

    rows, sources = [], []
    for p in map(Path, paths):
        if p.suffix == ".npy":
            try:
                rows.extend(np.asarray(np.load(p), dtype=np.float32).reshape(-1, EMBED_DIM))
            except (OSError, ValueError) as exc:
                raise StageError(f"{p}: not an array of {EMBED_DIM}-d speaker embeddings ({exc})") from exc
        else:
            files = sorted(p.glob("*.wav")) if p.is_dir() else [p]
            if not files or not all(f.is_file() for f in files):
                raise StageError(f"{p}: no reference audio there")
            if len(files) > max_clips:
                files = [files[i] for i in np.unique(np.round(np.linspace(0, len(files) - 1, max_clips)).astype(int))]
            rows.extend(encoder.embed_file(f) for f in files)
        sources.append(str(p))
    try:
        return mean_direction(np.stack(rows) if rows else np.zeros((0, EMBED_DIM))), {"sources": sources, "embeddings": len(rows)}
    except ValueError as exc:
        raise StageError(f"speaker reference {', '.join(sources) or '(none given)'}: {exc}") from exc


def load_voice(onnx_path, config_path, seed: int, threads: int):
    """(PiperVoice, its JSON config) on onnxruntime's CPU provider with ``threads`` threads."""
    import onnxruntime as ort
    from piper import PiperVoice
    from piper.config import PiperConfig

    try:
        cfg = json.loads(Path(config_path).read_text(encoding="utf-8"))
        config = PiperConfig.from_dict(cfg)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise StageError(f"{config_path}: unreadable Piper voice config ({type(exc).__name__}: {exc})") from exc
    # Piper's graph draws its noise with RandomNormalLike, whose kernels take onnxruntime's
    # global seed when the session is built: seeded here, the synthesis is reproducible
    ort.set_seed(int(seed))
    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        session = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # noqa: BLE001 - onnxruntime raises several types
        raise StageError(f"{onnx_path}: onnxruntime cannot load the voice ({exc})") from exc
    return PiperVoice(session=session, config=config), cfg


def synthesise(voice, text: str) -> tuple[np.ndarray, int]:
    """(the model's raw float32 output, phonemes) for ``text``: all of Piper's sentence chunks
    back to back, as ``PiperVoice.synthesize_wav`` writes them, without its normalisation."""
    from piper.config import SynthesisConfig

    chunks = list(voice.synthesize(text, SynthesisConfig(normalize_audio=False)))
    raw = np.concatenate([c.audio_float_array for c in chunks]) if chunks else np.zeros(0, np.float32)
    return raw.astype(np.float32), sum(len(c.phonemes) for c in chunks)


def as_heard(raw: np.ndarray) -> np.ndarray:
    """Piper's default output: peak-normalised to full scale (silence stays silence), as
    ``PiperVoice.synthesize`` does with ``normalize_audio``."""
    peak = float(np.max(np.abs(raw))) if len(raw) else 0.0
    return (raw / peak).astype(np.float32) if peak >= 1e-8 else np.zeros_like(raw)


def score_sentence(models: EvaluationModels, text: str, raw: np.ndarray, sr: int, reference: np.ndarray,
                   language: str, settings: dict, timing: dict) -> dict:
    """Every measure of one sentence's raw output (the record in the report, without index/wav);
    adds the seconds spent per model to ``timing``."""
    from workflow_scripts.audio_quality import SR, to_16k
    from workflow_scripts.speaker_similarity import similarity

    a16 = to_16k(as_heard(raw), sr)
    t0 = time.monotonic()
    transcript = models.transcribe(a16, language)
    t1 = time.monotonic()
    emb = models.encoder.embed(a16, SR)
    t2 = time.monotonic()
    ovrl = models.dnsmos.score(a16, SR)["ovrl"]
    for key, seconds in (("transcription_s", t1 - t0), ("speaker_s", t2 - t1), ("dnsmos_s", time.monotonic() - t2)):
        timing[key] = timing.get(key, 0.0) + seconds
    words, chars = vm.word_edits(text, transcript, language), vm.char_edits(text, transcript, language)
    levels = vm.level_measures(raw, sr)
    expected = vm.expected_seconds(text, settings["chars_per_second"], language)
    ratio = levels["seconds"] / expected
    return {"text": text, "transcript": transcript, "wer": round(vm.error_rate([words]), 4),
            "cer": round(vm.error_rate([chars]), 4), "word_edits": list(words), "char_edits": list(chars),
            "similarity": round(float(similarity(emb, reference)), 4), "dnsmos_ovrl": ovrl,
            "seconds": levels["seconds"], "expected_seconds": round(expected, 3), "duration_ratio": round(ratio, 4),
            "levels": levels, "flags": vm.flags(levels, ratio, settings)}
