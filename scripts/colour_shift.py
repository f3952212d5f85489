"""Mean colour shift of a model: mean SR - HR per RGB channel over each image of a set, in 0-255 levels.

PSNR falls when a model shifts the mean colour of its output, and the adversarial models can; this measures it
per image, the way `srgan eval` makes SR (whole image, fp32, SR rounded to uint8 levels). It also prints the
image's PSNR (`default` protocol: Y channel, border of `scale` pixels) as it is and with that mean shift taken
out of SR (a diagnostic of what the shift costs, not a way to score a model), and the means over the set.

    .venv/bin/python scripts/colour_shift.py --model srgan --data ../shared/data/bench/Set5
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import torch

from srgan.artefacts import colour_shift
from srgan.data import check_data_dir, list_pairs, load_pair
from srgan.evaluate import make_upscaler
from srgan.metrics import psnr, quantize_uint8


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
    print(f"{data}: mean SR - HR (R G B, 0-255 levels); PSNR as is -> with that shift taken out (dB)")
    for model in args.model:
        upscale = make_upscaler(model, scale=args.scale)
        print(model)
        as_is, unshifted = [], []
        for name, hr_path, lr_path in pairs:
            lr_img, hr_img = load_pair(hr_path, lr_path, args.scale)
            sr_img = quantize_uint8(upscale(lr_img[None])[0])
            shift = torch.tensor(colour_shift(sr_img, hr_img, crop_border=0)).view(3, 1, 1) / 255
            as_is.append(psnr(sr_img, hr_img, crop_border=args.scale))
            unshifted.append(psnr((sr_img - shift).clamp(0, 1), hr_img, crop_border=args.scale))
            levels = " ".join(f"{v:+5.1f}" for v in (shift.flatten() * 255).tolist())
            print(f"  {name:<12} {levels}   {as_is[-1]:6.2f} -> {unshifted[-1]:6.2f}")
        n = len(as_is)
        print(f"  {'mean':<12} {'':17}   {sum(as_is) / n:6.2f} -> {sum(unshifted) / n:6.2f}")


if __name__ == "__main__":
    main()
