"""Quality cost of the inference speed-ups: Y-PSNR / SSIM of a model on one benchmark folder, plain fp32 vs
the fast inference form (BN folded) and bf16 autocast, all four combinations, as `srgan eval` scores them.

    python bench/precision.py [--model srresnet] [--data ../shared/data/bench/Set5] [--threads 1]

Each run is the same as `OMP_NUM_THREADS=T srgan eval --model M --data D [--fast] [--precision bf16]` (the
JSON records that command). Writes bench/results/<set>_precision_<device>_<versions>.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import torch
from upscale import REPO, default_results_path, device_name

from srgan.data import check_data_dir
from srgan.evaluate import evaluate_sets
from srgan.zoo import load_model

RUNS = {"plain fp32": (False, "fp32"), "fast fp32": (True, "fp32"),
        "plain bf16": (False, "bf16"), "fast bf16": (True, "bf16")}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="srresnet")
    data_root = Path(os.environ.get("SRGAN_DATA", REPO.parent / "shared" / "data"))
    ap.add_argument("--data", default=str(data_root / "bench" / "Set5"))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", help="JSON path (default: bench/results/<set>_precision_<device>_<torch>.json)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    data = check_data_dir(args.data)
    name = device_name("cpu", args.threads)
    results = {"device": name, "torch": torch.__version__, "model": args.model, "data": str(args.data),
               "runs": {}}  # fmt: skip
    base = None
    print(f"{name}, torch {torch.__version__}, model {args.model}, {data.name}")
    for label, (fast, precision) in RUNS.items():
        model = load_model(args.model, fast=fast)  # plain: the Generator itself, as `srgan eval` runs it
        row = evaluate_sets(model, [data], device="cpu", precision=precision, progress=False)[data.name]
        base = row["psnr"] if base is None else base
        flags = (" --fast" if fast else "") + (" --precision bf16" if precision == "bf16" else "")
        results["runs"][label] = {
            "command": f"OMP_NUM_THREADS={args.threads} srgan eval --model {args.model} --data {args.data}"
            + flags,
            "psnr": row["psnr"], "ssim": row["ssim"], "psnr_change_db": row["psnr"] - base,
        }  # fmt: skip
        print(f"{label:<11} PSNR {row['psnr']:.6f} dB ({row['psnr'] - base:+.6f})  SSIM {row['ssim']:.6f}")
    out = Path(args.out) if args.out else default_results_path(f"{data.name.lower()}_precision", name)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
