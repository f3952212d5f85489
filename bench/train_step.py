"""Training throughput: steps/s and achieved TFLOP/s of the SRResNet-MSE step and of the full SRGAN-VGG54
step (D update + G update with VGG19 to phi_5,4), ours vs a conventional loop, and the bf16 matmul ceiling.

    python bench/train_step.py [--device cuda] [--batches 16 128] [--data DIR] [--steps 50] [--compile MODE]
    python bench/train_step.py --quick     # a tiny end-to-end check of the script (seconds; writes to /tmp)

Modes, each timed over --steps steps after --warmup steps (wall clock, device synchronised at both ends):
  conventional   CPU DataLoader (TrainCrops: PIL decode, numpy crops, MATLAB bicubic per sample), fp32,
                 contiguous layout, plain Adam: the loop most SR code bases run.
  fp32 | bf16 | bf16+channels_last   the model step alone on one fixed batch (no data loading).
  ours           DeviceCrops (batches made on the device), bf16 autocast, channels_last, fused Adam, and
                 torch.compile with --compile MODE (none by default). Crop offsets as the DataLoader path
                 draws them (numpy on the host, ~0.55 ms per step at batch 16), or with --fast-crops drawn
                 on the device (no host work per step; then the loss curves are not compared).
FLOPs per step are counted once per preset and batch with torch's FlopCounterMode (convolutions and matmuls,
forward and backward); TFLOP/s = FLOPs / median step time. The ceiling is the median of --ceiling-reps bf16
matmuls of --ceiling-size squared matrices. `conventional` and `ours` see the very same batches
(step-addressed crops), so their loss curves are compared step by step ("loss_max_abs_diff").
Writes bench/results/train_step_<device>_torch<version>[_cuda<version>].json and prints a table;
--profile also prints the profiler's top operators for the `ours` step (where the time goes).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader
from torch.utils.flop_counter import FlopCounterMode
from upscale import default_results_path

from srgan.config import make_config
from srgan.data import StepSampler, TrainCrops
from srgan.device_data import DeviceCrops
from srgan.losses import ADV_WEIGHT
from srgan.train import build, compiled, discriminator_step, generator_step
from srgan.vgg_weights import is_cached

SYNTHETIC_MODES = {"fp32": ("fp32", False), "bf16": ("bf16", False), "bf16+channels_last": ("bf16", True)}
REPO = Path(__file__).resolve().parents[1]


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    cpuinfo = Path("/proc/cpuinfo")
    for line in cpuinfo.read_text().splitlines() if cpuinfo.exists() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip() + f" x{torch.get_num_threads()} threads"
    return (platform.processor() or "cpu") + f" x{torch.get_num_threads()} threads"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_ceiling(device: torch.device, size: int, reps: int) -> float:
    """Measured bf16 matrix-product throughput (TFLOP/s): median over `reps` products of size x size."""
    a = torch.randn(size, size, device=device, dtype=torch.bfloat16)
    b = torch.randn(size, size, device=device, dtype=torch.bfloat16)
    a @ b
    times = []
    for _ in range(reps):
        sync(device)
        t0 = time.perf_counter()
        a @ b
        sync(device)
        times.append(time.perf_counter() - t0)
    return 2 * size**3 / statistics.median(times) / 1e12


class Setup:
    """Models, optimizers and loss settings of one preset, in one precision / layout: `srgan.train.build`
    of the preset's TrainConfig, as `srgan train` makes them."""

    def __init__(self, preset, device, *, precision, channels_last, fused, compile_mode, model_kw):
        fmt = torch.channels_last if channels_last else torch.contiguous_format
        self.device, self.precision, self.fmt = device, precision, fmt
        vgg_source = "caffe" if is_cached("caffe") else "random"  # the real weights when cached, else random
        cfg = make_config(preset, precision=precision, channels_last=channels_last, fused_adam=fused,
                          vgg_source=vgg_source, **model_kw)  # fmt: skip
        parts = build(cfg, device)
        self.g, self.d, self.vgg, self.opt_g, self.opt_d = parts.generator, parts.discriminator, parts.vgg, \
            parts.opt_g, parts.opt_d  # fmt: skip
        self.g_run, self.d_run = compiled(self.g, compile_mode), compiled(self.d, compile_mode)
        self.content = cfg.content_loss

    def step(self, lr_img, hr_img) -> float:
        lr_img = lr_img.to(self.device, non_blocking=True).contiguous(memory_format=self.fmt)
        hr_img = hr_img.to(self.device, non_blocking=True).contiguous(memory_format=self.fmt)
        if self.d is not None:
            discriminator_step(self.g_run, self.d_run, self.opt_d, lr_img, hr_img, precision=self.precision)
        out = generator_step(self.g_run, self.d_run, self.vgg, self.opt_g, lr_img, hr_img,
                             content_loss=self.content, adv_weight=ADV_WEIGHT, tv_weight=0.0,
                             precision=self.precision)  # fmt: skip
        return out["g/content"].item()  # waits for the step to finish on the device


def time_loop(setup: Setup, batches, warmup: int, steps: int) -> dict:
    """Run warmup + steps steps from the `batches` iterator; per-step wall times of the timed ones."""
    losses, times = [], []
    it = iter(batches)
    for _ in range(warmup + steps):
        sync(setup.device)
        t0 = time.perf_counter()
        lr_img, hr_img = next(it)
        losses.append(setup.step(lr_img, hr_img))  # .item() inside: the step has finished on the device
        times.append(time.perf_counter() - t0)
    timed = times[warmup:]
    median = statistics.median(timed)
    return {"median_s": median, "steps_per_s": 1 / median, "mean_s": statistics.mean(timed), "losses": losses}


def count_flops(setup: Setup, lr_img, hr_img) -> int:
    with FlopCounterMode(display=False) as counter:
        setup.step(lr_img, hr_img)
    return int(counter.get_total_flops())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--presets", nargs="+", default=["srresnet-mse", "srgan-vgg54"])
    parser.add_argument("--batches", nargs="+", type=int, help="batch sizes (default 16; on CUDA 16 and 128)")
    parser.add_argument("--steps", type=int, help="timed steps per mode (default 50 on CUDA, 4 on CPU)")
    parser.add_argument("--warmup", type=int, help="untimed steps first (default 10 on CUDA, 1 on CPU)")
    parser.add_argument("--data", help="training images (default $SRGAN_DATA/train/bsd200)")
    parser.add_argument("--workers", type=int, help="DataLoader workers, conventional loop (default: cores)")
    parser.add_argument("--compile", default="none", help="torch.compile mode for `ours` (none | default | "
                        "reduce-overhead | max-autotune)")  # fmt: skip
    parser.add_argument(
        "--fast-crops", action="store_true", help="`ours` draws crop offsets on the device (no host work)"
    )
    parser.add_argument("--modes", nargs="+", default=["conventional", *SYNTHETIC_MODES, "ours"])
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    parser.add_argument("--ceiling-size", type=int, help="matmul size (default 8192 on CUDA, 2048 on CPU)")
    parser.add_argument("--ceiling-reps", type=int, default=10)
    parser.add_argument("--profile", action="store_true", help="print the top operators of the `ours` step")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="tiny models and images, 2 steps: checks the script end to end; numbers mean nothing",
    )
    parser.add_argument(
        "--out", help="output JSON (default bench/results/train_step_<device>_<versions>.json)"
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    batches = args.batches or ([16, 128] if cuda else [16])
    steps = args.steps or (50 if cuda else 4)
    warmup = args.warmup if args.warmup is not None else (10 if cuda else 1)
    workers = args.workers if args.workers is not None else len(os.sched_getaffinity(0))
    data_root = Path(os.environ.get("SRGAN_DATA", REPO.parent / "shared" / "data"))
    data = args.data or str(data_root / "train" / "bsd200")
    model_kw = {}
    crop = 96
    ceiling_size = args.ceiling_size or (8192 if cuda else 2048)
    if args.quick:
        model_kw = {"num_blocks": 1, "channels": 8, "d_channels": 8, "crop_size": 32}
        crop, steps, warmup, batches, ceiling_size, workers = 32, 2, 1, args.batches or [2], 256, 0
    if not Path(data).is_dir():
        raise SystemExit(f"error: training images not found in {data}: pass --data DIR or set SRGAN_DATA")

    name = device_name(device)
    results = {
        "device": name, "torch": torch.__version__, "cuda": torch.version.cuda if cuda else None,
        "quick": args.quick, "steps": steps, "warmup": warmup, "data": data, "crop": crop,
        "compile": args.compile, "fast_crops": args.fast_crops, "conventional_workers": workers,
        "bf16_matmul_ceiling_tflops": matmul_ceiling(device, ceiling_size, args.ceiling_reps),
        "ceiling_size": ceiling_size, "runs": {},
    }  # fmt: skip
    ceiling = results["bf16_matmul_ceiling_tflops"]
    print(f"{name}, torch {torch.__version__}; bf16 matmul ceiling {ceiling:.2f} TFLOP/s ({ceiling_size}^2)")
    print(
        f"{'preset':<13} {'batch':>5} {'mode':<19} {'steps/s':>9} {'TFLOP/s':>8} {'x conv.':>8} {'loss':>9}"
    )
    for preset in args.presets:
        if args.quick and preset.startswith("srgan") and crop % 16:
            raise SystemExit("quick mode needs a crop that is a multiple of 16")
        for batch in batches:
            kw = dict(crop_size=crop, batch_size=batch, seed=0)
            flops = None
            base = None
            for mode in args.modes:
                if mode == "conventional":
                    setup = Setup(preset, device, precision="fp32", channels_last=False, fused=False,
                                  compile_mode="none", model_kw=model_kw)  # fmt: skip
                    ds = TrainCrops([data], **kw)
                    loader = DataLoader(ds, batch_size=batch, sampler=StepSampler(0, warmup + steps, batch),
                                        num_workers=workers, pin_memory=cuda)  # fmt: skip
                    r = time_loop(setup, loader, warmup, steps)
                elif mode == "ours":
                    setup = Setup(preset, device, precision="bf16", channels_last=True, fused=True,
                                  compile_mode=args.compile, model_kw=model_kw)  # fmt: skip
                    ds = DeviceCrops([data], **kw, device=device, exact_crops=not args.fast_crops)
                    r = time_loop(setup, ds.batches(0, warmup + steps), warmup, steps)
                    if args.profile:
                        profile(setup, ds, device)
                elif mode in SYNTHETIC_MODES:
                    precision, cl = SYNTHETIC_MODES[mode]
                    setup = Setup(preset, device, precision=precision, channels_last=cl, fused=False,
                                  compile_mode="none", model_kw=model_kw)  # fmt: skip
                    gen = torch.Generator().manual_seed(1)
                    lr_img = torch.rand(batch, 3, crop // 4, crop // 4, generator=gen).to(device)
                    hr_img = (torch.rand(batch, 3, crop, crop, generator=gen) * 2 - 1).to(device)
                    r = time_loop(setup, itertools.repeat((lr_img, hr_img)), warmup, steps)
                else:
                    raise SystemExit(f"unknown mode {mode!r}")
                if flops is None:  # the same model work in every mode; counted on a synthetic batch
                    lr0 = torch.rand(batch, 3, crop // 4, crop // 4, device=device)
                    flops = count_flops(setup, lr0, torch.rand(batch, 3, crop, crop, device=device) * 2 - 1)
                r["flops_per_step"] = flops
                r["tflops"] = flops * r["steps_per_s"] / 1e12
                if mode == "conventional":
                    base = r
                r["speedup_vs_conventional"] = r["steps_per_s"] / base["steps_per_s"] if base else None
                results["runs"][f"{preset}/b{batch}/{mode}"] = r
                speed = f"{r['speedup_vs_conventional']:.2f}x" if base else "-"
                print(f"{preset:<13} {batch:>5} {mode:<19} {r['steps_per_s']:>9.2f} {r['tflops']:>8.3f} "
                      f"{speed:>8} {r['losses'][-1]:>9.5g}")  # fmt: skip
            conv, ours = (results["runs"].get(f"{preset}/b{batch}/{m}") for m in ("conventional", "ours"))
            if conv and ours and not args.fast_crops:  # same batches, same init: fp32 vs bf16 loss curves
                diff = max(abs(a - b) for a, b in zip(conv["losses"], ours["losses"], strict=True))
                results["runs"][f"{preset}/b{batch}/ours"]["loss_max_abs_diff_vs_conventional"] = diff
                print(f"{'':<13} {'':>5} loss curves ours vs conventional: max |diff| {diff:.3g} "
                      f"(losses ~{statistics.mean(conv['losses']):.3g})")  # fmt: skip

    default = default_results_path("train_step", name, cuda=cuda, quick=args.quick)
    out = Path(args.out) if args.out else default
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")


def profile(setup: Setup, ds: DeviceCrops, device: torch.device) -> None:
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with torch_profile(activities=activities) as prof:
        for lr_img, hr_img in ds.batches(0, 5):
            setup.step(lr_img, hr_img)
    sort = "cuda_time_total" if device.type == "cuda" else "cpu_time_total"
    print(prof.key_averages().table(sort_by=sort, row_limit=20, max_name_column_width=50))


if __name__ == "__main__":
    main()
