#!/usr/bin/env bash
# Installs what dspool needs on this machine, then builds it. Idempotent: a second run does nothing it need not.
#   bash scripts/bootstrap.sh          what `dspool up` needs (Jupyter, npm packages, a build)
#   bash scripts/bootstrap.sh --test   plus what the test suites need
set -euo pipefail
cd "$(dirname "$0")/.."

want_test=0
[ "${1:-}" = "--test" ] && want_test=1

# Debian packages: the real Jupyter Notebook 6 + IPython kernel, and the tools the agent and SSH use (util-linux:
# setpriv, which starts a session's processes with the user's groups, and mount/umount; coreutils: env -C; sshfs:
# share.mount type sshfs. NFS and CIFS mounts need nfs-common / cifs-utils, installed by the operator who uses them).
packages=(jupyter-notebook python3-ipykernel python3-notebook openssh-client openssh-sftp-server iproute2 procps passwd util-linux coreutils sshfs)
if [ "$want_test" = 1 ]; then
  # Debian's Chromium for the browser suite (test/browser.test.ts, driven by playwright-core from npm).
  packages+=(chromium)
  # tcpdump: test/hosttls.test.ts captures a host's link to prove no secret crosses it in clear text.
  packages+=(tcpdump)
  # A real single-node Slurm for test/slurm.test.ts (started there as plain processes, never as services).
  packages+=(slurm-wlm munge)
  # openssh-server: the file server of test/share-mount.test.ts and the reference of `npm run bench:ssh`, started by
  # them as plain processes; scripts/install-sshd.sh installs it without ever starting the system's sshd.
  bash scripts/install-sshd.sh
  # JupyterHub's own HubAuth client drives the compatibility test. Debian's jupyterhub depends on nodejs; install
  # it only when this machine's node already comes from a Debian package, so apt never swaps the node we run on.
  if dpkg -S "$(readlink -f "$(command -v node)")" 2>/dev/null | grep -q '^nodejs:'; then
    packages+=(jupyterhub)
  else
    echo "bootstrap: not installing Debian's jupyterhub (node is not Debian's nodejs package); the HubAuth test will skip" >&2
  fi
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "bootstrap: installing Debian packages: ${missing[*]}" >&2
  sudo=""
  if [ "$(id -u)" != 0 ]; then
    if command -v sudo >/dev/null; then sudo="sudo"; else
      echo "bootstrap: need root to install ${missing[*]} (apt-get install ${missing[*]})" >&2; exit 1
    fi
  fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq >&2
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
  # Debian's jupyterhub ships a service that would listen on port 8000 (dspool's default): we only want its library.
  if printf '%s\n' "${missing[@]}" | grep -qx jupyterhub && command -v systemctl >/dev/null; then
    $sudo systemctl disable --now jupyterhub.service >/dev/null 2>&1 || true
  fi
  # Slurm and munge ship services that would listen on this machine: the tests start their own, in a namespace.
  if printf '%s\n' "${missing[@]}" | grep -qxE 'slurm-wlm|munge' && command -v systemctl >/dev/null; then
    $sudo systemctl disable --now slurmctld.service slurmd.service munge.service >/dev/null 2>&1 || true
  fi
fi

# npm packages (native modules build from source here; that takes a couple of minutes the first time).
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "bootstrap: installing npm packages" >&2
  npm ci --no-audit --no-fund >&2
fi

npm run --silent build >&2
