#!/usr/bin/env bash
# Installs every Debian 12 package that the build, the tests and the demo need.
# Idempotent: packages already present are skipped; apt is only touched when something is missing.
# Run as root. Only Debian's own registry is used.
set -euo pipefail

PKGS=(
  # build
  build-essential cmake make pkg-config gcc clang llvm
  # BPF
  libbpf-dev bpftool libelf-dev zlib1g-dev
  # wire, control plane, storage clients
  libnng-dev libmbedtls-dev libgrpc-dev protobuf-c-compiler libprotobuf-c-dev protobuf-compiler
  libcurl4-openssl-dev libcmocka-dev
  # real components used by tests and the demo
  clickhouse-server clickhouse-client prometheus python3 python3-grpcio python3-protobuf python3-yaml
  iproute2 iperf3 sockperf linux-perf curl procps openssl strace
  # deployment checks: systemd-analyze verify/security on deploy/systemd units
  systemd
)

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: must run as root (apt-get)" >&2
  exit 1
fi

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PKGS[@]} packages present"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# clickhouse-server's postinst and prometheus try to start services; policy-rc.d keeps the
# install from starting daemons we do not use (tests start their own instances).
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
  chmod +x /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "install-deps: done"
