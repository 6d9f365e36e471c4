#!/usr/bin/env bash
# Install Debian's chromium and chromium-driver for the browser tests (tests/browser) where they
# are missing. The browser comes from the distribution's packages: nothing is downloaded by the
# test tools themselves (Selenium is given both paths).
#
# Usage (as root, from anywhere):  scripts/install-chromium.sh
# Skipped when both are already installed, so running it again is cheap.
set -euo pipefail

log() { printf '[install-chromium %s] %s\n' "$(date +%H:%M:%S)" "$*"; }

if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
    log "chromium and chromium-driver already installed: $(/usr/bin/chromium --version 2>/dev/null)"
    exit 0
fi
[ "$(id -u)" = 0 ] || { log "ERROR: run as root (it installs packages with apt-get)" >&2; exit 1; }
export DEBIAN_FRONTEND=noninteractive
log "installing chromium and chromium-driver"
apt-get update -q
apt-get install -y -q chromium chromium-driver
log "installed: $(/usr/bin/chromium --version 2>/dev/null)"
