#!/usr/bin/env bash
# Train the paper's Table 2 baselines SRCNN and ESPCN (presets srcnn, espcn; docs/baselines.md) on the
# shared training photos, validating on Set5, then export them as release files beside the shipped models.
# ESPCN has a second leg: 20,000 more steps from the first leg's weights (1e-3, then 1e-4 from step 17,000),
# as the shipped espcn was trained. Resumable: run it again and each leg continues from its last.pt.
# Usage: bash scripts/train_baselines.sh
set -euo pipefail
cd "$(dirname "$0")/.."
DATA="${SRGAN_DATA:-../shared/data}"
SRGAN=.venv/bin/srgan
flags=(--data "$DATA/train" --data-on-device --val "$DATA/bench/Set5" --ckpt-every 500 --log-every 100)
leg() {  # leg OUT EXTRA-ARGS...: one training run, started or resumed
  local out="$1"; shift
  if [ -f "$out/last.pt" ]; then
    $SRGAN train --resume "$out/last.pt" "${flags[@]}"
  else
    $SRGAN train --out "$out" "${flags[@]}" "$@"
  fi
}
leg runs/espcn --preset espcn --val-every 1000
leg runs/espcn-2 --preset espcn --init-from runs/espcn/last.pt --steps 20000 --lr-decay-step 17000 --val-every 2000
$SRGAN export runs/espcn-2/last.pt -o src/srgan/weights/espcn.safetensors --force
leg runs/srcnn --preset srcnn --val-every 1000 --precision bf16 --channels-last
$SRGAN export runs/srcnn/last.pt -o src/srgan/weights/srcnn.safetensors --force
