#!/usr/bin/env bash
# The README's results: every shipped model and the baselines on Set5 / Set14 / BSD100 through
# `srgan benchmark` (SR images in out/bench/sr, re-used on a re-run), then its tables and figures copied into
# docs/. Takes about 30 minutes on a 2-core CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="${SRGAN_DATA:-../shared/data}/bench"
.venv/bin/srgan benchmark --models nearest bicubic srresnet srgan --realism 0.25 0.5 0.75 \
  --data "$DATA/Set5" "$DATA/Set14" "$DATA/BSD100" --out out/bench --protocol default paper \
  --crop Set14/comic:60,50,96 --crop Set14/baboon:330,330,128 --crop BSD100/img_007:330,90,96 \
  --crop-models bicubic srresnet srgan --no-progress "$@"
mkdir -p docs/results/benchmark docs/figures
cp out/bench/table.md out/bench/results.csv out/bench/results.json docs/results/benchmark/
cp out/bench/figures/*.png docs/figures/
echo "copied the tables into docs/results/benchmark/ and the figures into docs/figures/"
.venv/bin/python scripts/readme_tables.py   # the README tables, laid out from docs/results/benchmark/results.json
