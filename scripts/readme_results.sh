#!/usr/bin/env bash
# The README's results: every shipped model (the five loss variants of Table 1, and Table 2's SRCNN and ESPCN)
# and the interpolation baselines on Set5 / Set14 / BSD100 through `srgan benchmark` (SR images in
# out/bench/sr, re-used on a re-run while the weights are unchanged), then its tables and figures copied into
# docs/, and a crop figure of the five variants.
# Takes about 40 minutes on a 2-core CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="${SRGAN_DATA:-../shared/data}/bench"
.venv/bin/srgan benchmark \
  --models nearest bicubic srcnn espcn srresnet srgan srresnet-vgg22 srgan-mse srgan-vgg22 \
  --realism 0.25 0.5 0.75 \
  --data "$DATA/Set5" "$DATA/Set14" "$DATA/BSD100" --out out/bench --protocol default paper \
  --crop Set14/comic:60,50,96 --crop Set14/baboon:330,330,128 --crop BSD100/img_007:330,90,96 \
  --crop Set5/baby:140,0,128 \
  --crop-models bicubic srresnet srgan --no-progress "$@"
mkdir -p docs/results/benchmark docs/figures
cp out/bench/table.md out/bench/results.csv out/bench/results.json docs/results/benchmark/
cp out/bench/figures/*.png docs/figures/
# Table 1's variants side by side on one Set14 crop (the paper's Figure 6 compares them the same way)
.venv/bin/srgan benchmark --models srresnet srresnet-vgg22 srgan-mse srgan-vgg22 srgan --data "$DATA/Set14" \
  --out out/table1 --protocol default --lpips alex --crop Set14/baboon:330,330,128 --no-progress "$@" > /dev/null
cp out/table1/figures/crops_Set14_baboon.png docs/figures/variants_Set14_baboon.png
echo "copied the tables into docs/results/benchmark/ and the figures into docs/figures/"
.venv/bin/python scripts/readme_tables.py   # the README tables, laid out from docs/results/benchmark/results.json
