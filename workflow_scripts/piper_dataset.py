"""Turn ``metadata.csv`` into Piper's training dataset and a preflight report (piper env).

Inputs (root = config ``output_dir``):

* ``{root}/metadata.csv``: ``clip_filename|transcript|duration|speaker|quality``, no header;
  ``clip_filename`` is the WAV name inside ``processed/{rec}/clips/`` or ``recut/`` (a path
  relative to ``processed/``, e.g. ``rec/clips/rec_00001.wav``, is accepted too).
* the clip directories ``{root}/processed/{rec}/clips/`` and ``{root}/recut/``
  (aggregate_metadata's clips cut again from rejected joined clips).

Outputs (``{root}/piper/``):

* ``dataset.csv``: ``utt.wav|text`` (no header), what ``piper.train fit --data.csv_path`` reads
  with ``--data.audio_dir wavs``.
* ``wavs/``: every kept clip as 16-bit mono WAV at the preset's sample rate (hard link when the
  rate already matches, else resampled with soxr).
* ``preflight.json`` / ``preflight.md``: hours, clips, phoneme coverage, phoneme-id lengths vs
  ``training.max_phoneme_ids``, clips too long (or too short) for training, a memory estimate
  and the disk training will use under ``checkpoints/`` (``disk``: full states kept x their
  size + one weights file per chunk, sizes from ``piper_train.CHECKPOINT_MB``, + piper's
  dataset cache; for the ``epochs``/``checkpoint_every`` it records).

Every clip is validated (readable WAV, 16-bit PCM, mono, the pipeline sample rate); all bad
clips are logged and the job fails naming the first. Clips over the limits are left out of
``dataset.csv`` and listed in the preflight report.
"""

import csv
import itertools
import json
import math
import os
import shutil
import sys
from collections import Counter
from pathlib import Path

if "snakemake" in globals():
    sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parent))  # noqa: F821

from workflow_scripts.io_utils import Progress, StageError, atomic_dir, atomic_path, run_stage
from workflow_scripts.piper_train import (
    DISK_PLAN_KEYS,
    PRESETS,
    disk_message,
    estimate_disk_mb,
    estimate_memory_mb,
    n_chunks,
    preset_sample_rate,
    run_options,
)

# piper.train's own segment_size (VitsModel's default): audio samples per training slice,
# used by the presets that do not set theirs
PIPER_SEGMENT_SIZE = 8192


def read_metadata(path) -> list[dict]:
    rows = []
    with open(path, encoding="utf-8", newline="") as fh:
        for n, row in enumerate(csv.reader(fh, delimiter="|", quoting=csv.QUOTE_NONE), 1):
            if not row or not "".join(row).strip():
                continue
            if len(row) < 2:
                raise StageError(f"{path}:{n}: expected clip_filename|transcript|duration|speaker|quality, got {row!r}")
            text = " ".join(row[1].split())
            if not text:
                raise StageError(f"{path}:{n}: empty transcript for {row[0]}")
            duration = None
            if len(row) > 2 and row[2].strip():
                try:
                    duration = float(row[2])
                except ValueError as exc:
                    raise StageError(f"{path}:{n}: duration {row[2]!r} is not a number") from exc
            rows.append({"clip": row[0].strip(), "text": text, "duration": duration,
                         "speaker": row[3].strip() if len(row) > 3 else "",
                         "quality": row[4].strip() if len(row) > 4 else ""})
    if not rows:
        raise StageError(f"{path}: no clips (empty metadata)")
    dupes = [c for c, k in Counter(r["clip"] for r in rows).items() if k > 1]
    if dupes:
        raise StageError(f"{path}: clip listed twice: {dupes[0]}")
    return rows


def index_clips(clip_dirs, processed_dir=None) -> dict[str, Path]:
    """File name -> path over the clip directories (names are unique across recordings)."""
    index: dict[str, Path] = {}
    dirs = []
    for d in map(Path, clip_dirs):
        if d.is_file():  # a shard's preprocess_clips manifest (workflow_scripts/shards.py): its clip dirs
            from workflow_scripts.shards import read_manifests

            dirs += [Path(outs["clips"]) for outs in read_manifests([d]).values() if "clips" in outs]
        else:
            dirs.append(d)
    if not dirs and processed_dir:
        dirs = sorted(Path(processed_dir).glob("*/clips"))
    for d in dirs:
        for wav in d.glob("*.wav"):
            if wav.name in index and index[wav.name] != wav:
                raise StageError(f"{wav}: clip name also in {index[wav.name].parent}")
            index[wav.name] = wav
    return index


def resolve_clip(name: str, index: dict[str, Path], processed_dir) -> Path:
    if "/" in name:
        path = Path(processed_dir) / name
    else:
        path = index.get(name)
        if path is None:
            raise StageError(f"{name}: clip listed in metadata.csv not found in any processed/*/clips/")
    if not path.is_file():
        raise StageError(f"{path}: clip listed in metadata.csv does not exist")
    return path


def check_clip(path: Path, expected_rate: int | None) -> tuple[str | None, dict]:
    """Return (problem or None, info) for one clip: WAV, 16-bit PCM, mono, rate."""
    import soundfile as sf

    try:
        info = sf.info(str(path))
    except Exception as exc:  # soundfile raises RuntimeError/LibsndfileError
        return f"not a readable audio file ({exc})", {}
    meta = {"rate": info.samplerate, "channels": info.channels, "frames": info.frames, "subtype": info.subtype}
    if info.format != "WAV":
        return f"not a WAV file (format {info.format})", meta
    if info.subtype != "PCM_16":
        return f"not 16-bit PCM (subtype {info.subtype})", meta
    if info.channels != 1:
        return f"not mono ({info.channels} channels)", meta
    if expected_rate and info.samplerate != expected_rate:
        return f"sample rate {info.samplerate} Hz, expected {expected_rate} Hz", meta
    if info.frames == 0:
        return "no audio (0 samples)", meta
    return None, meta


def place_wav(src: Path, dst: Path, src_rate: int, rate: int) -> None:
    """Hard link (or copy) when the rate matches, else resample to ``rate`` (16-bit mono)."""
    if src_rate == rate:
        try:
            os.link(src, dst)
        except OSError:
            shutil.copyfile(src, dst)
        return
    import numpy as np
    import soundfile as sf
    import soxr

    audio, _ = sf.read(str(src), dtype="float32")
    out = soxr.resample(audio, src_rate, rate, quality="HQ")
    out = np.clip(np.round(out * 32767.0), -32768, 32767).astype(np.int16)
    sf.write(str(dst), out, rate, subtype="PCM_16", format="WAV")


def phonemize_all(texts: list[str], espeak_voice: str, log=None):
    """Phonemes and phoneme ids per text with the training phonemizer (piper's espeak-ng)."""
    from piper.phoneme_ids import DEFAULT_PHONEME_ID_MAP, phonemes_to_ids
    from piper.phonemize_espeak import EspeakPhonemizer

    phonemizer = EspeakPhonemizer()
    out = []
    prog = Progress(len(texts), "phonemize", log) if log else None
    for text in texts:
        try:
            sentences = phonemizer.phonemize(espeak_voice, text)
        except Exception as exc:
            raise StageError(f"espeak voice {espeak_voice!r}: cannot phonemize {text[:40]!r} ({exc})") from exc
        phonemes = [p for s in sentences for p in s]
        ids = list(itertools.chain(*(phonemes_to_ids(s, id_map=DEFAULT_PHONEME_ID_MAP) for s in sentences)))
        missing = sorted({p for p in phonemes if p not in DEFAULT_PHONEME_ID_MAP})
        out.append({"phonemes": phonemes, "ids": len(ids), "missing": missing})
        if prog:
            prog.update()
    return out, sorted(DEFAULT_PHONEME_ID_MAP)


def build_dataset(metadata, clip_dirs, processed_dir, out_csv, out_wavs, out_json, out_md, cfg: dict,
                  source_rate: int | None, log) -> dict:
    rows = read_metadata(metadata)
    preset_name = cfg["preset"]
    rate = preset_sample_rate(preset_name)
    # model_overrides is in the params only when it sets segment_size (TrainingPlan.dataset_params)
    overrides = cfg.get("model_overrides") or {}
    segment = int(overrides.get("segment_size", PRESETS[preset_name]["model"].get("segment_size", PIPER_SEGMENT_SIZE)))
    max_ids = int(cfg["max_phoneme_ids"])
    max_s = float(cfg["max_clip_s"])
    min_s = max(float(cfg["min_clip_s"]), segment / rate + 0.1)
    batch = int(cfg["batch_size"])
    log.info("%d clips in %s; preset %s (%d Hz), espeak voice %s", len(rows), metadata, preset_name, rate,
             cfg["espeak_voice"])

    index = index_clips(clip_dirs, processed_dir)
    problems, prog = [], Progress(len(rows), "validate clips", log)
    for r in rows:
        path = resolve_clip(r["clip"], index, processed_dir)
        problem, meta = check_clip(path, source_rate)
        r.update(path=path, **meta)
        if not problem and r["duration"] is not None and abs(meta["frames"] / meta["rate"] - r["duration"]) > 0.01:
            # invariant: metadata.csv describes the clip that is on disk
            problem = f"duration {meta['frames'] / meta['rate']:.3f} s differs from metadata.csv's {r['duration']:.3f} s"
        if problem:
            problems.append(f"{path}: {problem}")
            log.error("%s: %s", path, problem)
        else:
            r["duration"] = meta["frames"] / meta["rate"]
        prog.update()
    if problems:
        more = f" (and {len(problems) - 1} more invalid clips, see the log)" if len(problems) > 1 else ""
        raise StageError(problems[0] + more)

    phon, id_map_symbols = phonemize_all([r["text"] for r in rows], cfg["espeak_voice"], log)
    counts: Counter = Counter()
    missing: Counter = Counter()
    kept, excluded = [], []
    for r, p in zip(rows, phon):
        r["phoneme_ids"] = p["ids"]
        reasons = []
        if p["ids"] > max_ids:
            reasons.append(f"phoneme_ids {p['ids']} > {max_ids}")
        if r["duration"] > max_s:
            reasons.append(f"duration {r['duration']:.2f}s > {max_s:g}s")
        if r["duration"] < min_s:
            reasons.append(f"duration {r['duration']:.2f}s < {min_s:.2f}s (training segment)")
        if p["ids"] <= 3:
            reasons.append("no phonemes")
        if reasons:
            excluded.append({"clip": r["clip"], "reasons": reasons})
            continue
        counts.update(p["phonemes"])
        missing.update(p["missing"])
        kept.append(r)
    if not kept:
        raise StageError(f"{metadata}: every clip is over the training limits (see {out_md})")

    with atomic_dir(out_wavs) as tmp_dir:
        prog = Progress(len(kept), "write wavs", log)
        for r in kept:
            place_wav(r["path"], tmp_dir / Path(r["clip"]).name, r["rate"], rate)
            prog.update()
    with atomic_path(out_csv) as tmp, open(tmp, "w", encoding="utf-8", newline="") as fh:
        for r in kept:
            fh.write(f"{Path(r['clip']).name}|{r['text']}\n")

    durations = [r["duration"] for r in kept]
    ids = sorted(r["phoneme_ids"] for r in kept)
    longest = max(durations)
    train_clips = len(kept) - int(len(kept) * float(cfg["validation_split"])) - int(cfg["num_test_examples"])
    symbols = [s for s in id_map_symbols if len(s) == 1 and s not in "_^$ "]
    report = {
        "preset": preset_name,
        "sample_rate": rate,
        "espeak_voice": cfg["espeak_voice"],
        "clips": len(kept),
        "clips_in_metadata": len(rows),
        "hours": round(sum(durations) / 3600, 4),
        "duration_s": {"min": round(min(durations), 3), "mean": round(sum(durations) / len(durations), 3),
                       "max": round(longest, 3)},
        "speakers": sorted({r["speaker"] for r in kept if r["speaker"]}),
        "resampled": sum(1 for r in kept if r["rate"] != rate),
        "phoneme_ids": {"limit": max_ids, "min": ids[0], "median": ids[len(ids) // 2], "max": ids[-1],
                        "p95": ids[min(len(ids) - 1, math.ceil(0.95 * len(ids)) - 1)]},
        "phonemes": {"distinct": len(counts), "total": sum(counts.values()),
                     "counts": dict(counts.most_common()),
                     "rare": sorted(p for p, c in counts.items() if c < 3),
                     "missing_from_id_map": dict(missing),
                     "id_map_coverage": round(len(set(counts) & set(symbols)) / max(1, len(symbols)), 4)},
        "excluded": excluded,
        "batch_size": batch,
        "train_clips_estimate": train_clips,
        "batch_warning": (f"only {train_clips} training clips for batch size {batch}"
                          if train_clips <= batch else None),
        "memory_estimate_mb": estimate_memory_mb(preset_name, batch, longest),
        "limits": {"max_clip_s": max_s, "min_clip_s": round(min_s, 3), "segment_size": segment},
    }
    if "epochs" in cfg and "checkpoint_every" in cfg:
        epochs, every = int(cfg["epochs"]), int(cfg["checkpoint_every"])
        report["disk"] = {"epochs": epochs, "checkpoint_every": every,
                          **estimate_disk_mb(preset_name, n_chunks(epochs, every), sum(durations)),
                          "message": disk_message(preset_name, epochs, every, sum(durations))}
    with atomic_path(out_json) as tmp:
        tmp.write_text(json.dumps(report, indent=2, ensure_ascii=False))
    with atomic_path(out_md) as tmp:
        tmp.write_text(render_markdown(report), encoding="utf-8")
    log.info("dataset: %d clips (%.3f h), %d excluded, phoneme ids max %d (limit %d), memory estimate %d MB",
             len(kept), report["hours"], len(excluded), ids[-1], max_ids, report["memory_estimate_mb"])
    if report["batch_warning"]:
        log.warning("%s", report["batch_warning"])
    if "disk" in report:
        log.info("%s", report["disk"]["message"])
    if missing:
        log.warning("phonemes missing from Piper's id map (dropped in training): %s", dict(missing))
    return report


def render_markdown(r: dict) -> str:
    lines = [
        "# Piper dataset preflight", "",
        f"- preset **{r['preset']}**, {r['sample_rate']} Hz, espeak voice `{r['espeak_voice']}`",
        f"- **{r['clips']} clips** ({r['clips_in_metadata']} in metadata, {len(r['excluded'])} excluded), "
        f"**{r['hours']:.3f} h**; duration {r['duration_s']['min']}–{r['duration_s']['max']} s "
        f"(mean {r['duration_s']['mean']})",
        f"- speakers: {', '.join(r['speakers']) or '-'}; resampled clips: {r['resampled']}",
        f"- phoneme ids per clip: median {r['phoneme_ids']['median']}, p95 {r['phoneme_ids']['p95']}, "
        f"max {r['phoneme_ids']['max']} (limit {r['phoneme_ids']['limit']})",
        f"- phonemes: {r['phonemes']['distinct']} distinct, {r['phonemes']['total']} total; "
        f"id-map coverage {100 * r['phonemes']['id_map_coverage']:.1f}%; rare (<3): "
        f"{' '.join(r['phonemes']['rare']) or '-'}; missing from id map: "
        f"{' '.join(r['phonemes']['missing_from_id_map']) or '-'}",
        f"- batch size {r['batch_size']}, ~{r['train_clips_estimate']} training clips; "
        f"memory estimate ~{r['memory_estimate_mb']} MB",
    ]
    if r.get("disk"):
        lines.append(f"- disk: {r['disk']['message']}")
    if r["batch_warning"]:
        lines.append(f"- **warning:** {r['batch_warning']}")
    lines += ["", "## Excluded clips", ""]
    if r["excluded"]:
        lines += ["| clip | reasons |", "|---|---|"] + [f"| {e['clip']} | {'; '.join(e['reasons'])} |" for e in r["excluded"]]
    else:
        lines.append("none")
    return "\n".join(lines) + "\n"


def main(snakemake, log) -> None:
    inp, out = snakemake.input, snakemake.output
    clip_dirs = list(inp.clips) if "clips" in inp.keys() else []
    if "recut" in inp.keys():  # aggregate_metadata's clips cut again from rejected joined ones
        clip_dirs += list(inp.recut)
    processed_dir = Path(str(inp.metadata)).parent / "processed"  # {root}/processed (CONTRIBUTING.md)
    cfg = {**run_options(snakemake.config, DISK_PLAN_KEYS), **dict(snakemake.params.cfg)}
    build_dataset(str(inp.metadata), clip_dirs, processed_dir, out.csv, out.wavs, out.preflight_json,
                  out.preflight_md, cfg, snakemake.params.source_rate, log)


if "snakemake" in globals():
    run_stage(snakemake, main)  # noqa: F821
