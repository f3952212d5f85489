#!/usr/bin/env bash
# Set up if needed, then lint and run the whole test suite. Real data is read from $SRGAN_DATA
# (default ../shared/data); the real VGG19 and LPIPS weights are fetched into the user cache on first use.
# The MOS browser test drives Debian's chromium through chromium-driver: installed here when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  echo "installing Debian's chromium and chromium-driver for the browser test (apt-get)"
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver
fi
.venv/bin/ruff check src tests bench scripts
.venv/bin/python -m pytest "$@"
