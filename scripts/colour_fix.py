"""What `colour_fix` (srgan.upscale) does to a model's figures: PSNR, SSIM, LPIPS-Alex, grid, chroma noise
and colour shift, without the fix and with it on RGB or on chroma only.

SR is made as `srgan eval` makes it (fp32, whole image), then fixed against the LR input; each variant is
scored on each set (default protocol; LPIPS-Alex on the first --lpips-images images of each set).

    .venv/bin/python scripts/colour_fix.py --model srgan --json docs/results/colour_fix.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
from pathlib import Path

import torch

from srgan.artefacts import aggregate, measure
from srgan.data import check_data_dir, list_pairs, load_pair
from srgan.evaluate import make_upscaler
from srgan.lpips import load_lpips
from srgan.metrics import psnr, ssim
from srgan.upscale import COLOUR_FIXES, colour_fix

DATA = Path(os.environ.get("SRGAN_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", nargs="+", default=["srgan"])
    ap.add_argument("--sets", nargs="+", default=["Set5", "Set14", "BSD100"])
    ap.add_argument("--lpips-images", type=int, default=20)
    ap.add_argument("--json")
    args = ap.parse_args()
    lpips_net = load_lpips("alex")
    results: dict = {}
    for model in args.model:
        upscale = make_upscaler(model)
        for set_name in args.sets:
            pairs = list_pairs(check_data_dir(DATA / "bench" / set_name), 4)
            rows = {m: [] for m in COLOUR_FIXES}
            for k, (_, hr_path, lr_path) in enumerate(pairs):
                lr_img, hr_img = load_pair(hr_path, lr_path, 4)
                sr_img = upscale(lr_img[None])[0]
                for mode in COLOUR_FIXES:
                    fixed = colour_fix(sr_img, lr_img, 4, mode)
                    row = {"psnr": psnr(fixed, hr_img, crop_border=4),
                           "ssim": ssim(fixed, hr_img, crop_border=4)}  # fmt: skip
                    row |= measure(fixed, hr_img)
                    if k < args.lpips_images:
                        with torch.no_grad():
                            row["lpips_alex"] = float(lpips_net(fixed[None], hr_img[None]).reshape(-1)[0])
                    rows[mode].append(row)
            for mode, mode_rows in rows.items():
                agg = aggregate(mode_rows)
                out = {m: math.fsum(r[m] for r in mode_rows) / len(mode_rows) for m in ("psnr", "ssim")}
                lp = [r["lpips_alex"] for r in mode_rows if "lpips_alex" in r]
                out |= {"lpips_alex": math.fsum(lp) / len(lp), "grid": agg["grid"], "chroma": agg["chroma"],
                        "shift_max": agg["shift_max"]}  # fmt: skip
                results.setdefault(model, {}).setdefault(set_name, {})[mode] = out
                figures = ", ".join(f"{k} {v:.4f}" for k, v in out.items())
                print(f"{model} {set_name:>6} {mode:>6}: {figures}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
