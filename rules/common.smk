# Helpers shared by all rule files (recordings, paths, env modules, resources).
import json
import os
import sys
from pathlib import Path

from snakemake.utils import validate

sys.path.insert(0, workflow.basedir)

from workflow_scripts import dag_resources  # noqa: E402
from workflow_scripts.envmodules import configure_env_modules  # noqa: E402
from workflow_scripts.recordings import (  # noqa: E402
    ID_PATTERN,
    recordings_from_directory,
    recordings_from_sheet,
    scan_directory,
)
from workflow_scripts.shards import estimated_seconds, plan_shards  # noqa: E402

# `separation: none` is shorthand for `separation: {method: none}`; expanding it before the
# validation lets the schema fill in the other defaults.
if isinstance(config.get("separation"), str):
    config["separation"] = {"method": config["separation"]}
validate(config, schema="../schemas/config.schema.yaml", set_default=True)


OUT = os.path.normpath(config["output_dir"])
STAGES = ["clips", "metadata", "dataset", "voice"]


# --- the recordings -----------------------------------------------------------------------
def _load_recordings():
    inp = config["inputs"]
    if inp["sample_sheet"]:
        recs = recordings_from_sheet(
            inp["sample_sheet"], config["speaker"], config["language"]
        )
    else:
        recs = recordings_from_directory(
            inp["directory"],
            config["speaker"],
            config["language"],
            tuple(inp["extensions"]),
        )
        _, skipped = scan_directory(inp["directory"], tuple(inp["extensions"]))
        for path in skipped:
            print(
                f"piper-voice-workflow: skipping {path}: unsupported extension",
                file=sys.stderr,
            )
    return {r.id: r for r in recs}


RECORDINGS = _load_recordings()
INPUT_SOURCE = config["inputs"]["sample_sheet"] or config["inputs"]["directory"]
if not RECORDINGS:
    # Not an error at parse time (`--lint`, `-n` and `--unlock` must still work): `rule all`
    # then asks only for the run summary, whose job fails with this message.
    print(
        f"piper-voice-workflow: no recordings found in {INPUT_SOURCE!r}",
        file=sys.stderr,
    )


def recording_ids():
    return sorted(RECORDINGS)


# --- shards: the unit of every per-recording stage (workflow_scripts/shards.py) -----------
def _plan_shards():
    """{shard: member ids} and each recording's estimated seconds: one stat per file."""
    seconds = {}
    for rec, r in RECORDINGS.items():
        try:
            size = os.stat(r.path).st_size
        except OSError:  # ingest reports a missing file; it weighs nothing here
            size = 0
        seconds[rec] = estimated_seconds(r.path, size)
    return plan_shards(seconds, 60.0 * config["inputs"]["shard_minutes"]), seconds


SHARDS, RECORDING_SECONDS = _plan_shards()


def shard_ids():
    return list(SHARDS)


def shard_recordings(wildcards):
    """The shard's member recording ids (sorted): a param, so a member added or removed
    reruns the shard."""
    return SHARDS[wildcards.shard]


def shard_media(wildcards):
    """The users' files of the shard's members, read-only: only ever inputs."""
    return [RECORDINGS[r].path for r in SHARDS[wildcards.shard]]


def shard_manifest(rule, shard="{shard}"):
    """A shard job's declared output: its members' outputs with their sha256."""
    return f"{OUT}/shards/{shard}/{rule}.tsv"


def all_manifests(rule):
    return [shard_manifest(rule, s) for s in shard_ids()]


def shard_log(rule):
    # under shards/: a recording id never collides with a shard's log
    return log_path(rule, "shards/{shard}")


def shard_benchmark(rule):
    return benchmark_path(rule, "shards/{shard}")


def shard_seconds(wildcards):
    """The shard's audio, estimated from its files' sizes (resources follow it)."""
    return sum(RECORDING_SECONDS[r] for r in SHARDS[wildcards.shard])


def shard_longest_seconds(wildcards):
    return max(RECORDING_SECONDS[r] for r in SHARDS[wildcards.shard])


def ingest_runtime(wildcards):
    return dag_resources.ingest_runtime(shard_seconds(wildcards))


def recording_speaker(rec):
    return RECORDINGS[rec].speaker


def recording_language(rec):
    return RECORDINGS[rec].language


# --- paths --------------------------------------------------------------------------------
def processed_path(rec, name):
    return f"{OUT}/processed/{rec}/{name}"


def dataset_path(name):
    return f"{OUT}/{name}"


def log_path(rule, key):
    return f"{OUT}/logs/{rule}/{key}.log"


def benchmark_path(rule, key):
    return f"{OUT}/benchmarks/{rule}/{key}.tsv"


def all_sidecars():
    """Every recording's source.json, through the ingest manifests of the shards."""
    return all_manifests("ingest")


def all_clip_dirs():
    """Every recording's clips directory, through the preprocess_clips manifests."""
    return all_manifests("preprocess_clips")


def recut_dirs():
    """aggregate_metadata's clips cut again from rejected joined clips (metadata.csv names them)."""
    return [dataset_path("recut")]


def excluded_recordings():
    """[(recording, reason)] of the recordings ingest could not read (`inputs.on_error:
    skip`: their sidecar holds the error), from the sidecars written so far."""
    out = []
    for rec in recording_ids():
        try:
            side = json.loads(
                Path(processed_path(rec, "source.json")).read_text("utf-8")
            )
        except (OSError, ValueError):
            continue
        if side.get("error"):
            out.append((rec, side["error"]))
    return out


def log_excluded_recordings():
    """The end of the run log (onsuccess/onerror): what was left out and why."""
    from snakemake.logging import logger

    excluded = excluded_recordings()
    if excluded:
        lines = [f"  {rec}: {reason}" for rec, reason in excluded]
        logger.warning(
            f"piper-voice-workflow: {len(excluded)} recording(s) excluded, they could not "
            f"be read (inputs.on_error: skip; listed in {dataset_path('summary.json')}):\n"
            + "\n".join(lines)
        )


# --- environments -------------------------------------------------------------------------
# Rules name both a conda env file (for `--sdm conda`) and an environment module (for
# `--sdm env-modules`, the default profile): `envs/setup_venvs.py` builds a venv from the
# same pins and writes `.modules/pvw/NAME`, which puts that venv first on PATH.
configure_env_modules(workflow.basedir)


def env_module(name):
    return f"pvw/{name}"


def check_stage_envs():
    """`onstart:` (a real run; `-n` needs no venvs): stop before the first job when an env
    the config's rules load is not built, naming it and the command that builds it."""
    from snakemake.settings.types import DeploymentMethod
    from workflow_scripts.stage_envs import require_stage_envs

    methods = workflow.deployment_settings.deployment_method
    # --sdm conda builds its own envs; --touch runs no job
    if DeploymentMethod.ENV_MODULES in methods and not workflow.touch:
        require_stage_envs(config)


# --- what `rule all` builds ---------------------------------------------------------------
def final_targets():
    until = STAGES.index(config["run_until"])
    targets = [dataset_path("summary.tsv")] + all_clip_dirs()
    if not RECORDINGS:
        return targets  # the summary job reports the missing recordings
    if until >= STAGES.index("metadata"):
        targets += [dataset_path("metadata.csv"), dataset_path("rejected.tsv")]
        targets += report_targets()
    if until >= STAGES.index("dataset"):
        targets += [
            dataset_path("piper/dataset.csv"),
            dataset_path("piper/preflight.json"),
        ]
    if until >= STAGES.index("voice"):
        targets += [
            dataset_path("voice/voice.onnx"),
            dataset_path("voice/smoke_test.json"),
            dataset_path("voice/selection.json"),
            report_path("training.png"),
        ]
        if evaluation_enabled():
            targets.append(eval_path("index.html"))
    return targets


def separation_rule_is_copy():
    return config["separation"]["method"] == "none"


def separation_mem_mb():
    sep = config["separation"]
    return dag_resources.separation_mem_mb(sep["method"], sep["chunk_s"], sep["mem_mb"])


def separation_runtime(wildcards):
    sep = config["separation"]
    return dag_resources.separation_runtime(
        shard_seconds(wildcards), sep["method"], sep["device"], sep["threads"]
    )


def separation_gpus():
    return dag_resources.gpus(config["separation"]["device"])


# --- resources ----------------------------------------------------------------------------
# A shard job's resources follow its audio, estimated from its files' sizes at DAG-build time
# (no file is read): the time from the shard's total, the memory from its longest member
# (members are processed one at a time).
def audio_job_mem_mb(wildcards):
    return dag_resources.audio_job_mem_mb(
        shard_longest_seconds(wildcards), config["sample_rate"]
    )


def audio_job_runtime(wildcards):
    return dag_resources.audio_job_runtime(shard_seconds(wildcards))


# --- segmentation and clips ---------------------------------------------------------------
def stage_params(section, params_class):
    """The keys of ``config[section]`` that the stage's parameter dataclass reads: exactly
    what its job depends on (each param is a rerun trigger)."""
    import dataclasses

    names = {f.name for f in dataclasses.fields(params_class)}
    return {k: v for k, v in config[section].items() if k in names}


def segmentation_params():
    from workflow_scripts.segmentation import SegmentParams

    return stage_params("segmentation", SegmentParams)


def preprocess_params():
    from workflow_scripts.preprocess import PreprocessParams

    return stage_params("preprocess", PreprocessParams)


# --- transcription ------------------------------------------------------------------------
def transcription_env():
    """The env family of the configured backend (whisperx pulls torch: ~7.6 GB)."""
    if config["transcription"]["backend"] == "whisperx":
        return "whisperx"
    return "fasterwhisper"


def transcription_conda_env():
    return f"../envs/{transcription_env()}.yaml"


def transcription_gpus():
    return dag_resources.gpus(config["transcription"]["device"])


def transcription_mem_mb(wildcards):
    return dag_resources.transcription_mem_mb(
        transcription_env(), config["transcription"]["decode_workers"]
    )


def transcription_runtime(wildcards):
    return dag_resources.transcription_runtime(shard_seconds(wildcards))


def transcription_language(rec):
    """null: the recording's language; "auto": detect per clip; else that language."""
    lang = config["transcription"]["language"]
    if lang is None:
        return recording_language(rec)
    return None if lang == "auto" else lang


# The keys the transcribe job reads: the gate's thresholds are aggregate_metadata's, so
# changing one re-gates without decoding again.
TRANSCRIBE_KEYS = (
    "backend",
    "model",
    "device",
    "compute_type",
    "batch_size",
    "beam_size",
    "decode",
    "decode_workers",
    "window_s",
    "condition_on_previous_text",
    "seed",
    "align_model",
    "require_alignment",
)


def transcription_params():
    return {k: config["transcription"][k] for k in TRANSCRIBE_KEYS}


def shard_languages(wildcards):
    """{member: decoding language} (None: detect per clip)."""
    return {r: transcription_language(r) for r in SHARDS[wildcards.shard]}


def all_transcripts():
    return all_manifests("transcribe")


def speakers_by_recording():
    return {r: recording_speaker(r) for r in recording_ids()}


def languages_by_recording():
    return {r: recording_language(r) for r in recording_ids()}


# --- audio gates (rules/score.smk) --------------------------------------------------------
def audio_gates_enabled():
    return config["quality"]["enabled"] or config["speaker_gate"]["enabled"]


def all_scores():
    """score_clips' manifests (scores.jsonl and embeddings.npy of every recording; none when
    both audio gates are off)."""
    if not audio_gates_enabled():
        return []
    return all_manifests("score_clips")


def speaker_reference_files():
    return list(config["speaker_gate"]["reference"])


def speaker_reference_input():
    """The reference embedding, when reference files are configured and the gate is on."""
    gate = config["speaker_gate"]
    if gate["enabled"] and gate["reference"]:
        return [dataset_path("speaker/reference.npy")]
    return []


def scoring_params():
    q = config["quality"]
    return {
        "device": q["device"],
        "dnsmos": q["enabled"],
        "max_windows": q["max_windows"],
        "short_clip_input_s": q["short_clip_input_s"],
        "precision": q["precision"],
    }


def scoring_gpus():
    return dag_resources.gpus(config["quality"]["device"])


def scoring_mem_mb(wildcards):
    return dag_resources.scoring_mem_mb(config["quality"]["threads"])


def scoring_runtime(wildcards):
    return dag_resources.scoring_runtime(shard_seconds(wildcards))


def quality_gate_params():
    """The thresholds aggregate_metadata reads (score_clips reads device/max_windows)."""
    q = config["quality"]
    return {
        k: q[k]
        for k in (
            "enabled",
            "min_ovrl",
            "relative_margin",
            "relative_quantile",
            "min_ovrl_floor",
            "min_p808",
            "min_p808_floor",
            "min_sig",
            "min_bak",
        )
    }


def speaker_gate_params():
    g = config["speaker_gate"]
    return {
        k: g[k]
        for k in (
            "enabled",
            "min_similarity",
            "min_part_similarity",
            "min_short_part_similarity",
            "min_window_similarity",
            "cluster_threshold",
        )
    }


def recut_params():
    """What aggregate_metadata needs to cut a rejected joined clip again (workflow_scripts/
    recut.py): speaker_gate.recut and the preprocess keys a clip is trimmed and levelled by.
    """
    p = config["preprocess"]
    return {
        "enabled": config["speaker_gate"]["recut"],
        **{
            k: p[k]
            for k in (
                "min_clip_s",
                "pad_s",
                "trim_threshold_db",
                "target_lufs",
                "peak_dbfs",
            )
        },
    }


# --- report and review (rules/report.smk) -------------------------------------------------
# `snakemake --report report.html` collects the figures of `report_plots` and the table of
# `report_summary`; `review_page` writes a static page to listen to, accept, reject and
# correct clips, whose export (`overrides.tsv`) placed at `{root}/overrides.tsv` feeds
# `aggregate_metadata`.
REPORT_FIGURES = [
    "clip_durations",
    "hours_per_recording",
    "rejects_by_reason",
    "quality",
    "speaking_rate",
    "loudness",
    "audio_quality",
    "speakers",
]


def report_path(name):
    return f"{OUT}/report/{name}"


def review_page_path():
    return f"{OUT}/review/index.html"


def report_targets():
    return [
        report_path("run_summary.html"),
        report_path("run_summary.tsv"),
        review_page_path(),
    ] + [report_path(f"{name}.png") for name in REPORT_FIGURES]


def overrides_path():
    return dataset_path("overrides.tsv")


def overrides_input(wildcards):
    """The user's manual decisions, when present: appearing, changing or disappearing reruns
    aggregate_metadata and what follows (input-set and checksum rerun triggers)."""
    path = overrides_path()
    return [path] if os.path.exists(path) else []


def vocals_rule_name():
    return "copy_vocals" if separation_rule_is_copy() else "separate_vocals"


def stage_benchmarks():
    """{rule: [benchmark TSVs]} of every job up to metadata (time per stage in the report)."""
    per_shard = [
        "ingest",
        vocals_rule_name(),
        "segment",
        "preprocess_clips",
        "transcribe",
    ]
    out = {
        name: [benchmark_path(name, f"shards/{s}") for s in shard_ids()]
        for name in per_shard
    }
    out["summary"] = [benchmark_path("summary", "all")]
    out["aggregate_metadata"] = [benchmark_path("aggregate_metadata", "all")]
    return out


def all_stage_benchmarks():
    return [path for paths in stage_benchmarks().values() for path in paths]


def report_limits():
    gate = config["transcription"]["gate"]
    return {
        "min_clip_s": config["preprocess"]["min_clip_s"],
        "max_clip_s": config["preprocess"]["max_clip_s"],
        "min_chars_per_s": gate["min_chars_per_s"],
        "max_chars_per_s": gate["max_chars_per_s"],
        "target_lufs": config["preprocess"]["target_lufs"],
        "min_ovrl": config["quality"]["min_ovrl"],
        "min_p808": config["quality"]["min_p808"],
        "min_similarity": config["speaker_gate"]["min_similarity"],
    }
