"""Training figure for the report: validation losses per epoch, the voice's evaluation per
epoch (CER, WER, speaker similarity, DNSMOS OVRL of each chunk: eval/chunk_{n}.json), and
seconds per epoch per chunk.

Each `train_chunk` job leaves, beside its weights file, `checkpoints/work/chunk_{n}/chunk.json`
(epochs, seconds per epoch) and Lightning's `csv/*/metrics.csv` (per-epoch validation losses).
"""
import csv
import json
import re
import sys
from pathlib import Path

if "snakemake" in globals():
    sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parent))  # noqa: F821

from workflow_scripts.io_utils import atomic_path, run_stage  # noqa: E402

LOSSES = ("val_loss", "val_mel", "val_kl", "val_dur", "val_gen", "val_disc")


def training_history(checkpoints: list[str]) -> tuple[dict[str, list[tuple[int, float]]], list[tuple[int, float]]]:
    """({loss: [(epoch, value)]}, [(chunk, seconds per epoch)]) read from the chunks' work dirs;
    ``checkpoints`` are the chunks' files (``chunk_{n}.weights.ckpt`` or ``chunk_{n}.ckpt``)."""
    curves: dict[str, list[tuple[int, float]]] = {}
    timing = []
    for ckpt in checkpoints:
        n = int(re.match(r"chunk_(\d+)\.", Path(ckpt).name).group(1))
        work = Path(ckpt).parent / "work" / f"chunk_{n}"
        info = work / "chunk.json"
        if info.exists():
            data = json.loads(info.read_text())
            if data.get("seconds_per_epoch") is not None:
                timing.append((n, float(data["seconds_per_epoch"])))
        for metrics in sorted(work.glob("csv/*/metrics.csv")):
            with open(metrics, newline="") as fh:
                for row in csv.DictReader(fh):
                    for key in LOSSES:
                        if row.get(key) not in (None, ""):
                            curves.setdefault(key, []).append((int(row["epoch"]), float(row[key])))
    return {k: sorted(set(v)) for k, v in curves.items()}, sorted(timing)


EVAL_METRICS = (("cer", "CER"), ("wer", "WER"), ("similarity", "speaker similarity"))


def evaluation_history(reports: list[str], epochs: list[int]) -> dict[str, list[tuple[int, float]]]:
    """{metric: [(epoch, value)]} from the chunks' evaluation reports; ``epochs[n]`` = epochs
    trained by the end of chunk n."""
    out: dict[str, list[tuple[int, float]]] = {}
    for path in reports:
        n = int(re.match(r"chunk_(\d+)\.json", Path(path).name).group(1))
        overall = json.loads(Path(path).read_text(encoding="utf-8"))["overall"]
        for key in ("cer", "wer", "similarity", "dnsmos_ovrl"):
            if overall.get(key) is not None and n < len(epochs):
                out.setdefault(key, []).append((epochs[n], float(overall[key])))
    return {k: sorted(v) for k, v in out.items()}


def plot_training(checkpoints: list[str], out_png: str, reports: list[str] = (), epochs: list[int] = ()) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves, timing = training_history(checkpoints)
    evals = evaluation_history(list(reports), list(epochs))
    fig, (ax1, ax3, ax2) = plt.subplots(1, 3, figsize=(15, 4))
    for key, label in EVAL_METRICS:
        pts = evals.get(key, [])
        if pts:
            ax3.plot([e for e, _ in pts], [v for _, v in pts], marker="o", label=label)
    ax3.set_xlabel("epoch")
    ax3.set_ylabel("CER / WER / similarity")
    ax3.set_ylim(0, max([1.05] + [v for k, _ in EVAL_METRICS for _, v in evals.get(k, [])]))
    if evals.get("dnsmos_ovrl"):
        ax4 = ax3.twinx()
        pts = evals["dnsmos_ovrl"]
        ax4.plot([e for e, _ in pts], [v for _, v in pts], marker="s", ls="--", color="#868e96", label="DNSMOS OVRL")
        ax4.set_ylim(1, 5)
        ax4.set_ylabel("DNSMOS OVRL (1-5)")
        ax4.legend(fontsize=8, loc="upper right")
    ax3.set_title("the voice per chunk (evaluation)" if evals else "no evaluation")
    if evals:
        ax3.legend(fontsize=8, loc="upper left")
    for key, pts in curves.items():
        ax1.plot([e for e, _ in pts], [v for _, v in pts], marker="o", label=key)
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("validation loss")
    ax1.set_yscale("log")
    ax1.set_title("validation losses" if curves else "no metrics logged yet")
    if curves:
        ax1.legend(fontsize=8)
    ax2.bar([f"chunk {n}" for n, _ in timing], [s for _, s in timing], color="#1c7ed6")
    ax2.set_ylabel("seconds per epoch")
    ax2.set_title("time per epoch by chunk")
    fig.tight_layout()
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)


def main(snakemake, log) -> None:
    plot_training([str(p) for p in snakemake.input.weights], str(snakemake.output.png),
                  [str(p) for p in snakemake.input.reports], list(snakemake.params.epochs))
    log.info("training figure written: %s", snakemake.output.png)


if "snakemake" in globals():
    run_stage(snakemake, main)  # noqa: F821
