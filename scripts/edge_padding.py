"""What the network sees past the image's edges: zeros (the network as trained) or the edge pixels repeated.

Scores each model on each set twice through `srgan.upscale.upscale_tensor` (the path `srgan upscale` runs),
fp32, whole images, once with edge="zeros" and once with edge="replicate" (the LR image extended by the
model's receptive radius), and prints mean Y-PSNR / SSIM under the `default` protocol and the difference.
`srgan upscale` uses "replicate" only if it does not lower PSNR (README, srgan/upscale.py).

    .venv/bin/python scripts/edge_padding.py --model srresnet srgan
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from srgan.evaluate import evaluate
from srgan.upscale import upscale_tensor
from srgan.zoo import load_model


def main() -> None:
    data_root = Path(os.environ.get("SRGAN_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", nargs="+", default=["srresnet", "srgan"], help="shipped names or files")
    ap.add_argument("--data", nargs="+", default=[str(data_root / "bench" / s) for s in ("Set5", "Set14")])
    ap.add_argument("--json", help="also write the figures to this JSON file")
    args = ap.parse_args()
    results = {}
    for name in args.model:
        model = load_model(name, fast=True)
        for data in args.data:
            row = {}
            for edge in ("zeros", "replicate"):
                r = evaluate(lambda lr, m=model, e=edge: upscale_tensor(m, lr, edge=e), data, progress=False)
                row[edge] = {"psnr": r["psnr"], "ssim": r["ssim"]}
            results[f"{name}/{Path(data).name}"] = row
            z, r = row["zeros"], row["replicate"]
            print(f"{name:>10} {Path(data).name:>7}: zeros {z['psnr']:.4f} dB / {z['ssim']:.4f}, replicate "
                  f"{r['psnr']:.4f} dB / {r['ssim']:.4f} ({r['psnr'] - z['psnr']:+.4f} dB, "
                  f"{r['ssim'] - z['ssim']:+.5f})", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
