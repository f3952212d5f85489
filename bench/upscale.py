"""Inference speed and memory: output megapixels per second and peak RSS of x4 upscaling, ours vs the plain
eval-mode fp32 PyTorch forward of the same generator, for 128x128, 480x320 and 960x540 inputs.

    python bench/upscale.py [--model srresnet] [--threads 2] [--reps 2] [--configs plain ours ...]
    python bench/upscale.py --device cuda          # plain fp32 vs ours in fp16 and bf16 on the GPU
    python bench/upscale.py --quick                # tiny inputs: checks the script end to end (to /tmp)
    python bench/plot_upscale.py bench/results/upscale_<device>_<versions>.json -o docs/upscale_speed.png

Every (config, size) runs in a fresh Python process, so its peak RSS (VmHWM: interpreter, torch, model,
input, output and the forward pass) belongs to that configuration alone. In each process: load the model,
warm up on a 32x32 input, then time --reps upscales of the full input and keep the fastest.
Configs:
  plain          model(lr_img) on the whole image: the trained Generator, eval mode, fp32, NCHW, no tiling
  ours           srgan.upscale(load_model(M, fast=True), lr_img, tile="auto", precision=P): BN folded,
                 FastGenerator, channels_last, tiles sized from free memory; P = --precision, or what
                 `srgan upscale --precision auto` picks for a model without int8 in auto (srresnet): bf16
                 on CPUs with native bf16, else fp32
  ours-fp32      the same in fp32
  ours-int8      the same with the int8 form (`srgan.int8.quantize`, its shipped calibration), precision int8
  onnxruntime    srgan.upscale(OnnxGenerator(file), tile="auto"), CPU fp32; the file is exported once by
                 the parent process (`srgan.onnx_export.export_onnx`), so the exporter is not in the RSS
  ours-fp16 / ours-bf16   on CUDA
Writes bench/results/upscale_<device>_<versions>.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
SIZES = [(128, 128), (480, 320), (960, 540)]  # LR input width x height
QUICK_SIZES = [(32, 32), (48, 40)]


def device_name(device: str, threads: int) -> str:
    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    cpuinfo = Path("/proc/cpuinfo")
    for line in cpuinfo.read_text().splitlines() if cpuinfo.exists() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip() + f" x{threads} threads"
    return (platform.processor() or "cpu") + f" x{threads} threads"


def default_results_path(kind: str, name: str, *, cuda: bool = False, quick: bool = False) -> Path:
    """bench/results/<kind>_<device>_<versions>[_quick].json for device `name` (quick runs: the temp folder);
    the benchmark scripts' default output."""
    slug = re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-").lower()[:60]
    versions = f"torch{torch.__version__.split('+')[0]}" + (f"_cuda{torch.version.cuda}" if cuda else "")
    folder = Path(tempfile.gettempdir()) if quick else REPO / "bench" / "results"
    return folder / f"{kind}_{slug}_{versions}{'_quick' if quick else ''}.json"


def peak_rss_mb() -> float:
    """This process's peak resident set size: VmHWM of /proc/self/status (reset by exec, unlike ru_maxrss,
    which Linux carries over from the parent process)."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / (1024 if sys.platform != "darwin" else 2**20)


def worker(args: argparse.Namespace) -> None:
    """One configuration at one size, in this (fresh) process; prints one JSON line."""
    from srgan.upscale import upscale
    from srgan.zoo import load_model, resolve_precision

    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    w, h = args.size
    config = args.config
    precision = "fp32"
    if config == "plain":
        model = load_model(args.model, device=device)

        def run(x):
            with torch.inference_mode():
                return model(x.to(device)).cpu()
    elif config == "onnxruntime":
        from srgan.onnx_export import OnnxGenerator

        model = OnnxGenerator(args.onnx, threads=args.threads)  # exported by the parent process

        def run(x):
            return upscale(model, x, tile="auto", colour="none")
    elif config == "ours-int8":
        from srgan.zoo import load_inference_model

        model, precision = load_inference_model(args.model, device=device, precision="int8")

        def run(x):
            return upscale(model, x, tile="auto", precision="int8", device=device, colour="none")
    else:
        model = load_model(args.model, device=device, fast=True)
        if config == "ours":
            precision = args.precision or resolve_precision("auto", device)
        else:
            precision = config.split("-")[1]

        def run(x):
            return upscale(model, x, tile="auto", precision=precision, device=device, colour="none")

    gen = torch.Generator().manual_seed(0)
    run(torch.rand(1, 3, 32, 32, generator=gen))  # warm-up: kernels, allocator, oneDNN primitives
    lr_img = torch.rand(1, 3, h, w, generator=gen)
    times = []
    for _ in range(args.reps):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        sr_img = run(lr_img)
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    assert sr_img.shape[-2:] == (4 * h, 4 * w)
    best = min(times)
    out = {
        "config": config, "precision": precision, "width": w, "height": h, "seconds": best,
        "all_seconds": times,
        "output_megapixels": 16 * w * h / 1e6, "megapixels_per_s": 16 * w * h / 1e6 / best,
        "peak_rss_mb": peak_rss_mb(),
    }  # fmt: skip
    if device.type == "cuda":
        out["peak_cuda_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    print(json.dumps(out))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="srresnet", help="shipped name or weights file (default srresnet)")
    parser.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N (default cpu)")
    parser.add_argument(
        "--threads", type=int, default=len(os.sched_getaffinity(0)), help="default: all cores"
    )
    parser.add_argument("--reps", type=int, default=2, help="timed upscales per run; the fastest is kept")
    parser.add_argument("--configs", nargs="+", help="default: plain ours ours-fp32 ours-int8 onnxruntime "
                        "(CPU), plain ours-fp16 ours-bf16 ours-fp32 (CUDA)")  # fmt: skip
    parser.add_argument("--precision", help="precision of `ours` (default: what `srgan upscale` picks)")
    parser.add_argument("--sizes", nargs="+", help="LR sizes WxH (default 128x128 480x320 960x540)")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds per run")
    parser.add_argument(
        "--quick", action="store_true", help="tiny inputs, 1 rep: checks the script end to end"
    )
    parser.add_argument("--out", help="output JSON (default bench/results/upscale_<device>_<versions>.json)")
    parser.add_argument("--worker", nargs=3, metavar=("CONFIG", "W", "H"), help=argparse.SUPPRESS)
    parser.add_argument("--onnx", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        args.config, args.size = args.worker[0], (int(args.worker[1]), int(args.worker[2]))
        worker(args)
        return

    cuda = args.device.startswith("cuda")
    configs = args.configs or (
        ["plain", "ours-fp16", "ours-bf16", "ours-fp32"]
        if cuda
        else ["plain", "ours", "ours-fp32", "ours-int8", "onnxruntime"]
    )
    sizes = [tuple(int(v) for v in s.lower().split("x")) for s in args.sizes] if args.sizes else SIZES
    if args.quick:
        sizes, args.reps = QUICK_SIZES if not args.sizes else sizes, 1
    name = device_name(args.device, args.threads)
    results = {
        "device": name, "torch": torch.__version__, "cuda": torch.version.cuda if cuda else None,
        "model": args.model, "threads": args.threads, "reps": args.reps, "quick": args.quick, "runs": [],
    }  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "PYTHONPATH": os.pathsep.join(
        [str(REPO / "src"), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}  # fmt: skip
    onnx_path = None
    if "onnxruntime" in configs:
        from srgan.onnx_export import export_onnx
        from srgan.zoo import load_model

        onnx_path = export_onnx(load_model(args.model), Path(tempfile.mkdtemp()) / "model.onnx")
    print(f"{name}, torch {torch.__version__}, model {args.model}")
    header = ("input", "config", "prec", "seconds", "MP/s", "peak RSS MB", "x plain")
    print("{:>9} {:<12} {:<5} {:>8} {:>7} {:>12} {:>8}".format(*header))
    for w, h in sizes:
        plain = None
        for config in configs:
            cmd = [sys.executable, __file__, "--worker", config, str(w), str(h), "--model", args.model,
                   "--device", args.device, "--threads", str(args.threads),
                   "--reps", str(args.reps)]  # fmt: skip
            if args.precision:
                cmd += ["--precision", args.precision]
            if config == "onnxruntime":
                cmd += ["--onnx", str(onnx_path)]
            try:
                proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=args.timeout)
            except subprocess.TimeoutExpired:
                proc = None
            if proc is None or proc.returncode != 0:
                why = "timed out" if proc is None else (proc.stderr.strip().splitlines() or ["failed"])[-1]
                results["runs"].append({"config": config, "width": w, "height": h, "error": why})
                print(f"{w:>4}x{h:<4} {config:<12} error: {why}")
                continue
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            if config == "plain":
                plain = r
            r["speedup_vs_plain"] = plain["seconds"] / r["seconds"] if plain else None
            results["runs"].append(r)
            speed = f"{r['speedup_vs_plain']:.2f}x" if plain else "-"
            print(f"{w:>4}x{h:<4} {config:<12} {r['precision']:<5} {r['seconds']:>8.3f} "
                  f"{r['megapixels_per_s']:>7.3f} {r['peak_rss_mb']:>12.0f} {speed:>8}")  # fmt: skip

    out = Path(args.out) if args.out else default_results_path("upscale", name, cuda=cuda, quick=args.quick)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
