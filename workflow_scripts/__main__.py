"""Stage commands: ``python -m workflow_scripts STAGE --input PATH [--config FILE]...``.

Thin wrappers over the one DAG: each runs Snakemake up to its stage (``run_until`` and
``--until RULE``) on the given input (a file or a folder, via a config overlay) and prints
what it ran and where the outputs are. Everything Snakemake does (resume, rerun triggers,
the lock) is unchanged; ``-n`` is a dry run. Arguments after ``--`` go to Snakemake.

  ingest            decode each recording: processed/{rec}/audio.wav, source.json
  preprocess_clips  segment and cut the clips: processed/{rec}/clips/, summary.json
  transcribe        transcribe and gate: processed/{rec}/transcripts.jsonl, metadata.csv
  train             dataset, training chunks, export, smoke test: voice/voice.onnx(.json)
"""
from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from workflow_scripts.snakemake_cmd import REPO, config_overlay, dotted, input_overlay, load_config, resolve, snakemake_argv


@dataclass(frozen=True)
class Stage:
    run_until: str
    until: tuple[str, ...]     # snakemake --until (empty: the whole DAG of run_until)
    per_recording: tuple[str, ...]
    run_wide: tuple[str, ...]
    what: str
    targets: tuple[str, ...] = ()  # explicit targets under output_dir (instead of --until)


STAGE_COMMANDS = {
    "ingest": Stage("clips", ("ingest",), ("processed/{rec}/audio.wav", "processed/{rec}/source.json"), (),
                    "decode each recording to mono 16-bit WAV at the pipeline rate"),
    # the run summary (hours in, yield, dropped by reason) needs every recording's clips; as a
    # target, not `--until`: Snakemake stops before jobs downstream of an --until rule
    "preprocess_clips": Stage("clips", (), ("processed/{rec}/clips",), ("summary.json", "summary.tsv"),
                              "vocals, segmentation and clips (trimmed, merged, loudness-normalised)",
                              targets=("summary.json",)),
    "transcribe": Stage("metadata", ("aggregate_metadata",), ("processed/{rec}/transcripts.jsonl",),
                        ("metadata.csv", "rejected.tsv", "transcripts.tsv", "transcription_summary.json", "recut/"),
                        "transcribe every clip and apply the quality gate"),
    "train": Stage("voice", (), (), ("piper/dataset.csv", "checkpoints/", "voice/voice.onnx", "voice/voice.onnx.json",
                                     "voice/smoke_test.json"),
                   "Piper dataset, chunked training, ONNX export and smoke test"),
}


def parse_args(argv):
    extra = []
    if "--" in argv:
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1:]
    ap = argparse.ArgumentParser(prog="python -m workflow_scripts", description=__doc__.split("\n\n")[1],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog=__doc__.split("\n\n", 2)[2])
    ap.add_argument("stage", choices=sorted(STAGE_COMMANDS))
    ap.add_argument("--input", help="a recording or a folder of recordings (default: the config's inputs)")
    ap.add_argument("--config", action="append", default=[], metavar="FILE",
                    help="config file(s) on top of the working directory's config.yaml")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a config value for this run, e.g. training.epochs=2 (YAML value; via a config overlay)")
    ap.add_argument("--workdir", default=str(REPO), help="Snakemake's working directory (default: the repository)")
    ap.add_argument("--cores", default=None, help="snakemake --cores (default: the profile's, all)")
    ap.add_argument("-n", "--dry-run", action="store_true", help="show what would run, run nothing")
    args = ap.parse_args(argv)
    args.extra = extra
    return args


def recording_ids(config: dict, workdir: Path) -> list[str]:
    from workflow_scripts.recordings import recordings_from_directory, recordings_from_sheet

    inp = config["inputs"]
    if inp["sample_sheet"]:
        recs = recordings_from_sheet(resolve(workdir, inp["sample_sheet"]), config["speaker"], config["language"])
    else:
        recs = recordings_from_directory(resolve(workdir, inp["directory"]), config["speaker"], config["language"],
                                         tuple(inp["extensions"]))
    return sorted(r.id for r in recs)


def describe(stage: Stage, config: dict, workdir: Path, dry_run: bool) -> list[str]:
    out = resolve(workdir, config["output_dir"])
    recs = recording_ids(config, workdir)
    mark = (lambda p: "") if dry_run else (lambda p: "" if Path(p).exists() else "  (missing)")
    lines = [f"{len(recs)} recording(s): {', '.join(recs) or 'none'}"]
    for pattern in stage.per_recording:
        for rec in recs:
            p = out / pattern.format(rec=rec)
            lines.append(f"  {p}{mark(p)}")
    for name in stage.run_wide:
        p = out / name
        lines.append(f"  {p}{mark(p)}")
    return lines


def main(argv=None) -> int:
    from workflow_scripts.serve.progress import Progress

    args = parse_args(list(sys.argv[1:] if argv is None else argv))
    stage = STAGE_COMMANDS[args.stage]
    workdir = Path(args.workdir).resolve()
    configs = [Path(c).resolve() for c in args.config]
    if args.input:
        configs.append(input_overlay(workdir, args.input))
    if args.set:
        try:
            configs.append(config_overlay(workdir, dotted(args.set)))
        except ValueError as exc:
            raise SystemExit(f"--set {exc}")
    config = load_config(workdir, configs, {"run_until": stage.run_until})
    extra = (["-n"] if args.dry_run else []) + args.extra
    targets = [os.path.normpath(os.path.join(config["output_dir"], t)) for t in stage.targets]
    argv = snakemake_argv(workdir, configs, {"run_until": stage.run_until}, until=stage.until, targets=targets, cores=args.cores, extra=extra)
    print(f"{args.stage}: {stage.what}\n  input {args.input or config['inputs']['sample_sheet'] or config['inputs']['directory']}"
          f"\n  running: {shlex.join(['snakemake', *argv[3:]])}", file=sys.stderr, flush=True)
    progress = Progress()
    proc = subprocess.Popen(argv, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            errors="replace", stdin=subprocess.DEVNULL)
    for line in proc.stdout:
        sys.stderr.write(line)
        progress.feed(line)
    rc = proc.wait()
    planned = ", ".join(f"{r} {n}" for r, n in progress.planned.items() if r != "all") or "none"
    if progress.locked:
        verdict = "refused: another Snakemake holds the lock"
    elif rc:
        verdict = f"FAILED (exit {rc}) in {', '.join(sorted({f['rule'] for f in progress.failed})) or 'snakemake'}"
    elif args.dry_run:
        verdict = f"dry run: would run {planned}"
    else:
        done = ", ".join(f"{r} {n}" for r, n in sorted(progress.finished.items()) if r != "all")
        verdict = f"ran {done}" if done else "nothing to be done: everything is up to date"
    print(f"\n{args.stage}: {verdict}", flush=True)
    print(f"{'outputs would be' if args.dry_run else 'outputs'}:", flush=True)
    for line in describe(stage, config, workdir, args.dry_run):
        print(line, flush=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
