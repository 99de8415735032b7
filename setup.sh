#!/usr/bin/env bash
# Set up piper-voice-workflow on a fresh Debian/Ubuntu machine with Python 3.11, no conda.
#
#   bash setup.sh                # system packages, per-stage venvs, the bundled example
#   bash setup.sh --with-tests   # the same plus what the test suite needs (a local SLURM)
#
# Per-stage venvs live in ~/.cache/piper-voice-workflow/venvs/NAME-<hash of pins> and are
# reused while envs/NAME.yaml is unchanged (a second set-up takes seconds). `.venv` is a
# link to the small runner venv (Snakemake, linters, pytest). PVW_ENVS limits which stage
# envs are built, e.g. PVW_ENVS="media fasterwhisper piper" for a lighter set-up.
set -euo pipefail
cd "$(dirname "$0")"

with_tests=0
for arg in "$@"; do
  case "$arg" in
    --with-tests) with_tests=1 ;;
    *) echo "unknown argument: $arg" >&2; exit 2 ;;
  esac
done

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

echo "== per-stage venvs (cached by pin hash)"
# whisperx first: it is the longest (~15 min), the others build beside it.
envs=${PVW_ENVS:-"whisperx media spleeter demucs fasterwhisper piper"}
# the clip scorers (DNSMOS, speaker encoder) are not used by a rule yet: tests and bench only
if [ "$with_tests" = 1 ] && [ -z "${PVW_ENVS:-}" ]; then envs="$envs scoring"; fi
"$PY" envs/setup_venvs.py --jobs "${PVW_SETUP_JOBS:-3}" snakemake $envs
runner=$("$PY" envs/setup_venvs.py --print-path snakemake)
ln -sfn "$runner" .venv

if [ ! -f example/raw/.complete ]; then
  echo "== example data (Debian's Asterisk prompts: real speech, CC-BY-SA-3.0)"
  .venv/bin/python -m workflow_scripts.example_data --out example/raw
  touch example/raw/.complete
fi
echo "== ready: .venv/bin/snakemake --configfile config/example.yaml --cores 2"
