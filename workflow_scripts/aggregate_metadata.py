"""Aggregate every recording's transcripts into the dataset tables (runs in the media env).

Outputs (root = config ``output_dir``):

* ``metadata.csv``: kept clips, NO header, ``|``-separated, sorted by clip file name::

      clip_filename|transcript|duration|speaker|quality

  ``clip_filename`` is the WAV file name inside ``processed/{rec}/clips/`` or ``recut/``
  (names carry the recording id, so they are unique; duplicates are an error), ``transcript`` the text
  normalised for Piper (see quality_gate.normalize_text), ``duration`` seconds (3
  decimals), ``speaker`` the recording's speaker, ``quality`` the score in [0, 1] (4
  decimals). The first two columns are Piper's ``utt.wav|text`` format.
* ``rejected.tsv``: header ``clip recording reasons text normalised quality``; reasons
  joined with ``;``.
* ``transcripts.tsv``: every clip with its decision and both texts (for review), then its
  audio scores: columns ``REVIEW_COLUMNS`` (``override`` = the applied manual action, empty
  when none; the scores are empty when the audio gates are off).
* ``recut/``: the clips cut again from joined clips the speaker gate rejected for another
  voice's part (workflow_scripts/recut.py; ``speaker_gate.recut``): ``{clip stem}-{part}.wav``
  and ``clips.tsv`` (RECUT_COLUMNS: the source clip, stem times). metadata.csv names them
  like every clip; their source clip stays in rejected.tsv, and ``cut_from`` in
  transcripts.tsv names it.
* ``transcription_summary.json``: counts (clips, kept, rejected, hours) and rejections by
  reason code (rejected clips only), in total and per recording, the voices found per
  recording (``speakers``) and the applied overrides.

The audio gates (workflow_scripts/clip_gates.py, on score_clips' per-recording outputs) add
their reasons to the transcript gate's: ``low_dnsmos_ovrl:2.41<2.8`` (quality.*; the bars
applied, set by the target voice's clips, are ``quality.min_ovrl_applied`` and
``min_p808_applied`` in the summary),
``other_speaker:sim=0.62<0.8`` and ``no_voice`` (speaker_gate.*). The speaker column of
metadata.csv names the recording's speaker; with the speaker gate on, only clips of the
target voice reach it.

Manual overrides (optional input ``{root}/overrides.tsv``, exported by the review page
``{root}/review/index.html``): a TSV with the header ``clip action text``; ``action`` is
``accept`` (kept even when the gate rejected it), ``reject`` (removed; reason
``manual_reject``) or ``edit`` (kept, with ``text`` as its transcript, normalised like every
other text). Overrides win over the gate. A clip the overrides name that no longer exists is
logged and listed under ``overrides.unmatched`` in the summary; a malformed line is an error.
"""

import csv
import json
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

if "snakemake" in globals():
    sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parent))  # noqa: F821

from workflow_scripts.clip_gates import (  # noqa: E402
    NOISY_VOICE_OVRL,
    ClipScores,
    SpeakerDecision,
    applied_bars,
    decide_speakers,
    embedding_map,
    judged_rows,
    noisy_voice,
    quality_reasons,
    read_scores,
    target_quantiles,
    turn_reasons,
    voices_by_recording,
)
from workflow_scripts.io_utils import StageError, atomic_dir, atomic_path, read_clips_table, read_jsonl, run_stage, to_int16
from workflow_scripts.loudness import normalise
from workflow_scripts.recut import RecutParams, plan_clip, plan_runs, read_clip, recut_name, turn_runs
from workflow_scripts.shards import member_outputs
from workflow_scripts.quality_gate import (  # noqa: E402
    WORDLESS_REASONS,
    evaluate,
    gate_config,
    normalize_text,
    reason_code,
    unspeakable_chars,
)

OVERRIDE_ACTIONS = ("accept", "reject", "edit")
MANUAL_REJECT = "manual_reject"


def _clean(text: str) -> str:
    return " ".join(str(text).replace("\t", " ").replace("|", " ").split())


def read_overrides(path) -> dict:
    """``overrides.tsv`` -> {clip file name: {"action", "text", "line"}} (a later line wins).

    Header ``clip action text`` (tab-separated, extra columns ignored, ``#`` lines and blank
    lines skipped); ``clip`` may be a path, its file name is used; ``text`` is needed for
    ``edit`` only. Raises StageError naming the file and line on anything malformed.
    """
    out = {}
    with open(path, encoding="utf-8-sig", newline="") as fh:
        lines = [(n, ln.rstrip("\r\n")) for n, ln in enumerate(fh, 1)]
    lines = [(n, ln) for n, ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines:
        return out
    header = [h.strip().lower() for h in lines[0][1].split("\t")]
    if "clip" not in header or "action" not in header:
        raise StageError(f"{path}:{lines[0][0]}: header must name the columns clip, action, text (tab-separated)")
    ci, ai = header.index("clip"), header.index("action")
    ti = header.index("text") if "text" in header else None
    for n, line in lines[1:]:
        cols = line.split("\t")
        clip = Path(cols[ci].strip()).name if len(cols) > ci else ""
        action = cols[ai].strip().lower() if len(cols) > ai else ""
        text = _clean(cols[ti]) if ti is not None and len(cols) > ti else ""
        if not clip:
            raise StageError(f"{path}:{n}: no clip name")
        if action not in OVERRIDE_ACTIONS:
            raise StageError(f"{path}:{n}: action {action!r} for {clip} is not one of {', '.join(OVERRIDE_ACTIONS)}")
        if action == "edit" and not text:
            raise StageError(f"{path}:{n}: edit of {clip} without text")
        out[clip] = {"action": action, "text": text, "line": n}
    return out


def apply_override(row: dict, override: dict, language: str) -> dict:
    """The row after a manual override (overrides win over the gate); records what changed."""
    action = override["action"]
    applied = {"clip": row["clip"], "action": action, "gate_keep": row["keep"], "gate_reasons": list(row["reasons"])}
    if action == "accept":
        row["keep"] = True
    elif action == "reject":
        row["keep"] = False
        row["reasons"] = [*row["reasons"], MANUAL_REJECT]
    else:  # edit: kept with the new text, normalised like every other transcript
        applied["previous_text"] = row["text"]
        row["text"] = override["text"]
        row["normalised"] = _clean(normalize_text(override["text"], language))
        row["keep"] = True
        applied["text"] = row["normalised"]
        bad = unspeakable_chars(row["normalised"], language)
        if bad:
            applied["unspeakable"] = "".join(bad)
    row["override"] = action
    return applied


@dataclass
class AudioGates:
    """The audio gates' inputs: per recording score_clips' output, the validated ``quality``
    and ``speaker_gate`` sections and the reference embedding (None: the dominant voice)."""

    scores: dict[str, ClipScores]
    quality: dict
    speaker: dict
    reference: np.ndarray | None


def apply_speaker_gate(rows: list[dict], gates: AudioGates) -> tuple[dict, list[list[str]], SpeakerDecision | None]:
    """Voice labels and similarity on every row (in place); returns the speaker part of the
    summary (mode, target voice; voices per recording are added once the rows are decided),
    each row's target-voice reasons ([] = the target) and the decision (None without rows)."""
    if not rows:
        return {"mode": "reference" if gates.reference is not None else "dominant", "target_voice": ""}, [], None
    embeddings = np.stack([r["embedding"] for r in rows])
    wordless = [any(reason_code(x) in WORDLESS_REASONS for x in r["reasons"]) for r in rows]
    checked = gates.quality["enabled"] and gates.quality["min_ovrl"] is not None
    floor = gates.quality["min_ovrl_floor"] if checked else None
    judged = judged_rows(wordless, [r["dnsmos"] for r in rows], floor)
    decision = decide_speakers(embeddings, gates.speaker, gates.reference, [r.get("part_embeddings") for r in rows],
                               [r.get("window_embeddings") for r in rows], [r["duration"] for r in rows], judged)
    coords = embedding_map(embeddings)
    for i, row in enumerate(rows):
        row["speaker_sim"] = float(decision.similarity[i])
        row["voice"] = decision.voice[i]
        row["map"] = (float(coords[i, 0]), float(coords[i, 1]))
    return ({"mode": decision.mode, "enabled": gates.speaker["enabled"], "target_voice": decision.target_voice,
             "min_similarity": gates.speaker["min_similarity"],
             # the speaker encoder's windows hold another voice (clip_gates.window_voices): turns are checked
             "window_voices": 1 + len(decision.window_others) if decision.window_target is not None else 1},
            decision.reasons, decision)


def apply_audio_gates(rows: list[dict], gates: AudioGates) -> tuple[dict, dict, SpeakerDecision | None]:
    """The DNSMOS and target-voice reasons on every row (in place; the DNSMOS ones first).
    The OVRL and P.808 bars are set by the target voice's clips (clip_gates.applied_bars), so the
    speaker decision comes first. Returns the speaker and quality parts of the summary and the
    speaker decision."""
    speakers, speaker_reasons, decision = apply_speaker_gate(rows, gates)
    target = [r["dnsmos"] for r, why in zip(rows, speaker_reasons) if not why and r["dnsmos"]]
    bars = applied_bars(target, gates.quality) if gates.quality["enabled"] else {}
    for row, why in zip(rows, speaker_reasons):
        low = quality_reasons(row["dnsmos"], gates.quality, bars)
        row["_voice_only"] = bool(why) and not low and not row["reasons"] and all(
            x.startswith("other_speaker:") for x in why)
        extra = [*low, *why]
        if extra:
            row["reasons"] = [*row["reasons"], *extra]
            row["keep"] = False
    speakers["recordings"] = voices_by_recording(rows)
    speakers["recut"] = {"clips": 0, "seconds": 0.0, "source_clips": 0}  # apply_recut fills it
    q = gates.quality["relative_quantile"]
    quantiles = target_quantiles(target, q)
    quality = {"enabled": gates.quality["enabled"], "target_clips": len(target), "relative_quantile": q,
               "noisy_voice": noisy_voice(quantiles)}
    for key, level in quantiles.items():
        quality.update({f"min_{key}": gates.quality[f"min_{key}"], f"min_{key}_applied": bars.get(key),
                        f"target_quantile_{key}": None if level is None else round(level, 3)})
    return speakers, quality, decision


def apply_recut(rows: list[dict], gates: AudioGates, decision: SpeakerDecision | None, p: RecutParams) -> list[dict]:
    """New rows for the target's runs of the clips rejected for another voice (workflow_scripts/
    recut.py): at the part boundaries of a clip with a part of another voice, else between the
    turns in a clip's windows; each gated like a transcribed clip; only the kept ones are returned, their
    levelled audio in ``_audio``. The rows' voice and map place are their source clip's."""
    if not p.enabled or decision is None or decision.target is None or not gates.speaker["enabled"]:
        return []
    out = []
    for row in rows:
        if not row.get("_voice_only") or row.get("_clip_path") is None:
            continue
        # a part of another voice: cut at the part boundaries (pauses); else another voice's
        # turn in the clip's windows: cut between the turns; a clip failed by the window check
        # alone is not cut (its other voice is inside a part)
        reasons, runs = row["reasons"], []
        if (not any(":part_sim=" in x for x in reasons) and decision.window_target is not None
                and row.get("_window_spans") is not None
                and turn_reasons(row.get("window_embeddings"), decision.window_target, decision.window_others)):
            runs = turn_runs(row["_record"], row["window_embeddings"], row["_window_spans"], decision.window_target,
                             decision.window_others, decision.target)
            if not runs:
                continue
        elif row.get("part_embeddings") is None or any("window_sim=" in x for x in reasons):
            continue
        audio, rate = read_clip(row["_clip_path"])
        planned = plan_runs(row["_record"], runs, audio, rate, p) if runs else plan_clip(
            row["_record"], row["part_embeddings"], row["_joins"], audio, rate, decision.target, decision.others,
            gates.speaker, p)
        for run, a, b, record in planned:
            ev = evaluate(record, row["_cfg"])
            if not ev["keep"]:
                continue
            out.append({
                **{k: row[k] for k in ("recording", "speaker", "decoding", "dnsmos", "voice", "map")},
                "clip": recut_name(row["clip"], run), "keep": True, "quality": ev["quality"],
                "duration": record["duration_s"], "reasons": [], "text": _clean(ev["text"]),
                "normalised": _clean(ev["normalised"]), "override": "", "embedding": run.embedding,
                "speaker_sim": round(run.similarity, 4), "cut_from": row["clip"],
                "start_s": row["_start_s"] + a / rate, "end_s": row["_start_s"] + b / rate,
                "_audio": audio[a:b], "_rate": rate,
            })
    for rate in sorted({r["_rate"] for r in out}):
        batch = [r for r in out if r["_rate"] == rate]
        for r, (y, _, after) in zip(batch, normalise([r["_audio"] for r in batch], rate, p.target_lufs, p.peak_dbfs)):
            r["_audio"], r["lufs"] = y, after
    return out


def aggregate(recordings: list[tuple], gate_cfg: dict | None, language: str | None = None,
              overrides: dict | None = None, overrides_file: str | None = None,
              audio_gates: AudioGates | None = None, recut: RecutParams | None = None) -> dict:
    """``recordings``: [(rec, transcripts.jsonl, clips dir or None, speaker[, language])].

    The expected language of a recording is ``gate.language`` when set, else the
    recording's own language (5th item), else ``language``. ``audio_gates`` (the score_clips
    outputs and the quality / speaker_gate sections) add the DNSMOS and target-voice reasons.
    ``recut`` (enabled): the target's runs of joined clips rejected for another voice's part
    become rows of their own (``cut_from``: the source clip; ``_audio``: their levelled audio,
    which write_recut writes). ``overrides`` (from ``read_overrides``) are applied after every
    gate and win over them; a source clip kept by one drops its recut rows.
    Returns {"rows": [...all clips with decision...], "summary": {...}}.
    """
    overrides = overrides or {}
    applied = []
    cfg = gate_config(gate_cfg, language)
    rows, seen, languages = [], {}, {}
    for item in recordings:
        rec, jsonl, clips_dir, speaker = item[:4]
        rec_cfg = cfg
        if (gate_cfg or {}).get("language") is None and len(item) > 4 and item[4]:
            rec_cfg = {**cfg, "language": item[4]}
        scores = audio_gates.scores.get(rec) if audio_gates else None
        # clips.tsv (preprocess_clips writes one) places each clip's joins, for apply_recut
        has_table = clips_dir is not None and scores is not None and (Path(clips_dir) / "clips.tsv").exists()
        table = {r["clip"]: r for r in read_clips_table(clips_dir)} if has_table else {}
        for record in read_jsonl(jsonl):
            clip = record.get("clip")
            if not clip:
                raise StageError(f"{jsonl}: a record without 'clip'")
            if clip in seen:
                raise StageError(f"{jsonl}: clip file name {clip} also in recording {seen[clip]}")
            seen[clip] = rec
            if clips_dir is not None and not (Path(clips_dir) / clip).exists():
                raise StageError(f"{Path(clips_dir) / clip}: transcribed but missing from the clips directory")
            ev = evaluate(record, rec_cfg)
            row = {
                "clip": clip, "recording": rec, "speaker": speaker, "keep": ev["keep"],
                "quality": ev["quality"], "duration": float(record.get("duration_s") or 0.0),
                "reasons": ev["reasons"], "text": _clean(ev["text"]), "normalised": _clean(ev["normalised"]),
                "override": "", "decoding": record.get("decoding") or "unknown",
            }
            if scores is not None:
                if clip not in scores.records:
                    raise StageError(f"{jsonl}: clip {clip} has no scores (score_clips output of {rec} is stale)")
                row["dnsmos"] = scores.records[clip]["dnsmos"]
                row["embedding"] = scores.embeddings[clip]
                row["part_embeddings"] = scores.parts.get(clip)
                row["window_embeddings"] = scores.windows.get(clip)
                row["_window_spans"] = scores.window_spans.get(clip)
                if clip in table:  # what apply_recut needs to cut the clip again
                    row.update(_record=record, _cfg=rec_cfg, _clip_path=Path(clips_dir) / clip,
                               _start_s=float(table[clip]["start_s"]),
                               _joins=[float(x) for x in (table[clip].get("joins_s") or "").split(";") if x])
            languages[clip] = record.get("language") or "en"
            rows.append(row)
    speakers_summary, quality_summary, decision = apply_audio_gates(rows, audio_gates) if audio_gates else (None, None, None)
    if audio_gates is not None:
        for r in apply_recut(rows, audio_gates, decision, recut or RecutParams(enabled=False)):
            if r["clip"] in seen:
                raise StageError(f"recut clip name {r['clip']} is also a clip of recording {seen[r['clip']]}")
            seen[r["clip"]] = r["recording"]
            languages[r["clip"]] = languages[r["cut_from"]]
            rows.append(r)
    for row in rows:
        if row["clip"] in overrides:
            applied.append(apply_override(row, overrides[row["clip"]], languages[row["clip"]]))
    # a source clip kept after all (a manual accept or edit) holds its recut clips' audio
    kept_sources = {r["clip"] for r in rows if r["keep"]}
    rows = [r for r in rows if r.get("cut_from") not in kept_sources]
    recut_rows = [r for r in rows if r.get("cut_from")]
    if speakers_summary is not None:
        speakers_summary["recut"] = {"clips": len(recut_rows), "seconds": round(sum(r["duration"] for r in recut_rows), 3),
                                     "source_clips": len({r["cut_from"] for r in recut_rows})}
    rows.sort(key=lambda r: (r["clip"], r["recording"]))
    applied.sort(key=lambda a: a["clip"])
    kept = [r for r in rows if r["keep"]]
    by_reason = Counter(reason_code(x) for r in rows if not r["keep"] for x in r["reasons"])
    # seconds rejected, each clip counted once under its first reason
    seconds_by_reason = Counter()
    for r in rows:
        if not r["keep"]:
            seconds_by_reason[reason_code(r["reasons"][0]) if r["reasons"] else "override"] += r["duration"]
    per_rec = {}
    for r in rows:
        s = per_rec.setdefault(r["recording"], {"clips": 0, "kept": 0, "rejected": 0, "by_reason": Counter()})
        s["clips"] += 1
        s["kept" if r["keep"] else "rejected"] += 1
        if not r["keep"]:
            s["by_reason"].update(reason_code(x) for x in r["reasons"])
    summary = {
        "clips": len(rows), "kept": len(kept), "rejected": len(rows) - len(kept),
        "kept_hours": round(sum(r["duration"] for r in kept) / 3600, 4),
        "total_hours": round(sum(r["duration"] for r in rows if not r.get("cut_from")) / 3600, 4),
        "mean_quality_kept": round(sum(r["quality"] for r in kept) / len(kept), 4) if kept else None,
        "rejected_by_reason": dict(sorted(by_reason.items())),
        "rejected_seconds_by_first_reason": {k: round(v, 3) for k, v in sorted(seconds_by_reason.items())},
        # how the clips were decoded (transcription.decode)
        "decoding": dict(sorted(Counter(r["decoding"] for r in rows).items())),
        "recordings": {k: {**v, "by_reason": dict(sorted(v["by_reason"].items()))} for k, v in sorted(per_rec.items())},
        "gate": cfg,
        "speakers": speakers_summary,
        "quality": quality_summary,
        "overrides": {
            "file": overrides_file,
            "counts": dict(sorted(Counter(a["action"] for a in applied).items())),
            "applied": applied,
            "unmatched": sorted(set(overrides) - {r["clip"] for r in rows}),
        },
    }
    return {"rows": rows, "summary": summary}


# transcripts.tsv: the decision and both texts, then the audio scores (empty when a gate is
# off): DNSMOS, cosine to the target voice, the voice (cluster) and the clip's place on the
# 2-D map of embeddings (report_plots draws it).
REVIEW_COLUMNS = ["clip", "recording", "speaker", "keep", "quality", "duration", "reasons", "text", "normalised",
                  "override", "ovrl", "sig", "bak", "p808", "speaker_sim", "voice", "map_x", "map_y", "cut_from"]
# recut/clips.tsv: each recut clip, the clip it was cut from and its place in the vocal stem.
RECUT_COLUMNS = ["clip", "recording", "cut_from", "start_s", "end_s", "duration_s", "lufs_after"]


def _num(value, digits: int) -> str:
    return "" if value is None or value == "" else f"{float(value):.{digits}f}"


def write_outputs(result: dict, metadata, rejected, summary, review=None, recut_dir=None) -> None:
    rows = result["rows"]
    with atomic_path(metadata) as tmp, open(tmp, "w", encoding="utf-8", newline="") as fh:
        for r in rows:
            if r["keep"]:
                fh.write(f"{r['clip']}|{r['normalised']}|{r['duration']:.3f}|{r['speaker']}|{r['quality']:.4f}\n")
    with atomic_path(rejected) as tmp, open(tmp, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, delimiter="\t", lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
        w.writerow(["clip", "recording", "reasons", "text", "normalised", "quality"])
        for r in rows:
            if not r["keep"]:
                w.writerow([r["clip"], r["recording"], ";".join(r["reasons"]), r["text"], r["normalised"], f"{r['quality']:.4f}"])
    if review is not None:
        with atomic_path(review) as tmp, open(tmp, "w", encoding="utf-8", newline="") as fh:
            w = csv.writer(fh, delimiter="\t", lineterminator="\n")
            w.writerow(REVIEW_COLUMNS)
            for r in rows:
                dn = r.get("dnsmos") or {}
                mx, my = r.get("map", ("", ""))
                w.writerow([r["clip"], r["recording"], r["speaker"], int(r["keep"]), f"{r['quality']:.4f}",
                            f"{r['duration']:.3f}", ";".join(r["reasons"]), r["text"], r["normalised"],
                            r.get("override", ""), *(_num(dn.get(k), 3) for k in ("ovrl", "sig", "bak", "p808")),
                            _num(r.get("speaker_sim"), 4), r.get("voice", ""), _num(mx, 4), _num(my, 4),
                            r.get("cut_from", "")])
    with atomic_path(summary) as tmp:
        Path(tmp).write_text(json.dumps(result["summary"], indent=2, sort_keys=False) + "\n", encoding="utf-8")
    if recut_dir is not None:
        write_recut([r for r in rows if r.get("cut_from")], recut_dir)


def write_recut(rows: list[dict], recut_dir) -> None:
    """The recut clips' WAVs (16-bit) and ``clips.tsv`` (RECUT_COLUMNS) in ``recut_dir``."""
    import soundfile as sf

    with atomic_dir(recut_dir) as tmp:
        with open(tmp / "clips.tsv", "w", encoding="utf-8", newline="") as fh:
            w = csv.writer(fh, delimiter="\t", lineterminator="\n")
            w.writerow(RECUT_COLUMNS)
            for r in sorted(rows, key=lambda r: r["clip"]):
                sf.write(str(tmp / r["clip"]), to_int16(r["_audio"]), r["_rate"], subtype="PCM_16", format="WAV")
                w.writerow([r["clip"], r["recording"], r["cut_from"], f"{r['start_s']:.3f}", f"{r['end_s']:.3f}",
                            f"{r['duration']:.3f}", f"{r['lufs']:.2f}"])


def read_audio_gates(snakemake, recs: list[str]) -> AudioGates | None:
    """score_clips' outputs (input ``scores``: the shards' manifests, which name each
    recording's scores.jsonl and embeddings.npy) and the reference embedding (input ``reference``, optional); None when both audio
    gates are off (no scores are inputs then)."""
    quality, speaker = dict(snakemake.params.quality), dict(snakemake.params.speaker_gate)
    if not (quality["enabled"] or speaker["enabled"]):
        return None
    manifests = snakemake.input.scores
    scores, embs = member_outputs(manifests, "scores", recs), member_outputs(manifests, "embeddings", recs)
    ref_files = list(getattr(snakemake.input, "reference", []) or [])
    reference = np.load(ref_files[0]) if ref_files else None
    return AudioGates({r: read_scores(s, e) for r, s, e in zip(recs, scores, embs)}, quality, speaker, reference)


def aggregate_main(snakemake, log) -> None:
    recs = list(snakemake.params.recs)
    # the inputs are the shards' manifests (workflow_scripts/shards.py): each names its
    # recordings' per-recording files
    jsonls = member_outputs(snakemake.input.transcripts, "transcripts", recs)
    clip_manifests = getattr(snakemake.input, "clips", []) or []
    clips = member_outputs(clip_manifests, "clips", recs) if clip_manifests else [None] * len(recs)
    speakers = dict(snakemake.params.speakers)
    languages = dict(getattr(snakemake.params, "languages", {}) or {})
    language = snakemake.params.language  # transcription.language: null, "auto" or a code
    default_lang = language if language != "auto" else None
    ov_files = getattr(snakemake.input, "overrides", None) or []
    ov_files = [ov_files] if isinstance(ov_files, str) else list(ov_files)
    overrides = read_overrides(ov_files[0]) if ov_files else {}
    result = aggregate([(r, j, c, speakers.get(r, ""), languages.get(r)) for r, j, c in zip(recs, jsonls, clips)],
                       dict(snakemake.params.gate or {}), default_lang, overrides, str(ov_files[0]) if ov_files else None,
                       read_audio_gates(snakemake, recs), RecutParams.from_config(dict(snakemake.params.recut)))
    ov = result["summary"]["overrides"]
    if ov_files:
        log.info("overrides from %s: %s applied", ov_files[0], ov["counts"] or "none")
    for clip in ov["unmatched"]:
        log.warning("%s: clip %s is not in this run (ignored)", ov_files[0], clip)
    for a in ov["applied"]:
        if a.get("unspeakable"):
            log.warning("%s: edited text of %s keeps characters the phonemizer cannot speak: %s",
                        ov_files[0], a["clip"], a["unspeakable"])
    out = snakemake.output
    write_outputs(result, out.metadata, out.rejected, out.summary, getattr(out, "review", None), out.recut)
    s = result["summary"]
    log.info("%d clips: %d kept (%.3f h), %d rejected %s", s["clips"], s["kept"], s["kept_hours"], s["rejected"],
             s["rejected_by_reason"])
    q = s["quality"]
    if q and q["enabled"]:
        log.info("DNSMOS bars applied: OVRL %s (min_ovrl %s), P.808 %s (min_p808 %s); the target voice's %d clips at"
                 " quantile %s: OVRL %s, P.808 %s", q["min_ovrl_applied"], q["min_ovrl"], q["min_p808_applied"],
                 q["min_p808"], q["target_clips"], q["relative_quantile"], q["target_quantile_ovrl"],
                 q["target_quantile_p808"])
        if q["noisy_voice"]:
            log.warning("the target voice was recorded in noise (OVRL %s at quantile %s, under %s): its clips are "
                        "judged against its own recordings, down to the floors, and a voice trained on the kept "
                        "ones will carry the noise (separation or preprocess.denoise may help)",
                        q["target_quantile_ovrl"], q["relative_quantile"], NOISY_VOICE_OVRL)
    spk = s["speakers"]
    if spk:
        for rec, v in spk["recordings"].items():
            log.info("%s: %d voice(s) found; %s", rec, v["voices_found"],
                     ", ".join(f"{k} {x['seconds']:.0f} s (kept {x['kept_seconds']:.0f} s)" for k, x in v["voices"].items()))
        if spk.get("window_voices", 1) > 1:
            log.info("the speaker encoder's windows hold %d voices: clips with another voice's turn are rejected "
                     "(other_speaker:turn) and cut between the turns", spk["window_voices"])
        rc = spk["recut"]
        log.info("recut: %d clip(s), %.1f s, cut from %d clip(s) rejected for another voice's part or turn",
                 rc["clips"], rc["seconds"], rc["source_clips"])


if "snakemake" in globals():
    run_stage(snakemake, aggregate_main)  # noqa: F821
