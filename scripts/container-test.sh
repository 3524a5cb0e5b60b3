#!/usr/bin/env bash
# Build the serving image and smoke-test it in a real container (what `make test-container` and
# tests/e2e/test_container.py run). Exits non-zero on any failure.
#
# Steps: install docker.io/debootstrap if missing -> start dockerd if not running -> build the
# debootstrap base image (cached) -> build the serving image on it -> run it with a real model
# package mounted read-only (read-only root file system, as in Kubernetes) -> wait for /ready ->
# the README's curl example on /predict -> /model/info, /metrics, HEALTHCHECK -> non-root check ->
# image size -> stop and remove the container.
#
# env: IMAGE (heartml-api:test), BASE_IMAGE (heartml-base:bookworm; built here when it is that
#      tag), MODEL_PACKAGE (a package folder; default the newest under packages/, or one built by
#      `heartml pipeline` in a temporary project, with PIPELINE_CONFIG if set; FRESH_PACKAGE=1
#      always builds that one, so a test never depends on what the checkout's packages/ holds), HEARTML_BUILD_CA (CA bundle for pip inside the
#      build; default the machine's pip cert), READY_TIMEOUT_S (90), KEEP_DOCKERD (1: leave a
#      dockerd this script started running), SKIP_BUILD (1: test the existing IMAGE as it is, e.g.
#      the image CI built once with buildx; skips the base build and the baked-package build)
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"

IMAGE="${IMAGE:-heartml-api:test}"
BASE_IMAGE="${BASE_IMAGE:-heartml-base:bookworm}"
READY_TIMEOUT_S="${READY_TIMEOUT_S:-90}"
# 400 MB: onnxruntime + numpy are most of it; the prediction store's SQLAlchemy, Alembic and
# psycopg2 and the registry client's httpx took the image from ~330 to ~363 MB.
MAX_IMAGE_MB="${MAX_IMAGE_MB:-400}"
NAME="heartml-smoke-$$"
PREDICT_BODY='{"age":63,"sex":1,"cp":1,"trestbps":145,"chol":233,"fbs":1,"restecg":2,"thalach":150,"exang":0,"oldpeak":2.3,"slope":3,"ca":0,"thal":6}'

say() { echo "container-test: $*"; }
die() { echo "container-test: FAILED: $*" >&2; exit 1; }
now() { date +%s.%N; }
since() { python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$1" "$(now)"; }

work="$(mktemp -d "${TMPDIR:-/tmp}/heartml-container-test.XXXXXX")"
started_dockerd=""
container_started=""
cleanup() {
  local status=$?
  if [ -n "$container_started" ]; then
    if [ $status -ne 0 ]; then
      echo "---- container log (last 40 lines) ----" >&2
      "$DOCKER" logs "$NAME" 2>&1 | tail -40 >&2 || true
    fi
    "$DOCKER" rm -f "$NAME" >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
  if [ -n "$started_dockerd" ] && [ "${KEEP_DOCKERD:-0}" != "1" ]; then
    kill "$started_dockerd" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$started_dockerd" 2>/dev/null || break; sleep 0.2; done
  fi
  exit $status
}
trap cleanup EXIT

# ---- 1. tools ---------------------------------------------------------------------------------
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }
if ! have dockerd || ! have debootstrap; then
  say "installing docker.io and debootstrap"
  "$ROOT/scripts/install-system-deps.sh" || die "docker.io/debootstrap missing (see above)"
fi
# Debian's client matches Debian's dockerd API version; another docker client may sit first on PATH.
if [ -z "${DOCKER:-}" ]; then
  if [ -x /usr/bin/docker ]; then DOCKER=/usr/bin/docker; else DOCKER="$(command -v docker)"; fi
fi
export DOCKER

# ---- 2. engine ----------------------------------------------------------------------------------
if ! "$DOCKER" info >/dev/null 2>&1; then
  [ "$(id -u)" -eq 0 ] || die "dockerd is not running and this user cannot start it"
  DOCKERD="$(command -v dockerd || echo /usr/sbin/dockerd)"
  say "starting dockerd ($DOCKERD), log in $work/dockerd.log"
  # Own session, so that it is not tied to this shell's terminal; stopped again on exit.
  setsid "$DOCKERD" --host unix:///var/run/docker.sock >"$work/dockerd.log" 2>&1 &
  started_dockerd=$!
  for _ in $(seq 1 120); do
    "$DOCKER" info >/dev/null 2>&1 && break
    kill -0 "$started_dockerd" 2>/dev/null || { tail -20 "$work/dockerd.log" >&2; die "dockerd exited"; }
    sleep 0.5
  done
  "$DOCKER" info >/dev/null 2>&1 || { tail -20 "$work/dockerd.log" >&2; die "dockerd did not answer within 60 s"; }
fi
say "engine: $("$DOCKER" version -f 'docker {{.Server.Version}}')"

if [ "${SKIP_BUILD:-0}" = "1" ]; then
  "$DOCKER" image inspect "$IMAGE" >/dev/null 2>&1 || die "SKIP_BUILD=1 but there is no image $IMAGE"
  say "testing the existing image $IMAGE (SKIP_BUILD=1: no build here)"
else
# ---- 3. base image --------------------------------------------------------------------------------
t0=$(now)
if [ "$BASE_IMAGE" = "heartml-base:bookworm" ]; then
  BASE_TAG="$BASE_IMAGE" "$ROOT/scripts/build-base-image.sh"
elif ! "$DOCKER" image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
  "$DOCKER" pull -q "$BASE_IMAGE" >/dev/null || die "cannot pull $BASE_IMAGE (no registry? use BASE_IMAGE=heartml-base:bookworm)"
fi
"$DOCKER" image inspect "$BASE_IMAGE" >/dev/null 2>&1 || die "base image $BASE_IMAGE not available"
base_s=$(since "$t0")

# ---- 4. serving image ----------------------------------------------------------------------------
t0=$(now)
say "building $IMAGE (target serving, BASE_IMAGE=$BASE_IMAGE)"
IMAGE="$IMAGE" BASE_IMAGE="$BASE_IMAGE" MODEL_PACKAGE="" "$ROOT/scripts/build-image.sh" serving --quiet \
  >"$work/build.log" 2>&1 || { tail -40 "$work/build.log" >&2; die "image build failed"; }
image_s=$(since "$t0")
say "build time: base ${base_s} s (cached when it already existed), image ${image_s} s"
fi

# ---- 5. a model package ----------------------------------------------------------------------------
package="${MODEL_PACKAGE:-}"
if [ -z "$package" ] && [ "${FRESH_PACKAGE:-}" != "1" ]; then
  # the newest by MANIFEST time, as the service itself picks (heartml.package.manifest.newest_package)
  package="$(find "$ROOT/packages" -mindepth 2 -maxdepth 2 -name MANIFEST.json -printf '%T@ %h\n' 2>/dev/null \
    | sort -n | tail -1 | cut -d' ' -f2- || true)"
fi
if [ -z "$package" ]; then
  say "no package under packages/: running \`heartml pipeline\` in a temporary project copy"
  project="$work/project"
  mkdir -p "$project/data"
  cp -r "$ROOT/data/raw" "$project/data/raw"
  cp -r "$ROOT/configs" "$project/configs"
  if [ -n "${PIPELINE_CONFIG:-}" ]; then cp "$PIPELINE_CONFIG" "$project/configs/pipeline.yaml"; fi
  (cd "$project" && env -u MLFLOW_TRACKING_URI HEARTML_ROOT="$project" HEARTML_OFFLINE=1 \
    "$ROOT/.venv/bin/heartml" pipeline) >"$work/pipeline.log" 2>&1 \
    || { tail -30 "$work/pipeline.log" >&2; die "heartml pipeline failed"; }
  package="$(find "$project/packages" -mindepth 2 -maxdepth 2 -name MANIFEST.json -printf '%h\n' | sort | tail -1)"
fi
[ -f "$package/MANIFEST.json" ] || die "no model package (MANIFEST.json) at '$package'"
# The container user (uid 10001) must be able to read the mount: stage a world-readable copy,
# so the test does not depend on the host's file modes.
stage="$work/packages"
mkdir -p "$stage"
cp -r "$package" "$stage/"
chmod -R a+rX "$stage"
chmod 755 "$work"
expected_version="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["version"])' "$package/MANIFEST.json")"
say "model package: $(basename "$package") (version $expected_version)"

# ---- 6. run ----------------------------------------------------------------------------------------
t0=$(now)
# Loopback only; read-only root file system with a tmpfs /tmp, as the Kubernetes Deployment runs it;
# a short health interval so the image's HEALTHCHECK is exercised within the test.
"$DOCKER" run -d --name "$NAME" \
  -p 127.0.0.1::8000 \
  --read-only --tmpfs /tmp:rw,size=64m \
  --health-interval 2s --health-start-period 30s \
  -v "$stage:/app/packages:ro" \
  "$IMAGE" >/dev/null || die "docker run failed"
container_started=1
port="$("$DOCKER" port "$NAME" 8000/tcp | head -1 | sed 's/.*://')"
[ -n "$port" ] || die "no published port"
base="http://127.0.0.1:$port"

ready=""
deadline=$(($(date +%s) + READY_TIMEOUT_S))
while [ "$(date +%s)" -lt "$deadline" ]; do
  if curl -sf "$base/ready" >/dev/null 2>&1; then ready=1; break; fi
  [ "$("$DOCKER" inspect -f '{{.State.Running}}' "$NAME")" = "true" ] || die "container exited"
  sleep 0.1
done
[ -n "$ready" ] || die "/ready did not answer 200 within $READY_TIMEOUT_S s: $(curl -s "$base/ready")"
say "cold start to /ready: $(since "$t0") s"

# ---- 7. smoke test -------------------------------------------------------------------------------
check_json() {  # check_json NAME PYTHON-EXPRESSION-ON-d < body
  python3 -c '
import json, sys
name, expr = sys.argv[1], sys.argv[2]
raw = sys.stdin.read()
try:
    d = json.loads(raw)
except ValueError:
    sys.exit(f"{name}: not JSON: {raw[:300]}")
if not eval(expr, {"d": d}):
    sys.exit(f"{name}: check failed ({expr}): {raw[:500]}")
' "$1" "$2"
}

# The README's curl example, verbatim.
predict="$(curl -s -X POST "localhost:$port/predict" -H "Content-Type: application/json" -d "$PREDICT_BODY")"
echo "$predict" | check_json /predict \
  'd["prediction"] in (0, 1) and 0.0 <= d["probability"] <= 1.0 and d["risk_level"] and d["model_version"]' \
  || die "/predict"
say "/predict: $predict"

curl -sf "$base/model/info" | check_json /model/info \
  "str(d['version']) == '$expected_version' and len(d['raw_feature_names']) == 13" \
  || die "/model/info"
say "/model/info: version $expected_version"

curl -sf "$base/metrics" >"$work/metrics.txt" || die "/metrics did not answer"
for series in 'heartml_predictions_total{prediction=' 'heartml_model_info{' 'heartml_model_ready 1.0' \
  'heartml_http_request_duration_seconds_bucket{' 'heartml_drift_psi{'; do
  grep -qF "$series" "$work/metrics.txt" || die "/metrics has no $series"
done
say "/metrics: predictions, model info, readiness, latency and drift series present"

uid="$("$DOCKER" exec "$NAME" id -u)"
[ "$uid" != "0" ] || die "the service runs as root"
say "process user: uid $uid (non-root)"

health=""
for _ in $(seq 1 30); do
  health="$("$DOCKER" inspect -f '{{.State.Health.Status}}' "$NAME")"
  [ "$health" = "healthy" ] && break
  [ "$health" = "unhealthy" ] && break
  sleep 1
done
[ "$health" = "healthy" ] || die "HEALTHCHECK status: $health"
say "HEALTHCHECK: $health"

"$DOCKER" stop -t 10 "$NAME" >/dev/null

# ---- 8. the same package baked in at build time (--build-arg MODEL_PACKAGE) -----------------------
if [ "${SKIP_BUILD:-0}" = "1" ]; then
  say "baked-in package build: not run (SKIP_BUILD=1)"
else
# A throwaway build context with just what the Dockerfile copies, so the package need not be in
# the repository's packages/; every layer but the package's is a cache hit.
ctx="$work/context"
mkdir -p "$ctx/packages" "$ctx/src"
cp -a "$ROOT/pyproject.toml" "$ROOT/README.md" "$ROOT/.dockerignore" "$ctx/"
cp -a "$ROOT/requirements" "$ctx/requirements"
cp -a "$ROOT/src/heartml" "$ctx/src/heartml"
cp -a "$package" "$ctx/packages/"
t0=$(now)
IMAGE="$IMAGE-baked" BASE_IMAGE="$BASE_IMAGE" BUILD_CONTEXT="$ctx" \
  MODEL_PACKAGE="packages/$(basename "$package")" "$ROOT/scripts/build-image.sh" serving --quiet \
  >"$work/build-baked.log" 2>&1 || { tail -40 "$work/build-baked.log" >&2; die "baked image build failed"; }
"$DOCKER" rm -f "$NAME" >/dev/null
"$DOCKER" run -d --name "$NAME" -p 127.0.0.1::8000 --read-only --tmpfs /tmp:rw,size=64m \
  "$IMAGE-baked" >/dev/null || die "docker run (baked) failed"
port="$("$DOCKER" port "$NAME" 8000/tcp | head -1 | sed 's/.*://')"
ready=""
deadline=$(($(date +%s) + READY_TIMEOUT_S))
while [ "$(date +%s)" -lt "$deadline" ]; do
  if curl -sf "http://127.0.0.1:$port/ready" >/dev/null 2>&1; then ready=1; break; fi
  [ "$("$DOCKER" inspect -f '{{.State.Running}}' "$NAME")" = "true" ] || die "baked container exited"
  sleep 0.1
done
[ -n "$ready" ] || die "baked image: /ready did not answer 200 within $READY_TIMEOUT_S s"
curl -sf "http://127.0.0.1:$port/model/info" | check_json "/model/info (baked)" \
  "str(d['version']) == '$expected_version'" || die "baked image serves the wrong model"
say "baked-in package (--build-arg MODEL_PACKAGE): ready, version $expected_version, built in $(since "$t0") s"
"$DOCKER" stop -t 10 "$NAME" >/dev/null
"$DOCKER" rm -f "$NAME" >/dev/null
"$DOCKER" image rm "$IMAGE-baked" >/dev/null || die "could not remove $IMAGE-baked"
fi

# ---- 9. size ------------------------------------------------------------------------------------
bytes="$("$DOCKER" image inspect -f '{{.Size}}' "$IMAGE")"
mb=$((bytes / 1000000))
say "image size: $mb MB ($IMAGE, limit $MAX_IMAGE_MB MB)"
[ "$mb" -le "$MAX_IMAGE_MB" ] || die "image is $mb MB, over the $MAX_IMAGE_MB MB target"
say "PASSED"
