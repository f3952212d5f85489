#!/usr/bin/env bash
# Set up if needed, then lint and run the whole test suite. Real data is read from $SRGAN_DATA
# (default ../shared/data); the real VGG19 weights are fetched into the user cache on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/ruff check src tests bench scripts
.venv/bin/python -m pytest "$@"
