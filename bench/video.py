"""Video upscaling: frames/s and peak RSS of `srgan.upscale_video` (streamed, batched, decode and encode in
their own threads) against a naive loop (decode a frame to PIL, `srgan.upscale` it, encode it), and peak RSS
of a short and a 6x longer clip of the same size (streaming: the two must agree within 10%).

    python bench/video.py [--threads 2] [--model srgan] [--device cpu|cuda]
    python bench/video.py --quick          # tiny model and clips: checks the script end to end (to /tmp)

Clips are synthetic (a moving gradient with noise, 24 fps, H.264 yuv420p, an 8 kHz AAC sine), made with
PyAV in a temporary folder. Every run is a fresh Python process, so its peak RSS (VmHWM) is its own. Lines:
  speed   ours vs naive, WxH (default 320x240) and N frames (default 60), the shipped --model at the
          precision `srgan upscale` picks (`--precision auto`: int8 for srgan on CPUs with VNNI / AMX, else
          bf16 on CPUs with native bf16); output H.264 crf 23
  memory  ours on a SHORT s and a LONG s clip (default 10 and 60) of MEM_SIZE (default 64x48) at MEM_FPS
          (default 12, to keep the whole bench near 4 minutes on 2 cores) with --model
Writes bench/results/video_<device>_<versions>.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
from upscale import REPO, default_results_path, device_name, peak_rss_mb


def synthetic_clip(path: Path, seconds: float, size: tuple[int, int], rate: int = 24) -> Path:
    import av

    w, h = size
    frames = round(seconds * rate)
    rng = np.random.default_rng(0)
    x = np.linspace(0, 255, w)[None, :, None]
    y = np.linspace(0, 255, h)[:, None, None]
    with av.open(str(path), "w") as c:
        v = c.add_stream("libx264", rate=rate)
        v.width, v.height, v.pix_fmt = w, h, "yuv420p"
        a = c.add_stream("aac", rate=8000, layout="mono")
        for i in range(frames):
            arr = (x + y + 4 * i) % 256 * np.array([1.0, 0.6, 0.3]) + rng.normal(0, 8, (h, w, 3))
            frame = av.VideoFrame.from_ndarray(np.clip(arr, 0, 255).astype(np.uint8), format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, rate)
            c.mux(v.encode(frame))
        c.mux(v.encode(None))
        n = int(8000 * frames / rate)
        sine = (0.3 * np.sin(2 * np.pi * 440 * np.arange(n) / 8000)).astype(np.float32)[None]
        for i in range(0, n, 1024):
            af = av.AudioFrame.from_ndarray(sine[:, i : i + 1024].copy(), format="fltp", layout="mono")
            af.sample_rate, af.pts, af.time_base = 8000, i, Fraction(1, 8000)
            c.mux(a.encode(af))
        c.mux(a.encode(None))
    return path


def worker(args: argparse.Namespace) -> None:
    """One run (ours or naive) on one clip, in this fresh process; prints one JSON line."""
    import av

    import srgan
    from srgan.batch import check_run_options
    from srgan.zoo import load_inference_model

    torch.set_num_threads(args.threads)
    if args.model == "tiny":
        model = srgan.Generator(num_blocks=1, channels=8).eval()
        device, precision = torch.device(args.device), "fp32"
    else:
        device, precision = check_run_options("torch", args.device, "auto")
        model, precision = load_inference_model(args.model, device=device, precision=precision)
    with av.open(args.clip) as c:
        frames = c.streams.video[0].frames
    dst = Path(args.tmp) / f"{args.config}.mp4"
    t0 = time.perf_counter()
    if args.config == "ours":
        srgan.upscale_video(model, args.clip, dst, precision=precision, device=device, force=True,
                            progress=False)  # fmt: skip
    else:  # naive: one frame at a time, through PIL, nothing overlapped
        with av.open(args.clip) as inp, av.open(str(dst), "w") as out:
            in_v = inp.streams.video[0]
            out_v = out.add_stream("libx264", rate=in_v.average_rate)
            out_v.width, out_v.height, out_v.pix_fmt = in_v.width * 4, in_v.height * 4, "yuv420p"
            for frame in inp.decode(in_v):
                sr = srgan.upscale(model, frame.to_image(), tile="auto", precision=precision, device=device)
                out.mux(out_v.encode(av.VideoFrame.from_image(sr).reformat(format="yuv420p")))
            out.mux(out_v.encode(None))
    seconds = time.perf_counter() - t0
    print(json.dumps({"config": args.config, "clip": Path(args.clip).name, "frames": frames,
                      "precision": precision, "seconds": seconds, "frames_per_s": frames / seconds,
                      "peak_rss_mb": peak_rss_mb()}))  # fmt: skip


def run_one(args, config: str, clip: Path, model: str, tmp: str) -> dict:
    cmd = [sys.executable, __file__, "--worker", "--config", config, "--clip", str(clip), "--model", model,
           "--threads", str(args.threads), "--device", args.device, "--tmp", tmp]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    if done.returncode:
        raise RuntimeError(f"{config} on {clip.name} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--model", default="srgan", help="shipped model (default srgan, what `srgan upscale` "
                        "runs) or 'tiny'")
    parser.add_argument("--mem-model", help="model for the memory lines (default --model)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--size", type=int, nargs=2, default=(320, 240), metavar=("W", "H"))
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--mem-size", type=int, nargs=2, default=(64, 48), metavar=("W", "H"))
    parser.add_argument("--mem-fps", type=int, default=12, help="frame rate of the memory clips")
    parser.add_argument("--short", type=float, default=10.0, help="seconds of the short clip")
    parser.add_argument("--long", type=float, default=60.0, help="seconds of the long clip")
    parser.add_argument("--quick", action="store_true", help="tiny model, tiny clips: end-to-end check")
    parser.add_argument("--out", help="output JSON (default bench/results/video_<device>_<versions>.json)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--config", help=argparse.SUPPRESS)
    parser.add_argument("--clip", help=argparse.SUPPRESS)
    parser.add_argument("--tmp", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    if args.quick:
        args.model, args.size, args.frames = "tiny", (64, 48), 6
        args.mem_size, args.short, args.long = (32, 24), 1, 6
    mem_model = args.mem_model or args.model
    name = device_name(args.device, args.threads)
    results = {"device": name, "torch": torch.__version__, "model": args.model, "mem_model": mem_model,
               "mem_size": list(args.mem_size), "mem_fps": args.mem_fps, "runs": []}  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        w, h = args.size
        speed_clip = synthetic_clip(Path(tmp) / f"speed_{w}x{h}.mp4", args.frames / 24, (w, h))
        for config in ("ours", "naive"):
            r = run_one(args, config, speed_clip, args.model, tmp)
            results["runs"].append({"line": "speed", "model": args.model, **r})
            print(f"speed  {config:<5} {args.model} {w}x{h} {r['frames']} frames {r['precision']}: "
                  f"{r['frames_per_s']:.3f} frames/s, peak RSS {r['peak_rss_mb']:.0f} MB",
                  flush=True)  # fmt: skip
        mw, mh = args.mem_size
        for secs in (args.short, args.long):
            clip = synthetic_clip(Path(tmp) / f"mem_{secs:g}s.mp4", secs, (mw, mh), rate=args.mem_fps)
            r = run_one(args, "ours", clip, mem_model, tmp)
            results["runs"].append({"line": "memory", "model": mem_model, "clip_seconds": secs, **r})
            print(f"memory ours  {mem_model} {mw}x{mh} {secs:g} s ({r['frames']} frames): peak RSS "
                  f"{r['peak_rss_mb']:.0f} MB, {r['frames_per_s']:.2f} frames/s", flush=True)  # fmt: skip
    mem = [r["peak_rss_mb"] for r in results["runs"] if r["line"] == "memory"]
    results["long_over_short_rss"] = mem[1] / mem[0]
    speed = {r["config"]: r["frames_per_s"] for r in results["runs"] if r["line"] == "speed"}
    results["ours_over_naive_speed"] = speed["ours"] / speed["naive"]
    print(f"long / short peak RSS: {mem[1] / mem[0]:.3f}; ours / naive frames/s: "
          f"{speed['ours'] / speed['naive']:.2f}x")  # fmt: skip
    cuda = args.device.startswith("cuda")
    out = Path(args.out) if args.out else default_results_path("video", name, cuda=cuda, quick=args.quick)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
