#!/usr/bin/env bash
# Installs Debian's slurm-wlm and munge for `npm run bench:hosts` (a real single-node Slurm, started by the bench as
# plain processes in a network namespace) without ever starting their services: while apt runs, a policy-rc.d
# refuses every service start, and on systemd machines the units are left disabled.
set -euo pipefail

missing=()
for p in slurm-wlm munge; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ "${#missing[@]}" -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "install-slurm: run as root (apt-get install ${missing[*]})" >&2
  exit 1
fi

policy=/usr/sbin/policy-rc.d
saved=""
if [ -e "$policy" ]; then saved="$(mktemp)"; cp -p "$policy" "$saved"; fi
restore() {
  if [ -n "$saved" ]; then mv "$saved" "$policy"; else rm -f "$policy"; fi
}
trap restore EXIT
printf '#!/bin/sh\n# install-slurm.sh: no service starts while slurm-wlm and munge install\nexit 101\n' > "$policy"
chmod 755 "$policy"

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
if command -v systemctl >/dev/null; then
  now=""; [ -d /run/systemd/system ] && now="--now"
  systemctl disable $now slurmctld.service slurmd.service munge.service >/dev/null 2>&1 || true
fi
echo "install-slurm: ${missing[*]} installed; no service was started" >&2
