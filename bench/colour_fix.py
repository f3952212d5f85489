"""Time of the colour fix that `srgan upscale` applies after the network (`srgan.upscale.colour_fix`).

Random images at the three sizes of bench/upscale.py; one warm-up, then the fastest of --repeats runs.

    OMP_NUM_THREADS=2 .venv/bin/python bench/colour_fix.py
"""

from __future__ import annotations

import argparse
import time

import torch

from srgan.upscale import colour_fix

SIZES = [(128, 128), (320, 480), (540, 960)]  # LR (H, W), as in bench/upscale.py


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    for h, w in SIZES:
        lr_img, sr_img = torch.rand(3, h, w), torch.rand(3, 4 * h, 4 * w)
        colour_fix(sr_img, lr_img, 4)
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            colour_fix(sr_img, lr_img, 4)
            times.append(time.perf_counter() - t0)
        print(f"{w}x{h} -> {4 * w}x{4 * h}: {min(times):.3f} s")


if __name__ == "__main__":
    main()
