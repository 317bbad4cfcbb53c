#!/usr/bin/env bash
# Installs Debian's openssh-server for `npm run bench:ssh` and `npm run bench:hosts` (the reference sshd they compare
# against) without ever starting the system's sshd, which would listen on port 22 on every address. The benches run
# their own sshd with their own config.
set -euo pipefail
exec bash "$(dirname "$0")/apt-no-start.sh" openssh-server -- ssh.service ssh.socket
