#!/usr/bin/env bash
# Installs Debian's openssh-server for `npm run bench:ssh` (the reference sshd it compares against) without ever
# starting the system's sshd, which would listen on port 22 on every address: while apt runs, a policy-rc.d refuses
# every service start, and on systemd machines the ssh units are left disabled. The bench runs its own sshd on
# loopback with its own config.
set -euo pipefail

if dpkg-query -W -f='${Status}' openssh-server 2>/dev/null | grep -q "install ok installed"; then exit 0; fi
if [ "$(id -u)" != 0 ]; then
  echo "install-sshd: run as root (apt-get install openssh-server)" >&2
  exit 1
fi

policy=/usr/sbin/policy-rc.d
saved=""
if [ -e "$policy" ]; then saved="$(mktemp)"; cp -p "$policy" "$saved"; fi
restore() {
  if [ -n "$saved" ]; then mv "$saved" "$policy"; else rm -f "$policy"; fi
}
trap restore EXIT
printf '#!/bin/sh\n# install-sshd.sh: no service starts while openssh-server installs\nexit 101\n' > "$policy"
chmod 755 "$policy"

export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >&2
apt-get install -y -qq --no-install-recommends openssh-server >&2
# Not at boot either (disable works without a running systemd: it removes the unit links).
if command -v systemctl >/dev/null; then
  now=""; [ -d /run/systemd/system ] && now="--now"
  systemctl disable $now ssh.service ssh.socket >/dev/null 2>&1 || true
fi
echo "install-sshd: openssh-server installed; the system's sshd was not started" >&2
