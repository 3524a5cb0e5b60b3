#!/usr/bin/env bash
# Build a Debian bookworm base image with python3 + venv + pip using debootstrap, for machines
# that cannot pull from Docker Hub. Cached: does nothing if the image already exists
# (pass --force to rebuild).
#
#   scripts/build-base-image.sh [--force]
#   env: BASE_TAG (heartml-base:bookworm), DEBIAN_MIRROR, DOCKER (docker client binary),
#        BASE_PACKAGES (comma-separated, default python3,python3-venv,ca-certificates)
#
# python3-venv brings ensurepip with pip's wheel, which is all a `python3 -m venv` build needs;
# Debian's python3-pip (+ setuptools, wheel: ~25 MB) would only sit unused in the final image.
# Add it with BASE_PACKAGES=python3,python3-venv,python3-pip,ca-certificates if wanted.
set -euo pipefail

BASE_TAG="${BASE_TAG:-heartml-base:bookworm}"
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
SUITE=bookworm
PACKAGES="${BASE_PACKAGES:-python3,python3-venv,ca-certificates}"
if [ -z "${DOCKER:-}" ]; then
  # Prefer the client that ships with Debian's dockerd (same API version) over any other on PATH.
  if [ -x /usr/bin/docker ]; then DOCKER=/usr/bin/docker; else DOCKER=docker; fi
fi
force=0
[ "${1:-}" = "--force" ] && force=1

if [ "$force" -eq 0 ] && "$DOCKER" image inspect "$BASE_TAG" >/dev/null 2>&1; then
  echo "build-base-image: $BASE_TAG exists (cached)"
  exit 0
fi

DEBOOTSTRAP="$(command -v debootstrap || echo /usr/sbin/debootstrap)"
[ -x "$DEBOOTSTRAP" ] || { echo "build-base-image: debootstrap not installed (apt-get install debootstrap)" >&2; exit 1; }

root="$(mktemp -d "${TMPDIR:-/tmp}/heartml-rootfs.XXXXXX")"
cleanup() { rm -rf --one-file-system "$root"; }
trap cleanup EXIT

start=$(date +%s)
echo "build-base-image: debootstrap $SUITE minbase + $PACKAGES from $MIRROR"
# debootstrap installs Depends only (no Recommends), which keeps the image small.
"$DEBOOTSTRAP" --variant=minbase \
  --include="$PACKAGES" \
  "$SUITE" "$root" "$MIRROR" >"$root.log" 2>&1 || {
  tail -30 "$root.log" >&2
  rm -f "$root.log"
  exit 1
}
rm -f "$root.log"

# Slim the root file system: package caches, docs, man pages and locales are not needed at run time.
chroot "$root" apt-get clean
rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/log/*.log \
  "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* \
  "$root"/usr/share/locale/* "$root"/tmp/* "$root"/root/.cache
# The apt sources for later `apt-get install` in derived images (debootstrap writes only the mirror).
printf 'deb %s %s main\ndeb %s %s-updates main\ndeb http://deb.debian.org/debian-security %s-security main\n' \
  "$MIRROR" "$SUITE" "$MIRROR" "$SUITE" "$SUITE" >"$root/etc/apt/sources.list"

tar --numeric-owner -C "$root" -c . | "$DOCKER" import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'ENV LANG=C.UTF-8' \
  --change 'CMD ["/bin/bash"]' \
  --message "debootstrap $SUITE minbase + $PACKAGES" \
  - "$BASE_TAG" >/dev/null

size=$("$DOCKER" image inspect -f '{{.Size}}' "$BASE_TAG")
echo "build-base-image: built $BASE_TAG in $(($(date +%s) - start)) s, $((size / 1000000)) MB"
