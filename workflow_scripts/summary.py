"""Run summary: recordings, hours in, clips, hours kept (and their share, yield), what was
dropped by reason (count and seconds), duplicate inputs, and the recordings excluded because
they could not be read (``inputs.on_error: skip``: ingest's sidecar holds the ``error``)."""

import json
import sys
from collections import Counter
from pathlib import Path

if "snakemake" in globals():  # run by Snakemake's script: directive from a copy of this file
    sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parent))  # noqa: F821

from workflow_scripts.io_utils import StageError, atomic_path, read_tsv, run_stage  # noqa: E402
from workflow_scripts.shards import member_outputs, read_manifests  # noqa: E402


def duplicate_groups(sidecars: list[dict]) -> list[list[str]]:
    """Recordings whose originals have the same sha256 (the same file given twice)."""
    by_hash: dict[str, list[str]] = {}
    for s in sidecars:
        if s.get("sha256"):
            by_hash.setdefault(s["sha256"], []).append(s["recording"])
    return [sorted(v) for v in by_hash.values() if len(v) > 1]


def summarise(sidecar_paths: list[str], clip_dirs: list[str]) -> dict:
    sidecars = [json.loads(Path(p).read_text(encoding="utf-8")) for p in sidecar_paths]
    per_rec = []
    dropped, dropped_s = Counter(), Counter()
    for side, cdir in zip(sidecars, clip_dirs):
        clips = read_tsv(Path(cdir) / "clips.tsv")
        drops = read_tsv(Path(cdir) / "dropped.tsv")
        dropped.update(d["reason"] for d in drops)
        for d in drops:
            dropped_s[d["reason"]] += float(d.get("seconds") or 0.0)
        per_rec.append(
            {
                "recording": side["recording"],
                "original_name": side["original_name"],
                "hours_in": side["duration_s"] / 3600,
                "clips": len(clips),
                "hours_kept": sum(float(c["duration_s"]) for c in clips) / 3600,
                "dropped": len(drops),
                "error": side.get("error") or "",
            }
        )
    return {
        "recordings": len(per_rec),
        "hours_in": sum(r["hours_in"] for r in per_rec),
        "clips": sum(r["clips"] for r in per_rec),
        "hours_kept": sum(r["hours_kept"] for r in per_rec),
        "dropped_by_reason": dict(sorted(dropped.items())),
        # seconds of the recordings lost before transcription, by reason; the rest of what is
        # not in a clip is silence between phrases (and trimmed pauses)
        "dropped_seconds_by_reason": {k: round(v, 3) for k, v in sorted(dropped_s.items())},
        "yield": round(sum(r["hours_kept"] for r in per_rec) / max(sum(r["hours_in"] for r in per_rec), 1e-12), 4),
        "duplicates": duplicate_groups(sidecars),
        # unreadable inputs: in the run (their jobs succeed), but without audio or clips
        "excluded": [
            {"recording": s["recording"], "original_name": s["original_name"], "reason": s["error"]}
            for s in sidecars
            if s.get("error")
        ],
        "per_recording": per_rec,
    }


def write_summary(summary: dict, tsv_path: str, json_path: str, log) -> None:
    with atomic_path(json_path) as tmp:
        tmp.write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    cols = ["recording", "original_name", "hours_in", "clips", "hours_kept", "dropped", "error"]
    with atomic_path(tsv_path) as tmp:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write("\t".join(cols) + "\n")
            for r in summary["per_recording"]:
                fh.write("\t".join(f"{r[c]:.4f}" if isinstance(r[c], float) else str(r[c]) for c in cols) + "\n")
    log.info(
        "%d recordings, %.3f h in, %d clips, %.3f h kept, dropped %s",
        summary["recordings"], summary["hours_in"], summary["clips"], summary["hours_kept"], summary["dropped_by_reason"] or "none",
    )
    for group in summary["duplicates"]:
        log.warning("duplicate input (same sha256): %s", ", ".join(group))
    for ex in summary["excluded"]:
        log.warning("excluded recording %s: %s", ex["recording"], ex["reason"])


def main(snakemake, log) -> None:
    if not snakemake.input.sidecars:
        raise StageError(
            f"{snakemake.params.source}: no recordings found: put mp3/mp4/m4a/wav/flac/ogg/webm files "
            "there, or set inputs.directory / inputs.sample_sheet"
        )
    # the inputs are the shards' manifests (workflow_scripts/shards.py), which name each
    # recording's source.json and clips directory
    recs = sorted(read_manifests(snakemake.input.sidecars))
    summary = summarise(member_outputs(snakemake.input.sidecars, "sidecar", recs),
                        member_outputs(snakemake.input.clips, "clips", recs))
    if summary["excluded"] and snakemake.params.on_error == "fail":
        # left by a run under `skip`: under `fail` an unreadable input stops the run
        raise StageError(
            f"inputs.on_error: fail, but {len(summary['excluded'])} recording(s) could not be read: "
            + "; ".join(ex["reason"] for ex in summary["excluded"])
        )
    write_summary(summary, str(snakemake.output.tsv), str(snakemake.output.json), log)


if "snakemake" in globals():
    run_stage(snakemake, main)  # noqa: F821
