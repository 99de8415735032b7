"""Choose the chunk that becomes the voice (rule select_voice; standard library only).

Inputs: the chunks' evaluation reports (``eval/chunk_{n}.json``, workflow_scripts/voice_eval.py),
none when ``evaluation.enabled`` is false. ``params.export`` = ``training.export``:

* ``best``: voice_selection.select_best (lowest CER, then highest speaker similarity, then
  the later chunk);
* ``last``: the last chunk, with the candidates' metrics still recorded.

Without evaluation reports the last chunk is chosen whatever ``export`` says (nothing to judge
by), and the file says so. Output ``voice/selection.json``::

    {"export": "best", "rule": "...", "chosen": 3, "chosen_epochs": 40, "evaluated": true,
     "verdict": "not intelligible yet (CER 0.93), ...", "intelligibility": "not intelligible yet",
     "candidates": [{"chunk": 0, "epochs": 10, "cer": ..., "wer": ..., "similarity": ...,
                     "dnsmos_ovrl": ..., "duration_ratio": ..., "flagged_sentences": ...,
                     "verdict": "...", "report": "eval/chunk_0.json"}, ...]}
"""
import json
import re
import sys
from pathlib import Path

if "snakemake" in globals():
    sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parent))  # noqa: F821

from workflow_scripts.io_utils import StageError, atomic_path, run_stage  # noqa: E402
from workflow_scripts.voice_selection import SELECTION_RULE, intelligibility, select_best  # noqa: E402

LAST_RULE = "the last chunk (training.export: last)"
NO_EVALUATION_RULE = "the last chunk (evaluation.enabled: false)"


def chunk_of(path: str) -> int:
    m = re.fullmatch(r"chunk_(\d+)\.json", Path(path).name)
    if not m:
        raise StageError(f"{path}: not an eval/chunk_{{n}}.json report")
    return int(m.group(1))


def read_report(path: str) -> dict:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise StageError(f"{path}: unreadable evaluation report ({exc})") from exc


def selection(reports: list[str], export: str, chunks: list[int], epochs: list[int], settings: dict) -> dict:
    """The selection.json content (see the module doc)."""
    if not chunks:
        raise StageError("select_voice: no training chunks")
    epochs_of = dict(zip(chunks, epochs))
    if not reports:
        last = chunks[-1]
        return {"export": export, "rule": NO_EVALUATION_RULE, "chosen": last, "chosen_epochs": epochs_of[last],
                "evaluated": False, "verdict": "not evaluated (evaluation.enabled: false)",
                "intelligibility": None, "candidates": []}
    by_chunk = {chunk_of(p): read_report(p) for p in reports}
    picked = select_best(by_chunk)
    paths = {chunk_of(p): p for p in reports}
    for row in picked["candidates"]:
        row["epochs"] = epochs_of.get(row["chunk"])
        row["report"] = paths[row["chunk"]]
    chosen = picked["chosen"] if export == "best" else max(by_chunk)
    row = next(r for r in picked["candidates"] if r["chunk"] == chosen)
    return {"export": export, "rule": SELECTION_RULE if export == "best" else LAST_RULE, "chosen": chosen,
            "chosen_epochs": epochs_of.get(chosen), "evaluated": True, "verdict": row["verdict"],
            "intelligibility": intelligibility(row["cer"], settings), "candidates": picked["candidates"]}


def main(snakemake, log) -> None:
    p = snakemake.params
    result = selection([str(x) for x in snakemake.input.reports], str(p.export), [int(n) for n in p.chunks],
                       [int(e) for e in p.epochs], dict(p.settings))
    with atomic_path(snakemake.output.selection) as tmp:
        Path(tmp).write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    for r in result["candidates"]:
        log.info("chunk %d (%s epochs): CER %.3f, similarity %s: %s", r["chunk"], r["epochs"], r["cer"],
                 "-" if r["similarity"] is None else f"{r['similarity']:.2f}", r["verdict"])
    log.info("voice = chunk %d (%s): %s", result["chosen"], result["rule"], result["verdict"])


if "snakemake" in globals():
    run_stage(snakemake, main)  # noqa: F821
