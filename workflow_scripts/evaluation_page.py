"""``eval/index.html``: hear the voice improve (rule evaluation_page; standard library only).

One column per evaluated chunk (epochs, CER, WER, speaker similarity, DNSMOS OVRL, verdict; the
chunk ``voice/selection.json`` chose is marked), one row per evaluation sentence: a player for
that chunk's synthesis (``eval/chunk_{n}/NN.wav``, linked relatively, so the page works from
disk) with what Whisper heard and the sentence's CER. Every text is HTML-escaped.
"""
import html
import json
import sys
from pathlib import Path
from urllib.parse import quote

if "snakemake" in globals():
    sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parent))  # noqa: F821

from workflow_scripts.io_utils import StageError, atomic_path, run_stage  # noqa: E402


def _num(value, digits=2) -> str:
    return "–" if value is None else f"{float(value):.{digits}f}"


def render(reports: dict[int, dict], selection: dict, title: str = "Voice evaluation per chunk") -> str:
    """The page for {chunk: report} and the selection (select_voice's JSON)."""
    chunks = sorted(reports)
    epochs = {c["chunk"]: c.get("epochs") for c in selection.get("candidates", [])}
    chosen = selection.get("chosen")
    head = ["<th>sentence</th>"]
    for n in chunks:
        o = reports[n]["overall"]
        mark = " ★ exported" if n == chosen else ""
        head.append(
            f"<th class='{'chosen' if n == chosen else ''}'>chunk {n}{html.escape(mark)}"
            f"<div class='m'>{html.escape(str(epochs.get(n, '?')))} epochs · CER {_num(o.get('cer'))} · "
            f"WER {_num(o.get('wer'))} · similarity {_num(o.get('similarity'))} · OVRL {_num(o.get('dnsmos_ovrl'))}</div>"
            f"<div class='v'>{html.escape(str(o.get('verdict', '')))}</div></th>")
    sentences = reports[chunks[0]]["sentences"] if chunks else []
    rows = []
    for i, s in enumerate(sentences):
        cells = [f"<td class='t'>{html.escape(s['text'])}</td>"]
        for n in chunks:
            rec = next((x for x in reports[n]["sentences"] if x["index"] == s["index"]), None)
            if rec is None:
                cells.append("<td>–</td>")
                continue
            src = "/".join(quote(part) for part in rec["wav"].split("/"))
            flags = "".join(f"<span class='f'>{html.escape(f)}</span>" for f in rec.get("flags", []))
            cells.append(f"<td><audio controls preload='none' src='{src}'></audio>"
                         f"<div class='h'>heard: {html.escape(rec.get('transcript') or '(nothing)')}</div>"
                         f"<div class='m'>CER {_num(rec.get('cer'))} · {_num(rec.get('seconds'), 1)} s{flags}</div></td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    rule = html.escape(str(selection.get("rule", "")))
    verdict = html.escape(str(selection.get("verdict", "")))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
 body {{ font-family: system-ui, sans-serif; margin: 1em; color: #212529; }}
 table {{ border-collapse: collapse; }} th, td {{ border: 1px solid #dee2e6; padding: .4em; vertical-align: top; }}
 th {{ background: #f1f3f5; text-align: left; }} th.chosen {{ background: #d3f9d8; }}
 .m {{ font-size: .8em; color: #495057; font-weight: normal; }} .v {{ font-size: .8em; font-weight: normal; }}
 .h {{ font-size: .85em; }} .t {{ max-width: 16em; }} .f {{ background: #fff0f6; color: #a61e4d; margin-left: .4em; }}
 audio {{ width: 14em; }}
</style></head><body>
<h1>{html.escape(title)}</h1>
<p>Exported: chunk {html.escape(str(chosen))} ({rule}): {verdict}. CER/WER: Whisper's transcript of the
synthesis against the sentence; similarity: cosine of speaker embeddings to the training clips;
OVRL: DNSMOS overall MOS (1-5).</p>
<table><thead><tr>{''.join(head)}</tr></thead><tbody>
{chr(10).join(rows)}
</tbody></table></body></html>
"""


def main(snakemake, log) -> None:
    from workflow_scripts.select_voice import chunk_of, read_report

    reports = {chunk_of(p): read_report(p) for p in map(str, snakemake.input.reports)}
    try:
        selection = json.loads(Path(snakemake.input.selection).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise StageError(f"{snakemake.input.selection}: unreadable ({exc})") from exc
    with atomic_path(snakemake.output.html) as tmp:
        Path(tmp).write_text(render(reports, selection), encoding="utf-8")
    log.info("evaluation page with %d chunk(s): %s", len(reports), snakemake.output.html)


if "snakemake" in globals():
    run_stage(snakemake, main)  # noqa: F821
