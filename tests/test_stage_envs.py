"""Set-up builds what the config needs, and a run without one of those envs stops at once.

No venv is built here: the env sets come from the validated config, the missing-env check
runs against an empty cache (PVW_CACHE_DIR).
"""
import re
import shutil
import subprocess
import sys

import pytest
import yaml

from tests.workflow_runner import REPO, SNAKEMAKE, run_snakemake, write_config
from workflow_scripts import stage_envs
from workflow_scripts.stage_envs import load_config, validated

EXAMPLE = REPO / "config" / "example.yaml"


def envs_of(**config):
    return stage_envs.stage_envs(validated(config))


def test_example_needs_media_fasterwhisper_piper_scoring():
    # separation: none, faster-whisper, run_until voice (default), gates on (default)
    assert stage_envs.stage_envs(load_config(EXAMPLE)) == {"snakemake", "media", "fasterwhisper", "piper", "scoring"}


def test_shipped_config_needs_spleeter_and_whisperx():
    assert stage_envs.stage_envs(load_config(REPO / "config.yaml")) == {
        "snakemake", "media", "spleeter", "whisperx", "piper", "scoring"}


def test_example_is_read_over_the_shipped_config(tmp_path):
    # as `snakemake --configfile FILE` in the repo: config.yaml first, FILE over it
    overlay = tmp_path / "overlay.yaml"
    overlay.write_text("run_until: metadata\n")
    cfg = load_config(overlay)
    assert cfg["separation"]["method"] == "spleeter" and cfg["transcription"]["backend"] == "whisperx"
    assert stage_envs.stage_envs(cfg) == {"snakemake", "media", "spleeter", "whisperx", "scoring"}


@pytest.mark.parametrize("method,env", [("demucs", "demucs"), ("spleeter", "spleeter")])
def test_separation_method_picks_its_env(method, env):
    assert envs_of(separation=method, run_until="clips") == {"snakemake", "media", env}
    assert envs_of(separation={"method": method}, run_until="clips") == {"snakemake", "media", env}


def test_run_until_clips_needs_only_media():
    assert envs_of(separation="none", run_until="clips") == {"snakemake", "media"}


def test_run_until_metadata_adds_transcription_and_scoring():
    assert envs_of(separation="none", run_until="metadata") == {"snakemake", "media", "whisperx", "scoring"}
    assert envs_of(separation="none", run_until="metadata", transcription={"backend": "faster-whisper"}) == {
        "snakemake", "media", "fasterwhisper", "scoring"}


def test_run_until_dataset_adds_piper():
    assert "piper" in envs_of(separation="none", run_until="dataset")


def test_scoring_only_while_a_gate_is_on():
    base = dict(separation="none", run_until="metadata")
    assert "scoring" not in envs_of(**base, quality={"enabled": False}, speaker_gate={"enabled": False})
    assert "scoring" in envs_of(**base, quality={"enabled": False})
    assert "scoring" in envs_of(**base, speaker_gate={"enabled": False})


def test_every_named_env_has_an_env_file():
    for name in (stage_envs.RUNNER_ENV, *stage_envs.STAGE_ENVS):
        assert (REPO / "envs" / f"{name}.yaml").exists(), name


def test_stages_follow_the_schema():
    schema = yaml.safe_load((REPO / "schemas" / "config.schema.yaml").read_text())
    assert tuple(schema["properties"]["run_until"]["enum"]) == stage_envs.STAGES


def test_cli_prints_what_setup_builds():
    def cli(*args):
        return subprocess.run([sys.executable, "-m", "workflow_scripts.stage_envs", *args], cwd=REPO,
                              capture_output=True, text=True, check=True).stdout.split()

    # largest first, the runner (built before) left out
    assert cli("--configfile", str(EXAMPLE)) == ["scoring", "piper", "fasterwhisper", "media"]
    assert cli("--all") == list(stage_envs.STAGE_ENVS)
    # repeated --configfile: the union
    both = cli("--configfile", str(EXAMPLE), "--configfile", str(REPO / "config.yaml"))
    assert both == ["whisperx", "spleeter", "scoring", "piper", "fasterwhisper", "media"]


def test_setup_defaults_to_the_example():
    # README's first command is plain `bash setup.sh` followed by a run of the example
    text = (REPO / "setup.sh").read_text()
    assert "configfiles=(--configfile config/example.yaml)" in text
    assert "stage_envs --all" in text  # --with-tests


# --- the rules agree: a dry run's rules load exactly these envs ---------------------------
def rule_env_expressions():
    """{rule: the argument of its env_module(...)}, read from rules/*.smk."""
    out = {}
    for smk in (REPO / "rules").glob("*.smk"):
        for m in re.finditer(r"^\s*rule (\w+):\n(.*?)(?=^\s*rule \w+:|\Z)", smk.read_text(), re.M | re.S):
            env = re.search(r"envmodules:\s*env_module\((.+?)\),?\n", m.group(2))
            if env:
                out[m.group(1)] = env.group(1)
    return out


def env_of_expression(expr, config):
    literal = re.fullmatch(r'"(\w+)"', expr)
    if literal:
        return literal.group(1)
    # the two rules whose env follows the config
    from workflow_scripts.separation import env_name

    known = {
        'separation_helpers.env_name(config["separation"])': lambda: env_name(config["separation"]),
        "transcription_env()": lambda: stage_envs.transcription_env(config),
    }
    assert expr in known, f"a rule loads env_module({expr}): teach this test and stage_envs about it"
    return known[expr]()


@pytest.mark.parametrize("overlay", [
    None,  # config/example.yaml
    {"separation": {"method": "demucs"}, "run_until": "metadata"},
    {"separation": "none", "run_until": "clips"},
], ids=["example", "demucs-metadata", "clips"])
def test_dry_run_rules_load_the_envs_of_stage_envs(tmp_path, overlay):
    # as in the repository: the Snakefile's config.yaml, the config file over it
    shutil.copy(REPO / "config.yaml", tmp_path / "config.yaml")
    configfile = EXAMPLE
    if overlay:
        configfile = tmp_path / "overlay.yaml"
        configfile.write_text(yaml.safe_dump(overlay))
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "a.wav").write_bytes(b"")
    proc = subprocess.run(
        [SNAKEMAKE, "-n", "--forceall", "--snakefile", str(REPO / "Snakefile"), "--directory", str(tmp_path),
         "--configfile", str(configfile), "--config", f"inputs={{'directory': '{raw}'}}", "output_dir=out"],
        capture_output=True, text=True, cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    stats = proc.stdout.split("Job stats:", 1)[1].split("total", 1)[0]
    rules = set(re.findall(r"^(\w+)\s+\d+$", stats, re.M)) - {"all"}
    config = load_config(configfile)
    expressions = rule_env_expressions()
    loaded = {env_of_expression(expressions[r], config) for r in rules}
    want = stage_envs.stage_envs(config) - {stage_envs.RUNNER_ENV}
    # scoring's rules (score_clips, the speaker reference) may not be in the rules yet
    not_yet = set() if any('"scoring"' in e for e in expressions.values()) else {"scoring"}
    assert loaded <= want and want - loaded <= not_yet, (rules, loaded, want)


# --- a run whose env is missing stops before its first job --------------------------------
def test_missing_envs_are_named_with_the_command(tmp_path, monkeypatch):
    monkeypatch.setenv("PVW_CACHE_DIR", str(tmp_path / "empty"))
    config = validated({"separation": "none", "run_until": "metadata",
                        "transcription": {"backend": "faster-whisper"}})
    assert stage_envs.missing_envs(stage_envs.stage_envs(config)) == ["snakemake", "scoring", "fasterwhisper", "media"]
    with pytest.raises(stage_envs.StageEnvsMissing) as err:
        stage_envs.require_stage_envs(config)
    message = str(err.value)
    assert "\n" not in message
    assert "scoring, fasterwhisper, media" in message
    assert f"{sys._base_executable} " in message and "setup_venvs.py scoring fasterwhisper media" in message


def test_build_command_builds_the_venvs_looked_for(tmp_path, monkeypatch):
    # the venv hash covers the Python version: the command's interpreter must give the same paths
    monkeypatch.setenv("PVW_CACHE_DIR", str(tmp_path))
    py, script = stage_envs.build_command(["media"]).split()[:2]
    out = subprocess.run([py, str(REPO / script), "--print-path", "media"], capture_output=True, text=True,
                         check=True, cwd=REPO).stdout.strip()
    assert out == str(stage_envs._setup_venvs().venv_path("media"))


def test_run_without_the_envs_stops_before_any_job(tmp_path, monkeypatch):
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "a.wav").write_bytes(b"")  # never read: no job runs
    write_config(tmp_path, run_until="metadata", transcription={"backend": "faster-whisper"})
    monkeypatch.setenv("PVW_CACHE_DIR", str(tmp_path / "empty-cache"))
    dry = run_snakemake(tmp_path, "-n")
    assert dry.returncode == 0, dry.stderr[-2000:]  # a dry run needs no venv
    proc = run_snakemake(tmp_path)
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if "not built" in line]
    assert len(lines) == 1, proc.stderr[-3000:]
    assert "scoring, fasterwhisper, media" in lines[0]
    assert "setup_venvs.py scoring fasterwhisper media" in lines[0]
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists()  # no job ran
