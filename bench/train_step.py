"""Time one training step (SRResNet-MSE and SRGAN-VGG54 generator+discriminator) at the paper's batch 16,
fp32 vs bf16 autocast (with and without channels_last), in one run on this machine.

    .venv/bin/python bench/train_step.py [--steps 5] [--presets srresnet-mse srgan-vgg54] [--threads N]

Writes bench/results/train_step_<cpu|gpu name>_torch<version>.json and prints a table. Also reports how far
apart the fp32 and bf16 losses are on identical batches after a few steps (the numerical effect of bf16).
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import time
from pathlib import Path

import torch

from srgan.losses import ADV_WEIGHT
from srgan.models import Discriminator, Generator, VGG19Features
from srgan.train import discriminator_step, generator_step
from srgan.vgg_weights import is_cached, load_vgg19

MODES = {"fp32": ("fp32", False), "bf16": ("bf16", False), "bf16+channels_last": ("bf16", True)}


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip() + f" x{torch.get_num_threads()} threads"
    return platform.processor() or "cpu"


def run(preset: str, precision: str, channels_last: bool, steps: int, device: torch.device, batch: int):
    torch.manual_seed(0)
    g = Generator().to(device)
    adversarial = preset.startswith("srgan")
    d = Discriminator().to(device) if adversarial else None
    vgg = None
    if preset.endswith("vgg54"):  # the real weights when cached (`srgan weights vgg19`), else random ones
        vgg = (
            load_vgg19(("54",), device=device)
            if is_cached("caffe")
            else VGG19Features(layers=("54",)).to(device)
        )
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    g = g.to(memory_format=fmt)
    d = d.to(memory_format=fmt) if d is not None else None
    vgg = vgg.to(memory_format=fmt) if vgg is not None else None
    opt_g = torch.optim.Adam(g.parameters(), lr=1e-4, betas=(0.9, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=1e-4, betas=(0.9, 0.999)) if d is not None else None
    gen = torch.Generator().manual_seed(1)
    lr_img = torch.rand(batch, 3, 24, 24, generator=gen).to(device).contiguous(memory_format=fmt)
    hr_img = (torch.rand(batch, 3, 96, 96, generator=gen) * 2 - 1).to(device).contiguous(memory_format=fmt)
    content = "vgg54" if vgg is not None else "mse"
    times, last = [], None
    for i in range(steps + 1):  # the first step is warm-up
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        if d is not None:
            discriminator_step(g, d, opt_d, lr_img, hr_img, precision=precision)
        last = generator_step(g, d, vgg, opt_g, lr_img, hr_img, content_loss=content, adv_weight=ADV_WEIGHT,
                              tv_weight=0.0, precision=precision)  # fmt: skip
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i:
            times.append(time.perf_counter() - t0)
    times.sort()
    return {"median_s": times[len(times) // 2], "min_s": times[0], "final_loss": last["g/content"]}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--presets", nargs="+", default=["srresnet-mse", "srgan-vgg54"])
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device("cuda" if args.device == "auto" and torch.cuda.is_available() else
                          ("cpu" if args.device == "auto" else args.device))  # fmt: skip
    name = device_name(device)
    results = {
        "device": name,
        "torch": torch.__version__,
        "batch": args.batch,
        "steps": args.steps,
        "runs": {},
    }
    print(f"{name}, torch {torch.__version__}, batch {args.batch}")
    print(f"{'preset':<14} {'mode':<20} {'s/step':>8} {'speed-up':>9} {'loss after steps':>17}")
    for preset in args.presets:
        base = None
        for mode, (precision, cl) in MODES.items():
            r = run(preset, precision, cl, args.steps, device, args.batch)
            base = base or r["median_s"]
            r["speedup_vs_fp32"] = base / r["median_s"]
            results["runs"][f"{preset}/{mode}"] = r
            print(f"{preset:<14} {mode:<20} {r['median_s']:>8.3f} {r['speedup_vs_fp32']:>8.2f}x "
                  f"{r['final_loss']:>17.6g}")  # fmt: skip
    slug = re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-").lower()[:60]
    out = Path(__file__).parent / "results" / f"train_step_{slug}_torch{torch.__version__.split('+')[0]}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
