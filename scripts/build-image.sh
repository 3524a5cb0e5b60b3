#!/usr/bin/env bash
# Build a heartml image with the local engine (classic builder, as Debian's docker.io has no
# buildx): `make image` (serving) and `make image-pipeline`.
#
#   scripts/build-image.sh [serving|pipeline] [extra docker build args...]
#   env: IMAGE (heartml-api:latest / heartml-pipeline:latest), BASE_IMAGE (python:3.11-slim if the
#        engine has it or can pull it, else the local debootstrap heartml-base:bookworm),
#        MODEL_PACKAGE (bake this package into the serving image), HEARTML_BUILD_CA (CA bundle
#        for pip in the build; default: the machine's pip cert), BUILD_CONTEXT (default: the
#        repository root), DOCKER (client binary)
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

target="${1:-serving}"
shift || true
case "$target" in
  serving) IMAGE="${IMAGE:-heartml-api:latest}" ;;
  pipeline) IMAGE="${IMAGE:-heartml-pipeline:latest}" ;;
  *) echo "build-image: target must be serving or pipeline, not '$target'" >&2; exit 2 ;;
esac
if [ -z "${DOCKER:-}" ]; then
  if [ -x /usr/bin/docker ]; then DOCKER=/usr/bin/docker; else DOCKER=docker; fi
fi
export DOCKER
"$DOCKER" info >/dev/null 2>&1 || {
  echo "build-image: the container engine is not running (scripts/container-test.sh starts dockerd)" >&2
  exit 1
}

if [ -z "${BASE_IMAGE:-}" ]; then
  if "$DOCKER" image inspect python:3.11-slim >/dev/null 2>&1 \
    || timeout 60 "$DOCKER" pull -q python:3.11-slim >/dev/null 2>&1; then
    BASE_IMAGE=python:3.11-slim
  else
    BASE_IMAGE=heartml-base:bookworm  # no Docker Hub here: the debootstrap image
  fi
fi
if [ "$BASE_IMAGE" = "heartml-base:bookworm" ]; then
  BASE_TAG="$BASE_IMAGE" "$ROOT/scripts/build-base-image.sh"
fi

args=(--build-arg "BASE_IMAGE=$BASE_IMAGE")
[ -n "${MODEL_PACKAGE:-}" ] && args+=(--build-arg "MODEL_PACKAGE=$MODEL_PACKAGE")

CONTEXT="${BUILD_CONTEXT:-$ROOT}"
cleanup() { rm -rf "$CONTEXT/.build-ca"; }
trap cleanup EXIT
ca="${HEARTML_BUILD_CA:-${PIP_CERT:-$(python3 -m pip config get global.cert 2>/dev/null || true)}}"
if [ -n "$ca" ] && [ -f "$ca" ]; then
  # pip inside the build meets the same TLS-intercepting proxy as the host: hand it the host's CA
  # bundle through a gitignored folder of the context, used by the build stages only.
  mkdir -p "$CONTEXT/.build-ca"
  cp "$ca" "$CONTEXT/.build-ca/ca.crt"
  args+=(--build-arg "PIP_CERT=/tmp/build-ca/ca.crt")
fi

echo "build-image: $IMAGE (target $target, BASE_IMAGE=$BASE_IMAGE)"
start=$(date +%s)
DOCKER_BUILDKIT=0 "$DOCKER" build -f "$ROOT/deploy/docker/Dockerfile" --target "$target" \
  "${args[@]}" -t "$IMAGE" "$@" "$CONTEXT"
size=$("$DOCKER" image inspect -f '{{.Size}}' "$IMAGE")
echo "build-image: built $IMAGE in $(($(date +%s) - start)) s, $((size / 1000000)) MB"
