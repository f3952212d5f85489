#!/usr/bin/env bash
# Train the paper's Table 2 baselines SRCNN and ESPCN (presets srcnn, espcn; docs/baselines.md) on the
# shared training photos, validating on Set5, then export them as release files beside the shipped models.
# Resumable: run it again and each run continues from its last.pt. Usage: bash scripts/train_baselines.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="${SRGAN_DATA:-../shared/data}"
SRGAN=.venv/bin/srgan
for model in espcn srcnn; do
  out="runs/$model"
  flags=(--data "$DATA/train" --data-on-device --val "$DATA/bench/Set5" --val-every 1000 --ckpt-every 500
         --log-every 100)
  if [ "$model" = srcnn ]; then flags+=(--precision bf16 --channels-last); fi
  if [ -f "$out/last.pt" ]; then
    $SRGAN train --resume "$out/last.pt" "${flags[@]}"
  else
    $SRGAN train --preset "$model" --out "$out" "${flags[@]}"
  fi
  $SRGAN export "$out/last.pt" -o "src/srgan/weights/$model.safetensors" --force
done
