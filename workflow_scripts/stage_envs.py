"""Which stage venvs a config needs.

`setup.sh` builds only these (all of them is ~14.5 GB, WhisperX alone 7.7 GB, while the
example needs a third of that), and a run stops at its start, before any job, when one of
them is missing, with the command that builds it (otherwise the first job that loads the
env fails, maybe hours into the run).

The config given to `stage_envs` is the validated one, defaults filled in by the schema
(as rules/common.smk validates it), so this module reads keys and holds no defaults.

CLI (setup.sh; run with the runner venv's python, which has Snakemake and jsonschema)::

    python -m workflow_scripts.stage_envs [--configfile FILE ...]   # envs FILE(s) need
    python -m workflow_scripts.stage_envs --all                      # every stage env

Each FILE is read as `snakemake --configfile FILE` run from the repository root reads it:
over the repository's config.yaml (the Snakefile's `configfile:`). Names are printed one
line, space-separated, largest first.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SCHEMA = REPO / "schemas" / "config.schema.yaml"
WORKFLOW_CONFIG = REPO / "config.yaml"

# The venv that runs Snakemake itself: every set-up builds it first.
RUNNER_ENV = "snakemake"
# Every env a rule can load, largest first: setup.sh builds a few at once in this order,
# so the longest build starts first and the others finish beside it.
STAGE_ENVS = ("whisperx", "spleeter", "scoring", "piper", "demucs", "fasterwhisper", "media")
# run_until's values in pipeline order (the schema's enum; rules/common.smk's STAGES).
STAGES = ("clips", "metadata", "dataset", "voice")


def _reaches(config: dict, stage: str) -> bool:
    return STAGES.index(config["run_until"]) >= STAGES.index(stage)


def transcription_env(config: dict) -> str:
    """The env of the transcribe rule for the configured backend."""
    return "whisperx" if config["transcription"]["backend"] == "whisperx" else "fasterwhisper"


def stage_envs(config: dict) -> set[str]:
    """The env names (envs/NAME.yaml, module pvw/NAME) the rules of a validated config load,
    plus the runner env."""
    from workflow_scripts.separation import env_name as separation_env

    # ingest, copy_vocals, segment, preprocess_clips, summary (every run), and later
    # aggregate_metadata and the report rules
    envs = {RUNNER_ENV, "media"}
    if config["separation"]["method"] != "none":
        envs.add(separation_env(config["separation"]))  # separate_vocals
    if _reaches(config, "metadata"):
        envs.add(transcription_env(config))  # transcribe
        # score_clips and the speaker reference feed aggregate_metadata's gates
        if config["quality"]["enabled"] or config["speaker_gate"]["enabled"]:
            envs.add("scoring")
    if _reaches(config, "dataset"):
        envs.add("piper")  # piper_dataset, train_chunk, export_voice, smoke_test
    return envs


def ordered(names) -> list[str]:
    """``names`` in build order (STAGE_ENVS' order, the runner first)."""
    order = (RUNNER_ENV,) + STAGE_ENVS
    return sorted(names, key=lambda n: (order.index(n) if n in order else len(order), n))


# --- reading config files as Snakemake does -----------------------------------------------
def expand_shorthand(config: dict) -> dict:
    """`separation: none` is shorthand for `separation: {method: none}` (rules/common.smk
    expands it the same way before validating, so the schema fills in the rest)."""
    if isinstance(config.get("separation"), str):
        config["separation"] = {"method": config["separation"]}
    return config


def validated(config: dict) -> dict:
    """``config`` validated by the schema, with its defaults filled in (in place)."""
    from snakemake.utils import validate

    validate(expand_shorthand(config), schema=str(SCHEMA), set_default=True)
    return config


def load_config(configfile: str | os.PathLike) -> dict:
    """The validated config of `snakemake --configfile FILE` run from the repository root:
    the Snakefile's config.yaml, then FILE over it (Snakemake's own loader and merge)."""
    from snakemake.common.configfile import load_configfile
    from snakemake.utils import update_config

    config: dict = {}
    if WORKFLOW_CONFIG.exists():
        update_config(config, load_configfile(str(WORKFLOW_CONFIG)))
    update_config(config, load_configfile(str(configfile)))
    return validated(config)


# --- are the venvs there? -----------------------------------------------------------------
def _setup_venvs():
    """envs/setup_venvs.py (a standalone script: it runs before any venv exists)."""
    spec = importlib.util.spec_from_file_location("setup_venvs", REPO / "envs" / "setup_venvs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def missing_envs(names) -> list[str]:
    """The envs of ``names`` that a job could not load: no complete venv for the current
    pins (envs/NAME.yaml changed since the set-up counts as missing), or no modulefile."""
    setup_venvs = _setup_venvs()
    return ordered(
        name
        for name in names
        if not setup_venvs.is_complete(setup_venvs.venv_path(name))
        or not (setup_venvs.MODULES_DIR / "pvw" / name).is_file()
    )


def build_command(names) -> str:
    """The command that builds ``names``: envs/setup_venvs.py run by the interpreter this
    venv was made from (its version is part of each venv's hash, so another Python would
    build other venvs than the ones looked for)."""
    setup_py = REPO / "envs" / "setup_venvs.py"
    if Path.cwd() == REPO:
        setup_py = setup_py.relative_to(REPO)
    return f"{sys._base_executable} {setup_py} {' '.join(names)}"


def missing_envs_message(missing) -> str:
    """One line: which envs are missing and the command that builds them."""
    return (
        f"piper-voice-workflow: stage env(s) {', '.join(missing)} not built for the current "
        f"pins (rules load them as pvw/NAME); build them with: {build_command(missing)}"
    )


class StageEnvsMissing(SystemExit):
    """A stage env of the config is not built (the message says which and how).

    A SystemExit because Snakemake reports any other exception from `onstart:` with a
    traceback; this one ends the run with just the message (exit status 1)."""


def require_stage_envs(config: dict) -> None:
    """Raise StageEnvsMissing (message: missing_envs_message) when a stage env of the
    validated ``config`` is not built."""
    missing = missing_envs(stage_envs(config) - {RUNNER_ENV})
    if missing:
        raise StageEnvsMissing(missing_envs_message(missing))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Print the stage envs a config needs (setup.sh).")
    ap.add_argument("--configfile", action="append", default=[], metavar="FILE",
                    help="a config as `snakemake --configfile FILE` reads it (repeatable: the union)")
    ap.add_argument("--all", action="store_true", help="every stage env (the test suite needs them)")
    args = ap.parse_args(argv)
    if args.all:
        names = set(STAGE_ENVS)
    else:
        from snakemake.exceptions import WorkflowError

        names = set()
        for path in args.configfile or [WORKFLOW_CONFIG]:
            try:
                names |= stage_envs(load_config(path))
            except (OSError, WorkflowError) as e:  # no such file, or the schema rejects it
                sys.exit(f"config {path}: {e}")
    print(" ".join(ordered(names - {RUNNER_ENV})))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    sys.exit(main())
