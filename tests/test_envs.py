"""One source of truth for environments: conda files and venv pins agree."""
import importlib.util
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("setup_venvs", REPO / "envs" / "setup_venvs.py")
setup_venvs = importlib.util.module_from_spec(spec)
spec.loader.exec_module(setup_venvs)

ENV_FILES = sorted((REPO / "envs").glob("*.yaml"))


def conda_pip_pins(path):
    deps = yaml.safe_load(path.read_text())["dependencies"]
    return next(d["pip"] for d in deps if isinstance(d, dict) and "pip" in d)


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: p.stem)
def test_env_file_pins_exact_and_reader_agrees(path):
    pins = conda_pip_pins(path)
    assert pins == setup_venvs.read_pip_pins(path)
    for pin in pins:
        assert "==" in pin, f"{path.name}: {pin} is not an exact pin"
    assert setup_venvs.read_python_version(path) == "3.11"


def test_runner_shares_media_pins():
    media = {p.split("==")[0].lower(): p for p in conda_pip_pins(REPO / "envs" / "media.yaml")}
    runner = {p.split("==")[0].lower(): p for p in conda_pip_pins(REPO / "envs" / "snakemake.yaml")}
    for name in media.keys() & runner.keys():
        assert media[name] == runner[name]


def test_every_rule_env_exists():
    for smk in (REPO / "rules").glob("*.smk"):
        for ref in __import__("re").findall(r'"\.\./envs/(\w+)\.yaml"', smk.read_text()):
            assert (REPO / "envs" / f"{ref}.yaml").exists(), f"{smk.name} names missing envs/{ref}.yaml"


@pytest.mark.parametrize("path", ENV_FILES, ids=lambda p: p.stem)
def test_built_venv_matches_pins(path):
    venv = setup_venvs.venv_path(path.stem)
    if not setup_venvs.is_complete(venv):
        pytest.skip(f"venv {path.stem} not built (setup.sh builds it)")
    frozen = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "freeze", "--all"], capture_output=True, text=True, check=True).stdout
    installed = {}
    for line in frozen.splitlines():
        if "==" in line:
            n, v = line.split("==", 1)
            installed[n.lower().replace("_", "-")] = v
    for pin in setup_venvs.read_pip_pins(path):
        name, version = pin.split("==")
        name = name.split("[")[0].lower().replace("_", "-")
        assert (installed.get(name) or "").split("+")[0] == version, f"{path.stem}: {name} installed {installed.get(name)}, pinned {version}"
