#!/usr/bin/env bash
# Kept for the messages that still name it: every system package the tests need (chromium and
# chromium-driver among them) is installed by scripts/install-system-deps.sh.
exec "$(dirname "$0")/install-system-deps.sh" "$@"
