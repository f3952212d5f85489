"""Mean colour shift of a model: mean SR - HR per RGB channel over each image of a set, in 0-255 levels.

PSNR falls when a model shifts the mean colour of its output, and the adversarial models can; this measures it
per image, the way `srgan eval` makes SR (whole image, fp32, SR rounded to uint8 levels).

    .venv/bin/python scripts/colour_shift.py --model srgan --data ../shared/data/bench/Set5
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import torch

from srgan.evaluate import check_data_dir, list_pairs, load_pair, make_upscaler


def main() -> None:
    data_root = Path(os.environ.get("SRGAN_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--model", nargs="+", default=["srresnet", "srgan"], help="shipped names or weights files"
    )
    ap.add_argument("--data", default=str(data_root / "bench" / "Set5"), help="set folder with HR/ [LR_x4/]")
    ap.add_argument("--scale", type=int, default=4)
    args = ap.parse_args()
    data = check_data_dir(args.data)
    pairs = list_pairs(data, args.scale)
    print(f"mean SR - HR, 0-255 RGB levels, {data}")
    for model in args.model:
        upscale = make_upscaler(model, scale=args.scale)
        print(model)
        for name, hr_path, lr_path in pairs:
            lr_img, hr_img = load_pair(hr_path, lr_path, args.scale)
            sr_img = torch.floor(upscale(lr_img[None])[0].clamp(0, 1) * 255 + 0.5)
            shift = (sr_img - hr_img * 255).mean(dim=(1, 2)).tolist()
            print(f"  {name:<12} " + " ".join(f"{v:+5.1f}" for v in shift))


if __name__ == "__main__":
    main()
