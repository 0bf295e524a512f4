#!/usr/bin/env bash
# The system Chromium for the annotation tool's browser test (tests/test_app/test_browser.py).
# Playwright drives it through executable_path: browser downloads (`playwright install`)
# are not needed. Installs Debian's `chromium` package when /usr/bin/chromium is missing.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  echo "chromium: $(command -v chromium)"
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "install_browser.sh: no chromium and no apt-get here; install Chromium with your" \
       "system's package manager (the browser test is skipped without it)" >&2
  exit 1
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "install_browser.sh: chromium is missing; run as root (or: sudo apt-get install -y" \
       "chromium) to install it (the browser test is skipped without it)" >&2
  exit 1
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
echo "chromium: $(command -v chromium)"
