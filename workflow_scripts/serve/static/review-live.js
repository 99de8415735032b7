"use strict";
// Added to the review page when serve mode serves it: every Accept / Reject / Edit / Undo is
// saved at once to {output_dir}/overrides.tsv (POST /api/overrides, the same TSV the page's
// export writes), and "Rerun" runs to metadata again (only aggregate_metadata and what
// follows are redone), then reloads the regenerated page.
(() => {
  const page = window.reviewPage;
  const bar = document.createElement("div");
  bar.id = "pvw-live";
  bar.style.cssText = "background:#e7f5ff;border-bottom:1px solid #a5d8ff;padding:.4em 1em;font-size:.9em;display:flex;gap:1em;align-items:center;flex-wrap:wrap";
  bar.innerHTML = '<span>Served live: decisions are saved to <code>overrides.tsv</code> as you make them.</span>' +
    '<button type="button" id="pvw-rerun">Rerun to metadata</button><span id="pvw-saved" role="status"></span>' +
    '<span id="pvw-run" role="status"></span>';
  document.body.prepend(bar);
  PVW.nav();
  const nav = document.querySelector(".pvw-nav");   // the review page has its own styles: inline ones here
  nav.style.cssText = "display:flex;gap:1.2em;padding:.6em 1em;background:#212529";
  for (const a of nav.querySelectorAll("a")) a.style.cssText = `color:${a.className ? "#fff" : "#dee2e6"};text-decoration:none`;
  const saved = document.getElementById("pvw-saved"), runState = document.getElementById("pvw-run");
  let chain = Promise.resolve(), pending = 0;

  function save() {
    pending += 1;
    bar.dataset.saving = "1";
    const decisions = JSON.parse(JSON.stringify(page.decisions));
    chain = chain.then(async () => {
      const r = await PVW.api("POST", "/api/overrides", {decisions});
      pending -= 1;
      if (r.httpStatus === 200) {
        saved.textContent = `saved ${r.decisions} decision${r.decisions === 1 ? "" : "s"} to ${r.path}`;
        saved.style.color = "#2b8a3e";
      } else {
        saved.textContent = `not saved: ${r.message}`;
        saved.style.color = "#c92a2a";
      }
      if (!pending) { bar.dataset.saving = ""; bar.dataset.saves = String(Number(bar.dataset.saves || 0) + 1); }
    });
  }
  // The page's own button handlers run first (target phase); this sees their result.
  document.addEventListener("click", (e) => {
    if (e.target.closest("tr[data-clip] button.accept, tr[data-clip] button.reject, tr[data-clip] button.save, tr[data-clip] button.undo")) save();
  });

  async function follow(runId) {
    const s = await PVW.api("GET", "/api/status");
    const p = s.progress;
    runState.textContent = `run ${s.run_id}: ${s.state}` + (p.total ? ` (${p.done} of ${p.total} steps)` : "") + (s.message ? ` ${s.message}` : "");
    bar.dataset.runState = s.state;
    if (s.state === "running" || s.state === "stopping") return setTimeout(() => follow(runId), 1000);
    if (s.state === "done" && s.run_id === runId) location.reload();
  }
  document.getElementById("pvw-rerun").onclick = async () => {
    await chain;
    const r = await PVW.api("POST", "/api/run", {until: "metadata"});
    if (r.httpStatus === 409) { runState.textContent = r.message; return; }
    follow(r.run_id);
  };
})();
