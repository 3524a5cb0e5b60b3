#!/usr/bin/env bash
# System tools the deploy tests run for real: promtool (prometheus), dockerd (docker.io),
# debootstrap (the local base image) and docker-compose (compose file validation).
# Idempotent: installs only what is missing, runs apt-get update at most once.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

# command -> Debian package (bookworm names, checked with apt-cache policy)
declare -A wanted=(
  [promtool]=prometheus
  [dockerd]=docker.io
  [debootstrap]=debootstrap
  [docker-compose]=docker-compose
)

missing=()
for cmd in "${!wanted[@]}"; do
  # debootstrap lives in /usr/sbin, which a non-root PATH may not include
  if ! command -v "$cmd" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$cmd" ]; then
    missing+=("${wanted[$cmd]}")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "ci-install-tools: all present (promtool, dockerd, debootstrap, docker-compose)"
  exit 0
fi

echo "ci-install-tools: installing ${missing[*]}"
$SUDO apt-get update -qq
# --no-install-recommends keeps the prometheus package from pulling in its exporters' services.
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

# The Debian prometheus package starts a system service on :9090 where systemd runs; the tests
# start their own Prometheus on a free loopback port and don't need it.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet prometheus 2>/dev/null; then
  $SUDO systemctl stop prometheus || true
fi

for cmd in "${!wanted[@]}"; do
  if ! command -v "$cmd" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$cmd" ]; then
    echo "ci-install-tools: $cmd still missing after installing ${wanted[$cmd]}" >&2
    exit 1
  fi
done
echo "ci-install-tools: done"
