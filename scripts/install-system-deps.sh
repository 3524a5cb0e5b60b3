#!/usr/bin/env bash
# Every system (Debian) package the test suite runs for real, in one place. `make test` calls it
# first; .ci/run and .github/workflows/ci.yml call `make test`, so all three set up alike.
# (Python tools, kubectl included, come with the venv: pyproject.toml's dev extras.)
#
# Installs only what is missing, with at most one `apt-get update`. As root: apt-get. Not root:
# `sudo -n` if it needs no password, else one line naming the missing packages and exit 1.
# Idempotent; prints one summary line.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive

# what must exist -> Debian package (bookworm names, checked with apt-cache policy), and why
declare -A wanted=(
  [pg:initdb]=postgresql                 # the integration tests' PostgreSQL (mlflow server, Optuna)
  [cmd:wrk]=wrk                          # the reliability suite's load test
  [path:/usr/bin/chromium]=chromium      # the web page's end-to-end test, headless
  [path:/usr/bin/chromedriver]=chromium-driver
  [cmd:promtool]=prometheus              # deploy: Prometheus rules and their unit tests
  [cmd:dockerd]=docker.io                # deploy: the container image test
  [cmd:debootstrap]=debootstrap          # deploy: the local base image (no registry pulls here)
  [cmd:docker-compose]=docker-compose    # deploy: compose file validation
)

present() {
  local kind=${1%%:*} what=${1#*:}
  case $kind in
    pg) compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null ;;
    path) [ -x "$what" ] ;;
    # /usr/sbin is not on a non-root PATH (debootstrap lives there)
    cmd) command -v "$what" >/dev/null 2>&1 || [ -x "/usr/sbin/$what" ] ;;
  esac
}

missing=()
for key in "${!wanted[@]}"; do
  present "$key" || missing+=("${wanted[$key]}")
done
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u | sed '/^$/d')

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-system-deps: all present (${#wanted[@]} tools)"
  exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
  as_root=(sudo -n)
else
  echo "install-system-deps: missing Debian packages: ${missing[*]} (as root: apt-get install ${missing[*]}, or sudo $0)" >&2
  exit 1
fi

echo "install-system-deps: installing ${missing[*]}"
"${as_root[@]}" apt-get update -qq
# --no-install-recommends: no exporters with prometheus, no fonts/upower with chromium.
"${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

# Debian's prometheus starts a system service on :9090 where systemd runs; the tests start their
# own on a free loopback port.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet prometheus 2>/dev/null; then
  "${as_root[@]}" systemctl stop prometheus || true
fi

still=()
for key in "${!wanted[@]}"; do
  present "$key" || still+=("${wanted[$key]}")
done
if [ ${#still[@]} -gt 0 ]; then
  echo "install-system-deps: still missing after apt-get install: ${still[*]}" >&2
  exit 1
fi
echo "install-system-deps: installed ${missing[*]}"
