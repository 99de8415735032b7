"""Static review page ``{root}/review/index.html`` (runs in the media env; no server).

Lists every transcribed clip (kept and rejected, from ``transcripts.tsv``; ``metadata.csv``
and ``rejected.tsv`` are checked against it) sorted by quality, worst first, with an
``<audio>`` player (relative link to ``../processed/{rec}/clips/{clip}``, or ``../recut/{clip}``
for a clip cut again from a rejected one), the transcript,
the gates' reason flags, the audio scores (DNSMOS OVRL/P.808, similarity to the target
voice; sortable) and accept / reject / edit-text controls. "Export overrides.tsv"
downloads the decisions as a TSV (``clip action text``, action = accept|reject|edit): put
it at ``{root}/overrides.tsv`` and rerun Snakemake; only ``aggregate_metadata`` and what
follows it rerun, and the overrides win over the gate (see aggregate_metadata.py). The page
starts from the overrides already applied (column ``override`` of ``transcripts.tsv``), so
an export always holds every decision, old and new.
"""

import html
import json
import os
import sys
from pathlib import Path
from urllib.parse import quote

if "snakemake" in globals():
    sys.path.insert(0, str(Path(snakemake.scriptdir).resolve().parent))  # noqa: F821

from workflow_scripts.io_utils import StageError, atomic_path, read_tsv, run_stage


def _float(value) -> float | None:
    return float(value) if value not in (None, "") else None


def review_rows(review_tsv, metadata_csv=None, rejected_tsv=None) -> list[dict]:
    """The clips of ``transcripts.tsv`` as the page shows them, worst quality first."""
    rows = read_tsv(review_tsv)
    kept_in_metadata = None
    if metadata_csv is not None:
        with open(metadata_csv, encoding="utf-8") as fh:
            kept_in_metadata = {ln.split("|", 1)[0] for ln in fh if ln.strip()}
    rejected = {r["clip"] for r in read_tsv(rejected_tsv)} if rejected_tsv is not None else None
    out = []
    for r in rows:
        keep = r.get("keep") == "1"
        if kept_in_metadata is not None and keep != (r["clip"] in kept_in_metadata):
            raise StageError(f"{metadata_csv}: {r['clip']} disagrees with {review_tsv} (rerun aggregate_metadata)")
        if rejected is not None and (not keep) != (r["clip"] in rejected):
            raise StageError(f"{rejected_tsv}: {r['clip']} disagrees with {review_tsv} (rerun aggregate_metadata)")
        out.append({
            "clip": r["clip"],
            "recording": r["recording"],
            "speaker": r.get("speaker", ""),
            "keep": keep,
            "quality": float(r.get("quality") or 0.0),
            "duration": float(r.get("duration") or 0.0),
            "reasons": [x for x in (r.get("reasons") or "").split(";") if x],
            "text": r.get("text", ""),
            "normalised": r.get("normalised", ""),
            "override": r.get("override", "") or "",
            # the audio gates' evidence (None when a gate is off or for an older table)
            "ovrl": _float(r.get("ovrl")),
            "p808": _float(r.get("p808")),
            "speaker_sim": _float(r.get("speaker_sim")),
            "voice": r.get("voice", "") or "",
            "src": ("../recut/" if r.get("cut_from") else "../processed/" + quote(r["recording"]) + "/clips/")
                   + quote(r["clip"]),
        })
    out.sort(key=lambda x: (x["quality"], x["clip"]))
    return out


def render(rows: list[dict], overrides_target: str, title: str = "Review clips") -> str:
    data = json.dumps({"clips": rows, "overridesTarget": overrides_target}, ensure_ascii=False)
    data = data.replace("</", "<\\/")  # never closes the <script> element
    return (PAGE.replace("%%TITLE%%", html.escape(title))
                .replace("%%TARGET%%", html.escape(overrides_target))
                .replace("%%DATA%%", data))


def page_main(snakemake, log) -> None:
    inp = snakemake.input
    rows = review_rows(inp.review, inp.metadata, inp.rejected)
    out = Path(snakemake.output.html)
    target = str(snakemake.params.overrides_target)
    with atomic_path(out) as tmp:
        Path(tmp).write_text(render(rows, target, f"Review clips: {os.path.basename(os.path.dirname(os.path.abspath(target)))}"),
                             encoding="utf-8")
    log.info("%d clips (%d kept) on %s; export to %s", len(rows), sum(r["keep"] for r in rows), out, target)


PAGE = r"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>%%TITLE%%</title>
<style>
  :root { --ok:#2b8a3e; --bad:#c92a2a; --edit:#e67700; --mute:#868e96; }
  body { font-family: system-ui, sans-serif; margin: 0; color: #212529; background: #f8f9fa; }
  header { position: sticky; top: 0; background: #fff; border-bottom: 1px solid #dee2e6; padding: .6em 1em; z-index: 2; }
  header h1 { font-size: 1.15em; margin: 0 0 .3em 0; }
  .bar { display: flex; flex-wrap: wrap; gap: .6em; align-items: center; font-size: .9em; }
  .bar select, .bar input { font: inherit; padding: .15em .3em; }
  #export { background: #1c7ed6; color: #fff; border: 0; border-radius: 4px; padding: .35em .9em; font: inherit; cursor: pointer; }
  .help { color: var(--mute); font-size: .85em; margin-top: .3em; }
  code { background: #f1f3f5; padding: 0 .25em; border-radius: 3px; }
  table { border-collapse: collapse; width: 100%; background: #fff; font-size: .9em; }
  th, td { padding: .4em .6em; border-bottom: 1px solid #e9ecef; vertical-align: top; text-align: left; }
  th { background: #f1f3f5; position: sticky; top: 0; }
  tr.decided-accept { background: #ebfbee; } tr.decided-reject { background: #fff5f5; } tr.decided-edit { background: #fff9db; }
  .q { font-variant-numeric: tabular-nums; white-space: nowrap; }
  .qbar { height: 4px; background: #e9ecef; width: 4em; margin-top: 3px; } .qbar > div { height: 4px; }
  .badge { display: inline-block; border-radius: 3px; padding: 0 .4em; font-size: .8em; color: #fff; white-space: nowrap; }
  .kept { background: var(--ok); } .rejected { background: var(--bad); } .pending { background: var(--edit); }
  .flag { display: inline-block; background: #fff0f6; color: #a61e4d; border: 1px solid #fcc2d7; border-radius: 3px; padding: 0 .3em; margin: 1px; font-size: .8em; }
  .scores { font-variant-numeric: tabular-nums; white-space: nowrap; font-size: .85em; }
  .low { color: var(--bad); font-weight: 600; }
  .clip { font-family: ui-monospace, monospace; font-size: .85em; }
  .rec { color: var(--mute); font-size: .8em; }
  .text { max-width: 34em; } .raw { color: var(--mute); font-size: .8em; }
  textarea.edit-text { width: 100%; min-height: 3em; font: inherit; }
  .actions button { font: inherit; font-size: .85em; margin: 1px; cursor: pointer; }
  audio { width: 16em; height: 2em; }
</style>
</head>
<body>
<header>
  <h1>%%TITLE%%</h1>
  <div class="bar">
    <span id="counts"></span>
    <label>show <select id="filter">
      <option value="all">all clips</option><option value="kept">kept</option>
      <option value="rejected">rejected</option><option value="decided">with a decision</option>
    </select></label>
    <label>sort <select id="sort">
      <option value="asc">quality, worst first</option><option value="desc">quality, best first</option>
      <option value="ovrl">audio quality (DNSMOS OVRL), worst first</option>
      <option value="sim">speaker similarity, lowest first</option>
      <option value="clip">clip name</option>
    </select></label>
    <input id="search" type="search" placeholder="search text or clip">
    <button id="export" type="button">Export overrides.tsv</button>
    <span id="status" role="status"></span>
  </div>
  <div class="help">Accept keeps a clip even if the gate rejected it, Reject removes it, Edit keeps it with your
  text (normalised like the rest). Export, save the file as <code>%%TARGET%%</code> and run Snakemake again:
  only <code>aggregate_metadata</code> and what follows are redone. The export holds every decision, including
  those already applied.</div>
</header>
<table>
  <thead><tr><th>quality</th><th>clip</th><th>status</th><th>flags</th><th>audio</th><th>listen</th><th>transcript</th><th>decision</th></tr></thead>
  <tbody id="rows"></tbody>
</table>
<script id="data" type="application/json">%%DATA%%</script>
<script>
"use strict";
const DATA = JSON.parse(document.getElementById("data").textContent);
const CLIPS = DATA.clips;
const decisions = {};   // clip -> {action, text}
let dirty = false;
for (const c of CLIPS) {
  if (c.override === "accept" || c.override === "reject") decisions[c.clip] = {action: c.override, text: ""};
  else if (c.override === "edit") decisions[c.clip] = {action: "edit", text: c.text};
}
const $ = (sel, el = document) => el.querySelector(sel);
function el(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v; else if (k === "text") e.textContent = v; else e.setAttribute(k, v);
  }
  for (const k of kids) if (k) e.append(k);
  return e;
}
function clean(t) { return String(t).replace(/[\t\r\n|]+/g, " ").replace(/\s+/g, " ").trim(); }
function outcome(c) {
  const d = decisions[c.clip];
  if (!d) return c.keep;
  return d.action !== "reject";
}
function renderRow(c) {
  const d = decisions[c.clip];
  const tr = el("tr", {"data-clip": c.clip, class: d ? "decided-" + d.action : ""});
  const qcol = c.quality >= 0.8 ? "var(--ok)" : c.quality >= 0.5 ? "var(--edit)" : "var(--bad)";
  const bar = el("div", {class: "qbar"}, el("div", {style: `width:${Math.round(c.quality * 100)}%;background:${qcol}`}));
  tr.append(el("td", {class: "q"}, c.quality.toFixed(3), bar));
  tr.append(el("td", {}, el("div", {class: "clip", text: c.clip}),
                el("div", {class: "rec", text: `${c.recording} · ${c.duration.toFixed(2)} s`})));
  const st = el("td");
  st.append(el("span", {class: "badge " + (c.keep ? "kept" : "rejected"), text: c.keep ? "kept" : "rejected"}));
  const will = outcome(c);
  if (d && (will !== c.keep || d.action === "edit" || c.override !== d.action))
    st.append(" ", el("span", {class: "badge pending", text: "→ " + d.action}));
  tr.append(st);
  const flags = el("td");
  for (const r of c.reasons) flags.append(el("span", {class: "flag", title: r, text: r}));
  tr.append(flags);
  tr.append(scoresCell(c));
  tr.append(el("td", {}, audioFor(c)));
  const txt = el("td", {class: "text"});
  const shown = d && d.action === "edit" ? d.text : c.normalised;
  txt.append(el("div", {class: "current", text: shown}));
  if (c.text && c.text !== shown) txt.append(el("div", {class: "raw", text: "recognised: " + c.text}));
  tr.append(txt);
  const act = el("td", {class: "actions"});
  const btn = (cls, label, fn) => { const b = el("button", {type: "button", class: cls, text: label}); b.onclick = fn; return b; };
  act.append(btn("accept", "Accept", () => decide(c, "accept")),
             btn("reject", "Reject", () => decide(c, "reject")),
             btn("edit", "Edit text", () => startEdit(c, tr)));
  if (d) act.append(btn("undo", "Undo", () => { delete decisions[c.clip]; changed(c); }));
  tr.append(act);
  return tr;
}
const num = (v, d) => (v === null || v === undefined ? "–" : v.toFixed(d));
function scoresCell(c) {   // DNSMOS and the target-voice similarity; the failing ones in red
  const td = el("td", {class: "scores"});
  const low = (code) => c.reasons.some((r) => r.startsWith(code));
  td.append(el("div", {class: low("low_dnsmos_ovrl") ? "low" : "", title: "DNSMOS overall MOS (1-5)", text: "OVRL " + num(c.ovrl, 2)}),
            el("div", {class: low("low_dnsmos_p808") ? "low" : "", title: "DNSMOS P.808 MOS (1-5)", text: "P808 " + num(c.p808, 2)}),
            el("div", {class: low("other_speaker") || low("no_voice") ? "low" : "",
                       title: "cosine to the target voice" + (c.voice ? " · " + c.voice : ""),
                       text: "voice " + num(c.speaker_sim, 2) + (c.voice ? " " + c.voice.replace("voice_", "#") : "")}));
  return td;
}
const players = {};   // one <audio> per clip, kept across re-renders (playback goes on)
function audioFor(c) {
  if (!players[c.clip]) players[c.clip] = el("audio", {controls: "", preload: "none", src: c.src});
  return players[c.clip];
}
function rowOf(c) { return document.querySelector(`tr[data-clip="${CSS.escape(c.clip)}"]`); }
function startEdit(c, tr) {
  const cell = $(".text", tr);
  const d = decisions[c.clip];
  const ta = el("textarea", {class: "edit-text"});
  ta.value = d && d.action === "edit" ? d.text : (c.text || c.normalised);
  const save = el("button", {type: "button", class: "save", text: "Save"});
  const cancel = el("button", {type: "button", class: "cancel", text: "Cancel"});
  save.onclick = () => { const t = clean(ta.value); if (!t) { ta.focus(); return; } decide(c, "edit", t); };
  cancel.onclick = () => refresh(c);
  ta.addEventListener("keydown", (e) => { if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); save.click(); } });
  cell.replaceChildren(ta, save, " ", cancel);
  ta.focus();
}
function decide(c, action, text = "") { decisions[c.clip] = {action, text}; changed(c); }
function changed(c) { dirty = true; refresh(c); }
function refresh(c) {   // redraw one row only: other rows keep their players and open editors
  const old = rowOf(c);
  if (old) old.replaceWith(renderRow(c));
  counts();
}
function render() {
  const f = $("#filter").value, s = $("#sort").value, q = $("#search").value.toLowerCase();
  let list = CLIPS.filter((c) =>
    (f === "all" || (f === "kept" && c.keep) || (f === "rejected" && !c.keep) || (f === "decided" && decisions[c.clip])) &&
    (!q || (c.clip + " " + c.text + " " + c.normalised).toLowerCase().includes(q)));
  if (s === "desc") list = list.slice().sort((a, b) => b.quality - a.quality || a.clip.localeCompare(b.clip));
  else if (s === "clip") list = list.slice().sort((a, b) => a.clip.localeCompare(b.clip));
  else if (s === "ovrl" || s === "sim") {
    const key = s === "ovrl" ? "ovrl" : "speaker_sim";
    const v = (c) => (c[key] === null ? Infinity : c[key]);
    list = list.slice().sort((a, b) => v(a) - v(b) || a.clip.localeCompare(b.clip));
  }
  $("#rows").replaceChildren(...list.map(renderRow));
  counts();
}
function counts() {
  const kept = CLIPS.filter((c) => c.keep).length;
  const n = Object.keys(decisions).length;
  const willKeep = CLIPS.filter(outcome).length;
  $("#counts").textContent = `${CLIPS.length} clips: ${kept} kept, ${CLIPS.length - kept} rejected · ` +
    `${n} decision${n === 1 ? "" : "s"} (${willKeep} kept after export)`;
}
function overridesTsv() {
  const lines = ["clip\taction\ttext"];
  for (const clip of Object.keys(decisions).sort()) {
    const d = decisions[clip];
    lines.push([clip, d.action, d.action === "edit" ? clean(d.text) : ""].join("\t"));
  }
  return lines.join("\n") + "\n";
}
$("#export").onclick = () => {
  const blob = new Blob([overridesTsv()], {type: "text/tab-separated-values"});
  const a = el("a", {href: URL.createObjectURL(blob), download: "overrides.tsv"});
  document.body.append(a); a.click(); a.remove();
  dirty = false;
  $("#status").textContent = `exported ${Object.keys(decisions).length} decisions: save as ${DATA.overridesTarget}`;
};
for (const id of ["filter", "sort"]) $("#" + id).onchange = render;
$("#search").oninput = render;
window.addEventListener("beforeunload", (e) => { if (dirty) { e.preventDefault(); e.returnValue = ""; } });
window.reviewPage = {decisions, overridesTsv};
render();
</script>
</body>
</html>
"""


if "snakemake" in globals():
    run_stage(snakemake, page_main)  # noqa: F821
