#!/usr/bin/env bash
# Install Debian's chromium and chromium-driver for tests/browser_tests (Selenium uses
# /usr/bin/chromium and /usr/bin/chromedriver as they are; nothing else is downloaded).
set -euo pipefail
if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then
    exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -q
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
    chromium chromium-driver
/usr/bin/chromium --version
/usr/bin/chromedriver --version
