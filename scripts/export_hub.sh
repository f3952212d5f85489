#!/usr/bin/env bash
# Export the shipped models (the five Table 1 variants and the Table 2 baselines srcnn, espcn) as Hugging
# Face Hub model folders, OUT/<name>/ (default hub/, which git ignores): model.safetensors, config.json and README.md with model-index figures from the README's
# benchmark. Upload one with `srgan push OUT/<name> ORG/REPO` (untested here: no network).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-hub}"
SRGAN="${SRGAN:-.venv/bin/srgan}"  # a command line, e.g. "python -m srgan.cli"
for name in srresnet srresnet-vgg22 srgan-mse srgan-vgg22 srgan srcnn espcn; do
  $SRGAN export "$name" --hub-dir "$OUT/$name" --results docs/results/benchmark/results.json --force
done
