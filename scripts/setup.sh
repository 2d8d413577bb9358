#!/usr/bin/env bash
# Installs what linkd's tests need on a fresh Debian machine of this kind: the npm packages
# (Deno itself comes from npm, pinned in package.json) and Debian's independent peers.
# Safe to run again: it only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x node_modules/.bin/deno ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi

# Debian packages: independent CBOR/MQTT/NaCl peers for the tests, the real broker.
need=()
for pkg in python3-nacl python3-cbor2 python3-paho-mqtt mosquitto mosquitto-clients chromium zbar-tools \
  qemu-user-static libc6-arm64-cross libgcc-s1-arm64-cross binutils postgresql softhsm2 opensc; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup: missing Debian packages: ${need[*]} (run as root, or: sudo apt-get install ${need[*]})" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
./node_modules/.bin/deno --version | head -n 1
