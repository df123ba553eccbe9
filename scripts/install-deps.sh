#!/usr/bin/env bash
# Installs the Debian packages Replica's build, tests and demo need. Idempotent: does nothing
# when everything is present. Needs root (apt-get) only when something is missing.
set -euo pipefail

packages=(pkg-config libssl-dev libibverbs-dev drbd-utils iproute2 python3
          libnbd-bin python3-libnbd nbdfuse qemu-utils fio fuse3 nbdkit e2fsprogs util-linux strace python3-prometheus-client tcpdump openssl)

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "install-deps: missing Debian packages: ${missing[*]}" >&2
    echo "install-deps: run as root (or: sudo apt-get install ${missing[*]})" >&2
    exit 1
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
