"""Figures and the run summary table for `snakemake --report` (runs in the media env).

Rule ``report_plots`` (outputs under ``{root}/report/``):

* ``clip_durations.png``: histogram of clip durations against ``preprocess.min_clip_s`` /
  ``max_clip_s``;
* ``hours_per_recording.png``: per recording, audio in → in clips → kept by the gate;
* ``rejects_by_reason.png``: rejected clips by gate reason code, plus segments dropped by
  the clip stage (``dropped.tsv``);
* ``quality.png``: quality-score distribution, kept vs rejected;
* ``speaking_rate.png``: speech characters per second of the normalised text, against the
  gate's ``min_chars_per_s`` / ``max_chars_per_s``;
* ``loudness.png``: clip loudness (LUFS) before and after normalisation (``clips.tsv``);
* ``audio_quality.png`` and ``speakers.png``: the audio gates (workflow_scripts/report_gates.py).

Rule ``report_summary``: ``run_summary.html`` (for the report) and ``run_summary.tsv``
(``section item value``): recordings, hours in, clips, hours kept, rejected by reason, and
the time per stage summed from the benchmark TSVs' ``s`` column.

The data helpers are plain functions (tests import them); matplotlib is imported lazily.
"""

import csv
import html
import json
import sys
from collections import Counter
from pathlib import Path

if "snakemake" in globals():
    sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parent))  # noqa: F821

from workflow_scripts.io_utils import StageError, atomic_path, read_tsv, run_stage
from workflow_scripts.quality_gate import reason_code, speech_chars

KEPT_COLOUR, REJECTED_COLOUR, LIMIT_COLOUR = "#2b8a3e", "#c92a2a", "#495057"


# --------------------------------------------------------------------------- data


def read_clip_tables(clip_dirs: list[str]) -> tuple[list[dict], list[dict]]:
    """All rows of every ``clips.tsv`` and ``dropped.tsv`` (with a ``recording`` column)."""
    clips, dropped = [], []
    for d in clip_dirs:
        rec = Path(d).parent.name
        clips += [{**r, "recording": rec} for r in read_tsv(Path(d) / "clips.tsv")]
        drop = Path(d) / "dropped.tsv"
        if drop.exists():
            dropped += [{**r, "recording": rec} for r in read_tsv(drop)]
    return clips, dropped


def _float(value, default=None):
    try:
        return float(value)
    except (TypeError, ValueError):
        return default


def speaking_rates(review_rows: list[dict]) -> list[tuple[float, bool]]:
    """(speech characters per second of the normalised text, kept) per transcribed clip."""
    out = []
    for r in review_rows:
        dur = _float(r.get("duration"), 0.0)
        if dur > 0:
            out.append((speech_chars(r.get("normalised") or "") / dur, r.get("keep") == "1"))
    return out


def rejects_by_reason(review_rows: list[dict], dropped: list[dict]) -> dict[str, int]:
    """Rejected clips by gate reason code (a clip with two reasons counts twice) and
    segments dropped by the clip stage as ``clip stage: <reason>``."""
    c = Counter()
    for r in review_rows:
        if r.get("keep") != "1":
            c.update(reason_code(x) for x in (r.get("reasons") or "").split(";") if x)
    c.update(f"clip stage: {d.get('reason') or '?'}" for d in dropped)
    return dict(sorted(c.items(), key=lambda kv: (-kv[1], kv[0])))


def hours_per_recording(summary: dict, review_rows: list[dict]) -> list[dict]:
    kept = Counter()
    for r in review_rows:
        if r.get("keep") == "1":
            kept[r["recording"]] += _float(r.get("duration"), 0.0) / 3600
    return [
        {"recording": r["recording"], "hours_in": r["hours_in"], "hours_clips": r["hours_kept"],
         "hours_kept": kept.get(r["recording"], 0.0)}
        for r in summary.get("per_recording", [])
    ]


def stage_seconds(stages: dict[str, list[str]]) -> dict[str, dict]:
    """{rule: {"jobs", "s", "cpu_s"}} summed from benchmark TSVs (missing files are skipped)."""
    out = {}
    for rule, paths in stages.items():
        jobs, secs, cpu = 0, 0.0, 0.0
        for p in paths:
            if not Path(p).exists():
                continue
            for row in read_tsv(p):
                jobs += 1
                secs += _float(row.get("s"), 0.0)
                cpu += _float(row.get("cpu_time"), 0.0)
        if jobs:
            out[rule] = {"jobs": jobs, "s": round(secs, 2), "cpu_s": round(cpu, 2)}
    return out


def run_summary(summary: dict, tsum: dict, stages: dict[str, dict], dropped_by_reason: dict | None = None) -> list[tuple]:
    """(section, item, value) rows of the run summary table."""
    dropped = dropped_by_reason if dropped_by_reason is not None else summary.get("dropped_by_reason", {})
    rows = [
        ("dataset", "recordings", summary.get("recordings", 0)),
        ("dataset", "hours in", round(summary.get("hours_in", 0.0), 4)),
        ("dataset", "clips cut", summary.get("clips", 0)),
        ("dataset", "hours in clips", round(summary.get("hours_kept", 0.0), 4)),
        ("dataset", "clips transcribed", tsum.get("clips", 0)),
        ("dataset", "clips kept", tsum.get("kept", 0)),
        ("dataset", "hours kept", tsum.get("kept_hours", 0.0)),
        ("dataset", "clips rejected", tsum.get("rejected", 0)),
        ("dataset", "mean quality (kept)", tsum.get("mean_quality_kept")),
    ]
    ov = tsum.get("overrides") or {}
    for action, n in (ov.get("counts") or {}).items():
        rows.append(("manual overrides", action, n))
    for reason, n in (tsum.get("rejected_by_reason") or {}).items():
        rows.append(("rejected by reason", reason, n))
    for reason, n in dropped.items():
        rows.append(("rejected by reason", f"clip stage: {reason}", n))
    spk = tsum.get("speakers") or {}
    for rec, v in (spk.get("recordings") or {}).items():
        voices = ", ".join(f"{k} {x['seconds']:.0f} s (kept {x['kept_seconds']:.0f} s)" for k, x in v["voices"].items())
        rows.append(("voices per recording", rec, f"{v['voices_found']} found: {voices}"))
    hours_in = summary.get("hours_in", 0.0)
    if hours_in:
        rows.append(("seconds lost by reason", "yield (kept / in)", round(tsum.get("kept_hours", 0.0) / hours_in, 4)))
    for reason, sec in (summary.get("dropped_seconds_by_reason") or {}).items():
        rows.append(("seconds lost by reason", f"clip stage: {reason}", sec))
    for reason, sec in (tsum.get("rejected_seconds_by_first_reason") or {}).items():
        rows.append(("seconds lost by reason", f"gate: {reason}", sec))
    total = 0.0
    for rule, s in stages.items():
        rows.append(("time per stage (s)", f"{rule} ({s['jobs']} job{'s' if s['jobs'] != 1 else ''})", s["s"]))
        total += s["s"]
    rows.append(("time per stage (s)", "total (summed over jobs)", round(total, 2)))
    return rows


def write_summary_table(rows: list[tuple], tsv_path, html_path) -> None:
    with atomic_path(tsv_path) as tmp, open(tmp, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, delimiter="\t", lineterminator="\n")
        w.writerow(["section", "item", "value"])
        for r in rows:
            w.writerow(["" if v is None else v for v in r])
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>Run summary</title><style>",
        "body{font-family:system-ui,sans-serif;margin:1.5em;color:#212529}",
        "table{border-collapse:collapse;margin-bottom:1.5em;min-width:28em}",
        "th,td{border-bottom:1px solid #dee2e6;padding:.35em .8em;text-align:left}",
        "td.v{text-align:right;font-variant-numeric:tabular-nums}h2{font-size:1.1em;margin:.2em 0}",
        "</style></head><body>",
    ]
    sections: dict[str, list] = {}
    for section, item, value in rows:
        sections.setdefault(section, []).append((item, value))
    for section, items in sections.items():
        parts.append(f"<h2>{html.escape(section)}</h2><table>")
        for item, value in items:
            shown = "–" if value is None else (f"{value:g}" if isinstance(value, float) else str(value))
            parts.append(f"<tr><td>{html.escape(str(item))}</td><td class='v'>{html.escape(shown)}</td></tr>")
        parts.append("</table>")
    parts.append("</body></html>\n")
    with atomic_path(html_path) as tmp:
        Path(tmp).write_text("\n".join(parts), encoding="utf-8")


# --------------------------------------------------------------------------- figures


def _figure(width=7.0, height=4.0):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(width, height), dpi=110)
    ax.grid(axis="y", alpha=0.3)
    ax.set_axisbelow(True)
    return fig, ax


def _save(fig, path) -> None:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def _empty(ax, text="nothing to show"):
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color=LIMIT_COLOUR)


def _limit_line(ax, x, label) -> None:
    """A dashed vertical line at a configured limit, labelled at its foot (legends stay clear)."""
    ax.axvline(x, color=LIMIT_COLOUR, ls="--", lw=1.2)
    ax.annotate(label, (x, 0.03), xycoords=("data", "axes fraction"), rotation=90, va="bottom", ha="right",
                fontsize=8, color=LIMIT_COLOUR, bbox={"fc": "white", "ec": "none", "alpha": 0.8, "pad": 1})


def _bins(values, lo=None, hi=None, n=30):
    import numpy as np

    vals = [v for v in values if v is not None]
    a = min(vals + ([lo] if lo is not None else []))
    b = max(vals + ([hi] if hi is not None else []))
    if b <= a:
        b = a + 1.0
    pad = 0.03 * (b - a)
    return np.linspace(a - pad, b + pad, n + 1)


def plot_clip_durations(durations: list[float], limits: dict, path) -> None:
    fig, ax = _figure()
    lo, hi = limits.get("min_clip_s"), limits.get("max_clip_s")
    if durations:
        ax.hist(durations, bins=_bins(durations, lo, hi), color="#1c7ed6", edgecolor="white")
        for x, name in ((lo, "min_clip_s"), (hi, "max_clip_s")):
            if x is not None:
                _limit_line(ax, x, f"{name} = {x:g} s")
        total = sum(durations)
        ax.set_title(f"{len(durations)} clips, {total / 60:.1f} min, median {sorted(durations)[len(durations) // 2]:.2f} s")
    else:
        _empty(ax, "no clips")
    ax.set_xlabel("clip duration (s)")
    ax.set_ylabel("clips")
    _save(fig, path)


def plot_hours(per_rec: list[dict], path) -> None:
    import numpy as np

    fig, ax = _figure(7.0, max(2.5, 0.6 * len(per_rec) + 1.6))
    if per_rec:
        biggest = max(r["hours_in"] for r in per_rec)
        scale, unit = (60.0, "minutes") if biggest < 1 else (1.0, "hours")
        y = np.arange(len(per_rec))
        h = 0.27
        series = [("hours_in", "audio in", "#adb5bd"), ("hours_clips", "in clips", "#74c0fc"),
                  ("hours_kept", "kept by the gate", KEPT_COLOUR)]
        for i, (key, label, colour) in enumerate(series):
            vals = [r[key] * scale for r in per_rec]
            bars = ax.barh(y + (i - 1) * h, vals, height=h, label=label, color=colour)
            ax.bar_label(bars, fmt="%.2f", fontsize=7, padding=2)
        ax.set_yticks(y, [r["recording"] for r in per_rec], fontsize=8)
        ax.invert_yaxis()
        ax.set_xlabel(unit)
        ax.legend(fontsize=8, loc="lower right")
        ax.grid(axis="x", alpha=0.3)
        tin = sum(r["hours_in"] for r in per_rec)
        tkept = sum(r["hours_kept"] for r in per_rec)
        ax.set_title(f"{tin * scale:.2f} {unit} in → {tkept * scale:.2f} {unit} kept "
                     f"({100 * tkept / tin if tin else 0:.0f} %)")
    else:
        _empty(ax, "no recordings")
    _save(fig, path)


def plot_rejects(counts: dict[str, int], path) -> None:
    fig, ax = _figure(7.0, max(2.5, 0.4 * len(counts) + 1.5))
    if counts:
        names = list(counts)
        bars = ax.barh(names, [counts[n] for n in names], color=REJECTED_COLOUR)
        ax.bar_label(bars, fontsize=8, padding=2)
        ax.invert_yaxis()
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("clips / segments")
        ax.grid(axis="x", alpha=0.3)
        n = sum(counts.values())
        ax.set_title(f"{n} rejection{'s' if n != 1 else ''}")
    else:
        ax.set_yticks([])
        _empty(ax, "nothing rejected: every transcribed clip passed the gate")
    _save(fig, path)


def plot_quality(review_rows: list[dict], path) -> None:
    fig, ax = _figure()
    kept = [_float(r["quality"], 0.0) for r in review_rows if r.get("keep") == "1"]
    rej = [_float(r["quality"], 0.0) for r in review_rows if r.get("keep") != "1"]
    if kept or rej:
        import numpy as np

        bins = np.linspace(0, 1, 41)
        ax.hist([kept, rej], bins=bins, stacked=True, color=[KEPT_COLOUR, REJECTED_COLOUR],
                label=[f"kept ({len(kept)})", f"rejected ({len(rej)})"], edgecolor="white")
        ax.legend(fontsize=8, loc="upper left")
        if kept:
            ax.set_title(f"median quality of kept clips {sorted(kept)[len(kept) // 2]:.2f}")
    else:
        _empty(ax, "no transcribed clips")
    ax.set_xlabel("quality score (0 = worst, 1 = best)")
    ax.set_ylabel("clips")
    _save(fig, path)


def plot_speaking_rate(rates: list[tuple[float, bool]], limits: dict, path) -> None:
    fig, ax = _figure()
    lo, hi = limits.get("min_chars_per_s"), limits.get("max_chars_per_s")
    if rates:
        kept = [r for r, k in rates if k]
        rej = [r for r, k in rates if not k]
        vals = kept + rej
        bins = _bins(vals, lo, hi)
        ax.hist([kept, rej], bins=bins, stacked=True, color=[KEPT_COLOUR, REJECTED_COLOUR],
                label=[f"kept ({len(kept)})", f"rejected ({len(rej)})"], edgecolor="white")
        for x, name in ((lo, "min_chars_per_s"), (hi, "max_chars_per_s")):
            if x is not None:
                _limit_line(ax, x, f"{name} = {x:g}")
        ax.legend(fontsize=8, loc="upper right")
        ax.set_title(f"median {sorted(vals)[len(vals) // 2]:.1f} characters/s")
    else:
        _empty(ax, "no transcribed clips")
    ax.set_xlabel("speaking rate (speech characters of the normalised text per second)")
    ax.set_ylabel("clips")
    _save(fig, path)


def plot_loudness(clips: list[dict], target: float | None, path) -> None:
    fig, ax = _figure()
    before = [v for v in (_float(c.get("lufs_before")) for c in clips) if v is not None and v > -200]
    after = [v for v in (_float(c.get("lufs_after")) for c in clips) if v is not None and v > -200]
    if before or after:
        bins = _bins(before + after, target, target, 40)
        ax.hist(before, bins=bins, alpha=0.6, color="#f08c00", label=f"before ({len(before)})")
        ax.hist(after, bins=bins, alpha=0.7, color="#1c7ed6", label=f"after ({len(after)})")
        if target is not None:
            _limit_line(ax, target, f"target_lufs = {target:g}")
        ax.legend(fontsize=8, loc="upper right")
    else:
        _empty(ax, "no loudness measurements")
    ax.set_xlabel("integrated loudness (LUFS, BS.1770)")
    ax.set_ylabel("clips")
    _save(fig, path)


# --------------------------------------------------------------------------- entry points


def _read_json(path) -> dict:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise StageError(f"{path}: cannot read JSON ({exc})") from exc


def plots_main(snakemake, log) -> None:
    inp, out = snakemake.input, snakemake.output
    limits = dict(snakemake.params.limits)
    review = read_tsv(inp.review)
    summary = _read_json(inp.summary)
    from workflow_scripts.shards import read_manifests

    # input clips: the shards' preprocess_clips manifests, naming each recording's clips directory
    table = read_manifests(inp.clips)
    clips, dropped = read_clip_tables([table[rec]["clips"] for rec in sorted(table)])
    durations = [d for d in (_float(c.get("duration_s")) for c in clips) if d is not None]
    plot_clip_durations(durations, limits, out.clip_durations)
    plot_hours(hours_per_recording(summary, review), out.hours)
    plot_rejects(rejects_by_reason(review, dropped), out.rejects)
    plot_quality(review, out.quality)
    plot_speaking_rate(speaking_rates(review), limits, out.speaking_rate)
    plot_loudness(clips, limits.get("target_lufs"), out.loudness)
    from workflow_scripts.report_gates import plot_audio_quality, plot_speakers

    plot_audio_quality(review, limits, out.audio_quality, _read_json(inp.transcription).get("quality"))
    plot_speakers(review, limits, out.speakers)
    log.info("%d clips, %d transcribed: 8 figures in %s", len(clips), len(review), Path(out.quality).parent)


def summary_main(snakemake, log) -> None:
    inp, out = snakemake.input, snakemake.output
    stages = stage_seconds({k: list(v) for k, v in dict(snakemake.params.stages).items()})
    rows = run_summary(_read_json(inp.summary), _read_json(inp.transcription), stages)
    write_summary_table(rows, out.tsv, out.html)
    log.info("run summary: %d rows, %d stages timed", len(rows), len(stages))


def main(snakemake, log) -> None:
    if snakemake.rule == "report_summary":
        summary_main(snakemake, log)
    else:
        plots_main(snakemake, log)


if "snakemake" in globals():
    run_stage(snakemake, main)  # noqa: F821
