#!/usr/bin/env bash
# Install the Debian (bookworm) Slurm 22.05 packages that tests/slurm_cluster.py needs to run
# a one-node test cluster on localhost: controller, compute daemon, client tools, and munge
# (authentication). Run as root. The daemons are NOT started here (the packages' systemd units
# do nothing in a container); tests/slurm_cluster.py starts and stops them itself.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
if [ "$(id -u)" -ne 0 ]; then
    echo "install_slurm.sh: must run as root" >&2
    exit 1
fi
if command -v slurmctld >/dev/null && command -v slurmd >/dev/null \
    && command -v sbatch >/dev/null && command -v munged >/dev/null; then
    echo "install_slurm.sh: slurm and munge already installed"
    exit 0
fi
apt-get update -qq
apt-get install -y --no-install-recommends slurmctld slurmd slurm-client munge
