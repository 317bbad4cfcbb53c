#!/usr/bin/env bash
# Installs Debian's slurm-wlm and munge for `npm run bench:hosts` (a real single-node Slurm, started by the bench as
# plain processes in a network namespace) without ever starting their services.
set -euo pipefail
exec bash "$(dirname "$0")/apt-no-start.sh" slurm-wlm munge -- slurmctld.service slurmd.service munge.service
