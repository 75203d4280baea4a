#!/usr/bin/env bash
# Installs everything dockwall and its lab need on a fresh Debian 12 machine, as root.
# Idempotent: a second run only checks. Never starts a Docker daemon on the host:
# the lab starts its own dockerd inside a network namespace.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(docker.io iptables nftables conntrack iproute2 busybox-static ipset iperf3 procps util-linux make nginx ufw chromium debootstrap)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "apt-get install: ${missing[*]}"
  # Package scripts must not start dockerd/containerd in the machine's own namespace.
  guard=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    guard=/usr/sbin/policy-rc.d
    printf '#!/bin/sh\nexit 101\n' > "$guard"
    chmod +x "$guard"
  fi
  trap '[ -n "$guard" ] && rm -f "$guard"' EXIT
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if ! command -v uv >/dev/null 2>&1; then
  python3 -m pip install -q uv
fi
# Bytecode compiled up front: a shell that sets PYTHONDONTWRITEBYTECODE never caches it,
# and every `dockwall` run would compile its imports again (about 1 s more per command).
uv sync --frozen --compile-bytecode
.venv/bin/python -m compileall -q src
