"""Report figures of the audio gates (from ``transcripts.tsv``; called by report_plots):

* ``audio_quality.png``: DNSMOS OVRL and P.808 histograms, kept vs rejected, against
  the bars applied (clip_gates.applied_bars; ``quality.min_ovrl`` / ``min_p808`` when none);
* ``speakers.png``: cosine to the target voice (histogram against
  ``speaker_gate.min_similarity``) and the 2-D map of clip embeddings (first two principal
  components, clip_gates.embedding_map) coloured by kept / rejected, each voice its marker.

Figures say "gate off" when the scores are absent (``quality.enabled`` /
``speaker_gate.enabled`` false and nothing scored).
"""
from workflow_scripts.report_plots import (
    KEPT_COLOUR,
    LIMIT_COLOUR,
    REJECTED_COLOUR,
    _bins,
    _empty,
    _float,
    _limit_line,
    _save,
)

MARKERS = "o^sDvP*Xh"


def _split(rows: list[dict], key: str) -> tuple[list[float], list[float]]:
    kept = [v for v in (_float(r.get(key)) for r in rows if r.get("keep") == "1") if v is not None]
    rej = [v for v in (_float(r.get(key)) for r in rows if r.get("keep") != "1") if v is not None]
    return kept, rej


def _hist(ax, rows, key, limit, limit_name, xlabel, lo=None, hi=None) -> None:
    kept, rej = _split(rows, key)
    if not (kept or rej):
        _empty(ax, "gate off: no scores")
    else:
        ax.hist([kept, rej], bins=_bins(kept + rej, lo if limit is None else min(limit, lo or limit), hi),
                stacked=True, color=[KEPT_COLOUR, REJECTED_COLOUR], edgecolor="white",
                label=[f"kept ({len(kept)})", f"rejected ({len(rej)})"])
        if limit is not None:
            _limit_line(ax, limit, f"{limit_name} = {limit:g}")
        ax.legend(fontsize=8, loc="upper left")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("clips")


def _figure2(width=11.0, height=4.0):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(width, height), dpi=110)
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.set_axisbelow(True)
    return fig, axes


def plot_audio_quality(rows: list[dict], limits: dict, path, applied: dict | None = None) -> None:
    """``applied``: the quality part of transcription_summary.json; the bars it applied
    (``min_ovrl_applied``, ``min_p808_applied``) are drawn instead of ``limits``' when set."""
    fig, (a, b) = _figure2()
    for ax, key, label in ((a, "ovrl", "DNSMOS OVRL (overall MOS, 1-5)"), (b, "p808", "DNSMOS P.808 MOS (1-5)")):
        bar = (applied or {}).get(f"min_{key}_applied")
        if bar is None:
            _hist(ax, rows, key, limits.get(f"min_{key}"), f"min_{key}", label)
        else:
            _hist(ax, rows, key, bar, f"{key} bar applied", label)
    if (applied or {}).get("noisy_voice"):
        a.set_title("the target voice was recorded in noise: a voice trained on it keeps the noise",
                    fontsize=9, color=LIMIT_COLOUR)
    _save(fig, path)


def plot_speakers(rows: list[dict], limits: dict, path) -> None:
    fig, (a, b) = _figure2()
    _hist(a, rows, "speaker_sim", limits.get("min_similarity"), "min_similarity",
          "cosine to the target voice", hi=1.0)
    pts = [(_float(r.get("map_x")), _float(r.get("map_y")), r.get("keep") == "1", r.get("voice") or "")
           for r in rows]
    pts = [p for p in pts if p[0] is not None and p[1] is not None and p[3]]
    if not pts:
        _empty(b, "gate off: no embeddings")
    else:
        voices = sorted({p[3] for p in pts}, key=lambda v: int(v.rsplit("_", 1)[-1]))
        for i, voice in enumerate(voices):
            for keep, colour in ((True, KEPT_COLOUR), (False, REJECTED_COLOUR)):
                sel = [p for p in pts if p[3] == voice and p[2] == keep]
                if sel:
                    b.scatter([p[0] for p in sel], [p[1] for p in sel], s=14, c=colour, alpha=0.75,
                              marker=MARKERS[i % len(MARKERS)], edgecolors="none",
                              label=f"{voice} {'kept' if keep else 'rejected'} ({len(sel)})")
        b.legend(fontsize=7, loc="best")
        b.set_title("clip embeddings (PCA), one marker per voice", fontsize=9, color=LIMIT_COLOUR)
    b.set_xlabel("first principal component")
    b.set_ylabel("second principal component")
    _save(fig, path)
