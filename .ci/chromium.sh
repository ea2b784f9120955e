#!/usr/bin/env bash
# Make sure Debian's chromium and a CJK font (for the console's Chinese pages) are installed: the web
# console's browser tests drive chromium headless with Playwright (tests/engine/console/test_browser.py;
# HIE_CHROMIUM names another binary).
set -euo pipefail

if [ -x "${HIE_CHROMIUM:-/usr/bin/chromium}" ] && dpkg -s fonts-wqy-microhei >/dev/null 2>&1; then
  exit 0
fi
echo "chromium or its CJK font not installed: installing them from Debian's packages"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq chromium fonts-wqy-microhei >/dev/null
