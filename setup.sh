#!/usr/bin/env bash
# Set up piper-voice-workflow on a fresh Debian/Ubuntu machine with Python 3.11, no conda.
#
#   bash setup.sh                         # system packages, the venvs config/example.yaml
#                                         # needs, the bundled example
#   bash setup.sh --configfile config.yaml  # the venvs that config needs (repeatable)
#   bash setup.sh --with-tests            # every stage venv, plus what the test suite
#                                         # needs (a local SLURM)
#
# Per-stage venvs live in ~/.cache/piper-voice-workflow/venvs/NAME-<hash of pins> and are
# reused while envs/NAME.yaml is unchanged (a second set-up takes seconds). `.venv` is a
# link to the small runner venv (Snakemake, linters, pytest); it is built first, because
# it reads the config (python -m workflow_scripts.stage_envs) to tell which stage venvs
# the config's rules load. PVW_ENVS names the stage envs instead, e.g.
# PVW_ENVS="media fasterwhisper piper".
set -euo pipefail
cd "$(dirname "$0")"

with_tests=0
configfiles=()
while [ "$#" -gt 0 ]; do
  case "$1" in
    --with-tests) with_tests=1 ;;
    --configfile)
      [ "$#" -ge 2 ] || { echo "--configfile needs a file" >&2; exit 2; }
      configfiles+=(--configfile "$2"); shift ;;
    --configfile=*) configfiles+=(--configfile "${1#--configfile=}") ;;
    *) echo "unknown argument: $1" >&2; exit 2 ;;
  esac
  shift
done
# README's first command: plain `bash setup.sh` sets up the bundled example
[ "${#configfiles[@]}" -gt 0 ] || configfiles=(--configfile config/example.yaml)

PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
"$PY" -c 'import sys; assert sys.version_info[:2] == (3, 11), sys.version' \
  || { echo "setup.sh needs Python 3.11 (set PYTHON=/path/to/python3.11)" >&2; exit 1; }

apt_packages=(ffmpeg environment-modules espeak-ng sox)
if [ "$with_tests" = 1 ]; then
  apt_packages+=(slurmctld slurmd slurm-client munge chromium chromium-driver)
fi
missing=()
for p in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "== apt-get install ${missing[*]}"
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

echo "== runner venv (Snakemake)"
"$PY" envs/setup_venvs.py snakemake
runner=$("$PY" envs/setup_venvs.py --print-path snakemake)
ln -sfn "$runner" .venv

if [ -n "${PVW_ENVS:-}" ]; then
  envs=$PVW_ENVS
elif [ "$with_tests" = 1 ]; then
  envs=$(.venv/bin/python -m workflow_scripts.stage_envs --all)
else
  envs=$(.venv/bin/python -m workflow_scripts.stage_envs "${configfiles[@]}")
fi
echo "== per-stage venvs: $envs (cached by pin hash)"
# largest first (stage_envs' order): the longest build starts first, the others beside it
"$PY" envs/setup_venvs.py --jobs "${PVW_SETUP_JOBS:-3}" $envs

if [ ! -f example/raw/.complete ]; then
  echo "== example data (Debian's Asterisk prompts: real speech, CC-BY-SA-3.0)"
  .venv/bin/python -m workflow_scripts.example_data --out example/raw
  touch example/raw/.complete
fi
for ((i = 1; i < ${#configfiles[@]}; i += 2)); do
  echo "== ready: .venv/bin/snakemake --configfile ${configfiles[i]} --cores 2"
done
