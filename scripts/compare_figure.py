"""Side-by-side figure for the README: nearest | bicubic | models, on one LR image (x4), with a zoomed crop
(the layout of `srgan benchmark`'s crop figures, `srgan.benchmark.tile_figure`). The models run as
`srgan upscale` runs them (`srgan.upscale` with its defaults, the colour fix included).

    .venv/bin/python scripts/compare_figure.py examples/astronaut_lr.png -o docs/astronaut_x4.png \
        [--models srresnet srgan] [--crop X Y SIZE]   # crop box in LR pixels
"""

from __future__ import annotations

import argparse

import torch

import srgan
from srgan.baselines import bicubic_upscale, nearest_upscale
from srgan.benchmark import tile_figure
from srgan.io import read_image, tensor_to_pil


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("image")
    parser.add_argument("-o", "--out", required=True)
    parser.add_argument("--models", nargs="+", default=["srresnet", "srgan"], help="shipped names or paths")
    parser.add_argument("--crop", nargs=3, type=int, default=(40, 20, 48), metavar=("X", "Y", "SIZE"))
    parser.add_argument("--zoom", type=int, default=2, help="extra enlargement of the crop (nearest)")
    args = parser.parse_args()

    lr_img = read_image(args.image)[None]  # (1, 3, h, w) in [0, 1]
    with torch.no_grad():
        panels = {"nearest": nearest_upscale(lr_img), "bicubic": bicubic_upscale(lr_img)}
        for name in args.models:
            panels[name] = srgan.upscale(srgan.load_model(name), lr_img)
    x, y, size = (v * 4 for v in args.crop)
    tiles = [(name, tensor_to_pil(img[0, :, y : y + size, x : x + size]), "") for name, img in panels.items()]
    fig = tile_figure(tiles, cell=size * args.zoom)
    fig.save(args.out, optimize=True)
    print(f"wrote {args.out} ({fig.width}x{fig.height})")


if __name__ == "__main__":
    main()
