#!/usr/bin/env bash
# Installs Debian packages the benches need without ever starting their services (which would listen on this
# machine): while apt runs, a policy-rc.d refuses every service start, and on systemd machines the named units are
# left disabled. The benches start their own daemons with their own config.
#   bash scripts/apt-no-start.sh <package>... -- <systemd unit>...
set -euo pipefail

packages=()
while [ "$#" -gt 0 ] && [ "$1" != "--" ]; do packages+=("$1"); shift; done
[ "$#" -gt 0 ] && shift
units=("$@")

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ "${#missing[@]}" -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "apt-no-start: run as root (apt-get install ${missing[*]})" >&2
  exit 1
fi

policy=/usr/sbin/policy-rc.d
saved=""
if [ -e "$policy" ]; then saved="$(mktemp)"; cp -p "$policy" "$saved"; fi
restore() {
  if [ -n "$saved" ]; then mv "$saved" "$policy"; else rm -f "$policy"; fi
}
trap restore EXIT
printf '#!/bin/sh\n# apt-no-start.sh: no service starts while %s install\nexit 101\n' "${missing[*]}" > "$policy"
chmod 755 "$policy"

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
# Not at boot either (disable works without a running systemd: it removes the unit links).
if [ "${#units[@]}" -gt 0 ] && command -v systemctl >/dev/null; then
  now=""; [ -d /run/systemd/system ] && now="--now"
  systemctl disable $now "${units[@]}" >/dev/null 2>&1 || true
fi
echo "apt-no-start: ${missing[*]} installed; no service was started" >&2
