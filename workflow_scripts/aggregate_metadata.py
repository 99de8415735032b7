"""Aggregate every recording's transcripts into the dataset tables (runs in the media env).

Outputs (root = config ``output_dir``):

* ``metadata.csv``: kept clips, NO header, ``|``-separated, sorted by clip file name::

      clip_filename|transcript|duration|speaker|quality

  ``clip_filename`` is the WAV file name inside ``processed/{rec}/clips/`` (names carry
  the recording id, so they are unique; duplicates are an error), ``transcript`` the text
  normalised for Piper (see quality_gate.normalize_text), ``duration`` seconds (3
  decimals), ``speaker`` the recording's speaker, ``quality`` the score in [0, 1] (4
  decimals). The first two columns are Piper's ``utt.wav|text`` format.
* ``rejected.tsv``: header ``clip recording reasons text normalised quality``; reasons
  joined with ``;``.
* ``transcripts.tsv``: every clip with its decision and both texts (for review):
  ``clip recording speaker keep quality duration reasons text normalised override``
  (``override`` = the applied manual action, empty when none).
* ``transcription_summary.json``: counts (clips, kept, rejected, hours) and rejections by
  reason code (rejected clips only), in total and per recording, and the applied overrides.

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
from pathlib import Path

if "snakemake" in globals():
    sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parent))  # noqa: F821

from workflow_scripts.io_utils import StageError, atomic_path, read_jsonl, run_stage
from workflow_scripts.quality_gate import evaluate, gate_config, normalize_text, reason_code, unspeakable_chars

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


def aggregate(recordings: list[tuple], gate_cfg: dict | None, language: str | None = None,
              overrides: dict | None = None, overrides_file: str | None = None) -> dict:
    """``recordings``: [(rec, transcripts.jsonl, clips dir or None, speaker[, language])].

    The expected language of a recording is ``gate.language`` when set, else the
    recording's own language (5th item), else ``language``. ``overrides`` (from
    ``read_overrides``) are applied after the gate and win over it.
    Returns {"rows": [...all clips with decision...], "summary": {...}}.
    """
    overrides = overrides or {}
    applied = []
    cfg = gate_config(gate_cfg, language)
    rows, seen = [], {}
    for item in recordings:
        rec, jsonl, clips_dir, speaker = item[:4]
        rec_cfg = cfg
        if (gate_cfg or {}).get("language") is None and len(item) > 4 and item[4]:
            rec_cfg = {**cfg, "language": item[4]}
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
            if clip in overrides:
                applied.append(apply_override(row, overrides[clip], record.get("language") or "en"))
            rows.append(row)
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
        "total_hours": round(sum(r["duration"] for r in rows) / 3600, 4),
        "mean_quality_kept": round(sum(r["quality"] for r in kept) / len(kept), 4) if kept else None,
        "rejected_by_reason": dict(sorted(by_reason.items())),
        "rejected_seconds_by_first_reason": {k: round(v, 3) for k, v in sorted(seconds_by_reason.items())},
        # how the clips were decoded (transcription.decode)
        "decoding": dict(sorted(Counter(r["decoding"] for r in rows).items())),
        "recordings": {k: {**v, "by_reason": dict(sorted(v["by_reason"].items()))} for k, v in sorted(per_rec.items())},
        "gate": cfg,
        "overrides": {
            "file": overrides_file,
            "counts": dict(sorted(Counter(a["action"] for a in applied).items())),
            "applied": applied,
            "unmatched": sorted(set(overrides) - {r["clip"] for r in rows}),
        },
    }
    return {"rows": rows, "summary": summary}


def write_outputs(result: dict, metadata, rejected, summary, review=None) -> None:
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
            w.writerow(["clip", "recording", "speaker", "keep", "quality", "duration", "reasons", "text", "normalised",
                        "override"])
            for r in rows:
                w.writerow([r["clip"], r["recording"], r["speaker"], int(r["keep"]), f"{r['quality']:.4f}",
                            f"{r['duration']:.3f}", ";".join(r["reasons"]), r["text"], r["normalised"],
                            r.get("override", "")])
    with atomic_path(summary) as tmp:
        Path(tmp).write_text(json.dumps(result["summary"], indent=2, sort_keys=False) + "\n", encoding="utf-8")


def aggregate_main(snakemake, log) -> None:
    recs = list(snakemake.params.recs)
    jsonls = list(snakemake.input.transcripts)
    clips = list(getattr(snakemake.input, "clips", []) or [None] * len(recs))
    if not (len(recs) == len(jsonls) == len(clips)):
        raise StageError(f"aggregate_metadata: {len(recs)} recordings but {len(jsonls)} transcripts / {len(clips)} clips dirs")
    speakers = dict(snakemake.params.speakers)
    languages = dict(getattr(snakemake.params, "languages", {}) or {})
    language = snakemake.params.language  # transcription.language: null, "auto" or a code
    default_lang = language if language != "auto" else None
    ov_files = getattr(snakemake.input, "overrides", None) or []
    ov_files = [ov_files] if isinstance(ov_files, str) else list(ov_files)
    overrides = read_overrides(ov_files[0]) if ov_files else {}
    result = aggregate([(r, j, c, speakers.get(r, ""), languages.get(r)) for r, j, c in zip(recs, jsonls, clips)],
                       dict(snakemake.params.gate or {}), default_lang, overrides, str(ov_files[0]) if ov_files else None)
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
    write_outputs(result, out.metadata, out.rejected, out.summary, getattr(out, "review", None))
    s = result["summary"]
    log.info("%d clips: %d kept (%.3f h), %d rejected %s", s["clips"], s["kept"], s["kept_hours"], s["rejected"],
             s["rejected_by_reason"])


if "snakemake" in globals():
    run_stage(snakemake, aggregate_main)  # noqa: F821
