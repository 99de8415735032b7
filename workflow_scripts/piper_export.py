"""Export a trained checkpoint to a Piper voice and smoke-test it (piper env).

Rule ``export_voice``: the generator weights (``checkpoints/chunk_{n}.weights.ckpt``; a full
Lightning state works too) of the chunk ``voice/selection.json`` chose -> ``{root}/voice/voice.onnx``
+ ``voice.onnx.json``. Rule ``export_chunk`` exports one chunk's weights for its evaluation.
The ONNX graph comes from piper's own ``piper.train.export_onnx``, run through
``workflow_scripts.piper_train export`` which selects torch's legacy exporter
(``dynamo=False``: torch >= 2.9's default exporter needs ``onnxscript``) and loads the
generator without the discriminator a weights file lacks.
The JSON is built with piper's ``PiperConfig`` from the checkpoint's hyper-parameters and the
training espeak voice, then checked the way the ``piper`` runtime reads it.

Rule ``smoke_test``: loads the voice with piper's Python API (``PiperVoice``), synthesises
fixed sentences into ``smoke_test.wav`` and fails if the audio is missing, silent, too short,
not finite, at the wrong rate, or the JSON lacks what Piper needs; ``smoke_test.json``
records the measurements and the exported chunk's evaluation: ``audio_ok`` (the checks
passed), ``intelligibility``/``verdict`` (from voice/selection.json) and ``ok`` = audio_ok and
not "not intelligible yet". An unintelligible voice is reported, not failed: a toy run still
ends with its (noise-speaking) voice.
"""

import json
import sys
import time
import wave
from pathlib import Path

if "snakemake" in globals():
    sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parent))  # noqa: F821

from workflow_scripts.io_utils import StageError, atomic_path, run_stage
from workflow_scripts.piper_train import completed_epochs, load_checkpoint, run_logged, subprocess_env

REQUIRED_KEYS = ("audio", "espeak", "num_symbols", "num_speakers", "phoneme_id_map", "phoneme_type", "inference")
DEFAULT_SENTENCES = [
    "This is a smoke test of the new voice.",
    "The quick brown fox jumps over the lazy dog.",
]


def check_voice_config(cfg: dict, where) -> None:
    """Raise StageError if the JSON lacks anything the piper runtime reads."""
    missing = [k for k in REQUIRED_KEYS if k not in cfg]
    if missing:
        raise StageError(f"{where}: voice config lacks {', '.join(missing)}")
    if not isinstance(cfg["audio"], dict) or not isinstance(cfg["audio"].get("sample_rate"), int):
        raise StageError(f"{where}: audio.sample_rate missing or not an integer")
    if not cfg["espeak"].get("voice"):
        raise StageError(f"{where}: espeak.voice missing")
    id_map = cfg["phoneme_id_map"]
    for sym in ("^", "$", "_"):
        if sym not in id_map:
            raise StageError(f"{where}: phoneme_id_map lacks {sym!r} (BOS/EOS/PAD)")
    top = max(i for ids in id_map.values() for i in ids)
    if top >= cfg["num_symbols"]:
        raise StageError(f"{where}: phoneme id {top} >= num_symbols {cfg['num_symbols']}")
    for k in ("noise_scale", "length_scale", "noise_w"):
        if k not in cfg["inference"]:
            raise StageError(f"{where}: inference.{k} missing")


def voice_config(checkpoint, espeak_voice: str, quality: str, dataset_name: str) -> dict:
    """Piper's voice JSON from the checkpoint hyper-parameters (needs torch + piper)."""
    import importlib.metadata

    from piper.config import PhonemeType, PiperConfig
    from piper.phoneme_ids import DEFAULT_PHONEME_ID_MAP

    ckpt = load_checkpoint(checkpoint)  # read once: hyper-parameters and epoch count
    hp = ckpt.get("hyper_parameters") or {}
    if "sample_rate" not in hp or "num_symbols" not in hp:
        raise StageError(f"{checkpoint}: no piper hyper-parameters (sample_rate/num_symbols)")
    cfg = PiperConfig(
        num_symbols=int(hp["num_symbols"]),
        num_speakers=int(hp.get("num_speakers", 1)),
        sample_rate=int(hp["sample_rate"]),
        espeak_voice=espeak_voice,
        phoneme_id_map=DEFAULT_PHONEME_ID_MAP,
        phoneme_type=PhonemeType.ESPEAK,
        piper_version=importlib.metadata.version("piper-tts"),
        hop_length=int(hp.get("hop_length", 256)),
    ).to_dict()
    cfg["audio"]["quality"] = quality
    cfg["dataset"] = dataset_name
    cfg["language"] = {"code": espeak_voice}
    cfg["training"] = {"epochs": completed_epochs(ckpt), "global_step": int(ckpt.get("global_step", 0)),
                       "checkpoint": Path(checkpoint).name}
    return cfg


def export_voice(checkpoint, onnx_out, json_out, espeak_voice: str, quality: str, dataset_name: str,
                 threads: int, log) -> None:
    checkpoint, onnx_out = Path(checkpoint), Path(onnx_out)
    if not checkpoint.is_file():
        raise StageError(f"{checkpoint}: checkpoint does not exist")
    cfg = voice_config(checkpoint, espeak_voice, quality, dataset_name)
    check_voice_config(cfg, json_out)
    with atomic_path(onnx_out) as tmp:
        cmd = [sys.executable, "-m", "workflow_scripts.piper_train", "export", "--",
               "--checkpoint", str(checkpoint), "--output-file", str(tmp)]
        t0 = time.monotonic()
        rc, tail = run_logged(cmd, log, env=subprocess_env(threads))
        if rc != 0 or not tmp.exists() or tmp.stat().st_size == 0:
            raise StageError(f"{onnx_out}: ONNX export failed (exit {rc}: {(tail or [''])[-1][:300]})")
        import onnx

        try:
            onnx.checker.check_model(str(tmp))
        except Exception as exc:
            raise StageError(f"{onnx_out}: exported model fails onnx.checker ({exc})") from exc
        log.info("exported %s (%.1f MB) in %.1fs", onnx_out, tmp.stat().st_size / 1e6, time.monotonic() - t0)
    with atomic_path(json_out) as tmp:
        tmp.write_text(json.dumps(cfg, indent=2, ensure_ascii=False), encoding="utf-8")


def smoke_test(onnx_path, json_path, wav_out, report_out, sentences, expected_rate: int | None, log,
               min_rms: float = 1e-3, selection: dict | None = None) -> dict:
    import numpy as np
    from piper import PiperVoice
    from piper.config import PiperConfig

    try:
        cfg = json.loads(Path(json_path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise StageError(f"{json_path}: unreadable voice config ({exc})") from exc
    check_voice_config(cfg, json_path)
    PiperConfig.from_dict(cfg)  # the runtime's own parser must accept it
    rate = cfg["audio"]["sample_rate"]
    if expected_rate and rate != expected_rate:
        raise StageError(f"{json_path}: sample rate {rate}, expected {expected_rate} (training preset)")
    try:
        voice = PiperVoice.load(str(onnx_path), config_path=str(json_path))
    except Exception as exc:
        raise StageError(f"{onnx_path}: piper cannot load the voice ({exc})") from exc

    results, all_audio = [], []
    for text in sentences or DEFAULT_SENTENCES:
        t0 = time.monotonic()
        chunks = list(voice.synthesize(text))
        took = time.monotonic() - t0
        if not chunks:
            raise StageError(f"{onnx_path}: no audio for {text!r}")
        for c in chunks:
            if c.sample_rate != rate or c.sample_channels != 1 or c.sample_width != 2:
                raise StageError(f"{onnx_path}: audio {c.sample_rate} Hz/{c.sample_channels} ch/{8 * c.sample_width} bit, "
                                 f"expected {rate} Hz mono 16-bit")
        audio = np.concatenate([c.audio_float_array for c in chunks]).astype(np.float64)
        secs = len(audio) / rate
        if not np.all(np.isfinite(audio)):
            raise StageError(f"{onnx_path}: non-finite samples for {text!r}")
        rms = float(np.sqrt(np.mean(audio ** 2))) if len(audio) else 0.0
        peak = float(np.max(np.abs(audio))) if len(audio) else 0.0
        if secs < 0.2:
            raise StageError(f"{onnx_path}: only {secs:.3f}s of audio for {text!r}")
        if rms < min_rms or peak < 10 * min_rms:
            raise StageError(f"{onnx_path}: silent output for {text!r} (rms {rms:.2e}, peak {peak:.2e})")
        results.append({"text": text, "seconds": round(secs, 3), "rms": round(rms, 5), "peak": round(peak, 4),
                        "realtime_factor": round(took / secs, 3), "phonemes": sum(len(c.phonemes) for c in chunks)})
        all_audio.append(audio)
        log.info("smoke: %r -> %.2fs audio (rms %.4f) in %.2fs", text, secs, rms, took)
        all_audio.append(np.zeros(int(0.3 * rate)))
    pcm = np.clip(np.round(np.concatenate(all_audio) * 32767), -32768, 32767).astype("<i2")
    with atomic_path(wav_out) as tmp:
        with wave.open(str(tmp), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(rate)
            w.writeframes(pcm.tobytes())
    with wave.open(str(wav_out), "rb") as w:  # read back what was written
        if w.getframerate() != rate or w.getnframes() == 0:
            raise StageError(f"{wav_out}: written WAV has {w.getnframes()} frames at {w.getframerate()} Hz")
    report = {"ok": True, "voice": str(onnx_path), "sample_rate": rate, "sentences": results,
              "total_seconds": round(len(pcm) / rate, 3), "onnx_mb": round(Path(onnx_path).stat().st_size / 1e6, 2)}
    if selection is not None:  # voice/selection.json: the exported chunk's evaluation
        report = judged(report, selection)
    with atomic_path(report_out) as tmp:
        tmp.write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
    return report


def read_selection(path) -> dict:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise StageError(f"{path}: unreadable voice selection ({exc})") from exc


def chosen_weights(weights: list[str], selection: dict, selection_path) -> str:
    """The weights file of the chunk ``selection`` chose (``weights`` = every chunk's, in order)."""
    want = f"chunk_{int(selection['chosen'])}.weights.ckpt"
    found = [w for w in weights if Path(w).name == want]
    if len(found) != 1:
        raise StageError(f"{selection_path}: chose chunk {selection['chosen']}, but {want} is not among the inputs")
    return found[0]


def judged(report: dict, selection: dict) -> dict:
    """The smoke report with the exported chunk's evaluation: ``audio_ok`` = the checks above
    passed, ``ok`` = that and a voice not judged "not intelligible yet"."""
    audio_ok = report.pop("ok")
    verdict = selection.get("intelligibility")
    return {"ok": bool(audio_ok and verdict != "not intelligible yet"), "audio_ok": audio_ok,
            "intelligibility": verdict, "verdict": selection.get("verdict"), "chunk": selection.get("chosen"),
            "epochs": selection.get("chosen_epochs"), **report}


def main(snakemake, log) -> None:
    p, inp, out = snakemake.params, snakemake.input, snakemake.output
    if snakemake.rule == "smoke_test":
        selection = read_selection(inp.selection)
        smoke_test(inp.onnx, inp.json, out.wav, out.report, list(p.sentences), int(p.sample_rate), log,
                   selection=selection)
        log.info("voice (chunk %s): %s", selection.get("chosen"), selection.get("verdict"))
    elif snakemake.rule == "export_chunk":
        export_voice(inp.weights, out.onnx, out.json, p.espeak_voice, p.quality, p.dataset_name,
                     int(snakemake.threads), log)
    else:
        selection = read_selection(inp.selection)
        weights = chosen_weights([str(w) for w in inp.weights], selection, inp.selection)
        log.info("exporting chunk %s (%s)", selection["chosen"], selection.get("rule"))
        export_voice(weights, out.onnx, out.json, p.espeak_voice, p.quality, p.dataset_name,
                     int(snakemake.threads), log)


if "snakemake" in globals():
    run_stage(snakemake, main)  # noqa: F821
