"""Calibrate the shipped generators' int8 form, measure it against fp32 with `srgan benchmark`, store both.

For each model: `srgan.int8.calibrate` on LR crops of $SRGAN_DATA/train (never benchmark images), then
`srgan.benchmark.benchmark` of the model at fp32 and int8 on Set5, Set14 and BSD100 (default protocol,
LPIPS-Alex, grid / chroma / colour shift). The bounds of issue 22 decide whether `--precision auto` may pick
int8 for the model: srresnet, Y-PSNR within 0.05 dB of fp32 on every set; srgan, LPIPS-Alex within 0.003 and
grid and chroma noise within 10% on every set. The calibration, the figures and that decision are written
to src/srgan/weights/NAME.int8.json (shipped with the package); the deltas also to --json.

    .venv/bin/python scripts/int8_calibrate.py --json docs/results/int8_quality.json
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import torch

from srgan.benchmark import benchmark, crop_figure
from srgan.checkpoint import atomic_write
from srgan.int8 import SHIPPED_DIR, calibrate, calibration_crops, save_calibration
from srgan.zoo import load_model

DATA = Path(os.environ.get("SRGAN_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
SETS = ("Set5", "Set14", "BSD100")
CROPS = {"Set5/baby": (140, 0, 128), "Set14/comic": (60, 50, 96)}  # two of the README's crops
# metric -> (bound, relative?) per model
BOUNDS = {
    "srresnet": {"psnr_default": (0.05, False)},
    "srgan": {"lpips_alex": (0.003, False), "grid": (0.10, True), "chroma": (0.10, True)},
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", default=list(BOUNDS))
    ap.add_argument("--out", default="runs/int8_bench", help="benchmark folder (SR images)")
    ap.add_argument("--json", help="also write the figures here")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--figures", default="docs/figures", help="side-by-side crops, fp32 | int8, written here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    crops = calibration_crops([DATA / "train"])
    report, results = {}, {}
    for name in args.models:
        path = SHIPPED_DIR / f"{name}.int8.json"
        calib = calibrate(load_model(name), crops)
        save_calibration(calib, path)  # found by digest from here on
        res = benchmark([name], [DATA / "bench" / s for s in SETS], args.out, protocols=("default",),
                        lpips_nets=("alex",), precisions=("fp32", "int8"))  # fmt: skip
        results |= res
        quality, ok = {}, True
        for s in SETS:
            fp, q8 = res[name][s]["mean"], res[f"{name}-int8"][s]["mean"]
            row = {}
            for metric in ("psnr_default", "ssim_default", "lpips_alex", "grid", "chroma"):
                row[metric] = {"fp32": fp[metric], "int8": q8[metric], "change": q8[metric] - fp[metric]}
                bound = BOUNDS.get(name, {}).get(metric)
                if bound is not None:
                    limit = bound[0] * (abs(fp[metric]) if bound[1] else 1)
                    row[metric]["within_bound"] = abs(q8[metric] - fp[metric]) <= limit
                    ok &= row[metric]["within_bound"]
            quality[s] = row
        bounds = {m: (f"{b * 100:g}%" if rel else b) for m, (b, rel) in BOUNDS.get(name, {}).items()}
        calib |= {"auto": bool(ok and name in BOUNDS), "bounds": bounds, "quality": quality,
                  "measured_by": "scripts/int8_calibrate.py (srgan benchmark, fp32 vs int8)"}  # fmt: skip
        save_calibration(calib, path)
        report[name] = {"auto": calib["auto"], "quality": quality}
        for s in SETS:
            cells = ", ".join(f"{m} {v['fp32']:.4g} -> {v['int8']:.4g} ({v['change']:+.4f})"
                              for m, v in quality[s].items())  # fmt: skip
            print(f"{name} {s}: {cells}")
        print(f"{name}: auto int8 {'yes' if calib['auto'] else 'no'}; wrote {path}")
    columns = [label for name in args.models for label in (name, f"{name}-int8")]
    for spec, box in CROPS.items():
        set_name, image = spec.split("/")
        fig = crop_figure(args.out, results, set_name, image, box, models=columns)
        path = Path(args.figures) / f"int8_{set_name}_{image}.png"
        atomic_write(path, lambda tmp, fig=fig: fig.save(tmp, format="PNG"))
        print(f"wrote {path}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
