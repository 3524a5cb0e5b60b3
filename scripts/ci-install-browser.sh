#!/usr/bin/env bash
# Headless Chromium and its WebDriver for the web page's end-to-end test
# (tests/e2e/test_web_page.py), from Debian's packages: chromium and chromium-driver.
# Idempotent: installs only what is missing, runs apt-get update at most once.
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

# The test drives /usr/bin/chromium through /usr/bin/chromedriver (both Debian paths).
declare -A wanted=(
  [/usr/bin/chromium]=chromium
  [/usr/bin/chromedriver]=chromium-driver
)

missing=()
for path in "${!wanted[@]}"; do
  [ -x "$path" ] || missing+=("${wanted[$path]}")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "ci-install-browser: all present ($(/usr/bin/chromium --version 2>/dev/null || echo chromium))"
  exit 0
fi

echo "ci-install-browser: installing ${missing[*]}"
$SUDO apt-get update -qq
# --no-install-recommends: no fonts-liberation/upower/etc. beyond what headless Chromium needs.
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

for path in "${!wanted[@]}"; do
  if [ ! -x "$path" ]; then
    echo "ci-install-browser: $path still missing after installing ${wanted[$path]}" >&2
    exit 1
  fi
done
echo "ci-install-browser: done ($(/usr/bin/chromium --version 2>/dev/null || echo chromium))"
