"""One time-boxed GPU session that trains the paper's models in order and hands back their generators.

Made for a lent GPU machine with a fixed slice of time and no internet: what it needs comes in --stage (see
scripts/stage_gpu.py: training images and the int8 VGG19), and every result is written to --out as soon as
it exists, so a session cut short still returns what it finished.

Phases, each bounded by a deadline in seconds from the start of this script (a fraction of --budget):
  A  SRResNet-MSE, from --init (the shipped srresnet): lr --lr-a, then x0.1 for the last part
  B  SRGAN-VGG54 from A (paper: 1e-4, then 1e-5 for the second half), batch 16 as in the paper
  C  SRResNet-VGG22 (+TV 2e-8), SRGAN-MSE, SRGAN-VGG22 from A, run side by side on the same GPU
  D  bench/train_step.py on this GPU (steps/s of the conventional loop against ours), if time is left
Each phase is `srgan train` with --max-minutes, and a learning-rate drop is a --resume of the same run with
--lr-decay-step at the step it reached. Out: <variant>.safetensors per trained generator (with its recipe in
the metadata), summary.json (per model: steps reached, wall time and learning rates of each phase, the
runs that failed), log.txt (the runs' own logs), train_step.json.

    python scripts/gpu_train.py --stage .stage --out "$OUT" --budget 540
    python scripts/gpu_train.py --stage .stage --out /tmp/o --budget 60 --device cpu --tiny   # a dry run
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "scripts"))

from stage_gpu import INT8_NAME, dequantize_int8  # noqa: E402

from srgan.checkpoint import generator_from_checkpoint, load_checkpoint, save_generator  # noqa: E402
from srgan.vgg_weights import FORMAT  # noqa: E402
from srgan.zoo import SHIPPED, WEIGHTS_DIR  # noqa: E402

T0 = time.monotonic()
failed: list[str] = []  # runs that exited with an error


def now() -> float:
    return time.monotonic() - T0


def say(msg: str) -> None:
    print(f"[{now():6.1f} s] {msg}", flush=True)


def train_cmd(args, preset: str, out: Path, seconds: float, *, batch: int, lr: float, init: str | None = None,
              resume: Path | None = None, decay_step: int | None = None) -> list[str]:  # fmt: skip
    seconds = max(seconds, 2.0)
    cmd = [sys.executable, "-m", "srgan.cli", "train", "--out", str(out),
           "--max-minutes", f"{seconds / 60:.4f}"]  # fmt: skip
    if resume is not None:
        cmd += ["--resume", str(resume)]
    else:
        cmd += ["--preset", preset, "--data", str(Path(args.stage) / "train"), "--steps", "10000000",
                "--batch-size", str(batch), "--learning-rate", str(lr), "--device", args.device,
                "--precision", "bf16", "--channels-last", "--data-on-device", "--fast-crops",
                "--log-every", "200", "--ckpt-every", "1000000", "--seed", "1"]  # fmt: skip
        if args.device.startswith("cuda"):
            cmd += ["--fused-adam"]
        if init:
            cmd += ["--init-from", init]
        if args.tiny:
            cmd += ["--num-blocks", "2", "--channels", "8"]
    if decay_step is not None:
        cmd += ["--lr-decay-step", str(decay_step)]
    return cmd


def run_phase(cmds: list[tuple[str, list[str]]], logs: Path, out: Path) -> dict[str, int]:
    """Run the commands side by side; their output goes to logs/<name>.log (all logs so far are copied to
    out/log.txt after each phase). Returns name -> exit code."""
    procs = {}
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"), TQDM_MININTERVAL="20", PYTHONUNBUFFERED="1")
    for name, cmd in cmds:
        say(f"start {name}: {' '.join(cmd[3:])}")
        log = open(logs / f"{name}.log", "a")
        procs[name] = (subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO), log)
    codes = {}
    for name, (proc, log) in procs.items():
        codes[name] = proc.wait()
        log.close()
        tail = (
            (logs / f"{name}.log").read_text(errors="replace").replace("\r", "\n").strip().splitlines()[-3:]
        )
        say(f"{name} exited {codes[name]}: " + " | ".join(tail))
        if codes[name]:
            failed.append(name)
    with open(out / "log.txt", "w") as f:  # all runs' logs so far, progress bars split into lines
        for path in sorted(logs.glob("*.log")):
            f.write(f"===== {path.name}\n" + path.read_text(errors="replace").replace("\r", "\n"))
    return codes


def export(run: Path, name: str, out: Path, summary: dict, seconds: float, phase: str) -> Path | None:
    """run/last.pt -> out/<name>.safetensors (generator only, recipe in the metadata); summary entry.
    `seconds`: the phase's wall time, process starts and data loading included."""
    ckpt_path = run / "last.pt"
    if not ckpt_path.exists():
        say(f"{name}: no checkpoint in {run}")
        return None
    ckpt = load_checkpoint(ckpt_path, map_location="cpu")
    cfg = ckpt["config"]
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else platform.processor() or "cpu"
    entry = summary.setdefault(name, {"phases": []})
    entry["phases"].append(
        {"phase": phase, "step": ckpt["step"], "wall_s": round(seconds, 1),
         "learning_rate": cfg["learning_rate"], "lr_decay_step": cfg["lr_decay_step"]}
    )  # fmt: skip
    images = len(list(Path(cfg["train_dirs"][0]).iterdir()))
    entry.update(preset=cfg["preset"], steps=ckpt["step"], batch_size=cfg["batch_size"],
                 init_from=cfg["init_from"], train_images=images, device=gpu)  # fmt: skip
    meta = {"preset": cfg["preset"], "steps": str(ckpt["step"]), "batch_size": str(cfg["batch_size"]),
            "recipe": json.dumps(entry["phases"]), "machine": gpu}  # fmt: skip
    path = out / f"{name}.safetensors"
    save_generator(path, generator_from_checkpoint(ckpt, where=str(ckpt_path)), metadata=meta)
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    say(f"exported {path.name}: step {ckpt['step']}")
    return path


def last_step(run: Path) -> int:
    return load_checkpoint(run / "last.pt", map_location="cpu")["step"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stage", default=".stage")
    ap.add_argument("--out", required=True)
    ap.add_argument("--work", default="/tmp/srgan_gpu", help="run folders and the VGG cache")
    ap.add_argument("--budget", type=float, default=540, help="seconds for everything")
    ap.add_argument("--device", default="cuda")
    ap.add_argument(
        "--init", default=str(WEIGHTS_DIR / SHIPPED["srresnet"]), help="SRResNet-MSE to start A from"
    )
    ap.add_argument("--batch-a", type=int, default=64)
    ap.add_argument("--lr-a", type=float, default=2e-4)
    ap.add_argument("--tiny", action="store_true", help="tiny generator: checks the script end to end")
    args = ap.parse_args()
    out, work = Path(args.out), Path(args.work)
    out.mkdir(parents=True, exist_ok=True)
    (work / "logs").mkdir(parents=True, exist_ok=True)
    if any(work.glob("*/last.pt")):
        print(f"error: {work} holds earlier runs; remove it or pass another --work", file=sys.stderr)
        return 2
    budget = args.budget
    summary: dict = {"budget_s": budget, "torch": torch.__version__,
                     "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None}  # fmt: skip

    # The VGG19 cache file the loss reads, rebuilt from the int8 transfer copy.
    os.environ["SRGAN_CACHE"] = str(work / "cache")
    (work / "cache").mkdir(exist_ok=True)
    vgg = dequantize_int8(load_file(str(Path(args.stage) / INT8_NAME)))
    save_file(vgg, str(work / "cache" / "vgg19_caffe.safetensors"),
              metadata={"format": FORMAT, "convention": "caffe", "source": "int8 transfer copy"})  # fmt: skip
    say(f"torch {torch.__version__}, {summary['gpu']}; VGG19 cache rebuilt; budget {budget:.0f} s")
    logs = work / "logs"

    def with_decay(phase: str, name: str, preset: str, end: float, first: float, **kw) -> Path | None:
        """Train `preset` until `first` of the time left before `end` at kw["lr"], then resume at lr / 10
        until `end`; export the result."""
        run, t = work / name, now()
        run_phase([(name, train_cmd(args, preset, run, first * (end - now()) - 15, **kw))], logs, out)
        if not (run / "last.pt").exists():
            return None
        resume = dict(resume=run / "last.pt", decay_step=last_step(run))
        run_phase([(name, train_cmd(args, preset, run, end - now() - 15, **kw, **resume))], logs, out)
        return export(run, name, out, summary, now() - t, phase)

    # A: SRResNet-MSE, lr_a for 80% of its slice, then lr_a / 10.
    a_init = None if args.tiny else args.init
    a_path = with_decay("A", "srresnet_mse", "srresnet-mse", 0.42 * budget, 0.8,
                        batch=args.batch_a, lr=args.lr_a, init=a_init)  # fmt: skip
    init = str(a_path) if a_path else args.init
    # B: SRGAN-VGG54 from A: 1e-4 for the first half, 1e-5 for the second (paper: 1e5 + 1e5 steps).
    with_decay("B", "srgan_vgg54", "srgan-vgg54", 0.72 * budget, 0.5, batch=16, lr=1e-4, init=init)

    # C: the other three Table 1 variants side by side, one lr, from A.
    c_end = 0.9 * budget
    c, t = c_end - now() - 20, now()
    variants = {"srresnet_vgg22": "srresnet-vgg22", "srgan_mse": "srgan-mse", "srgan_vgg22": "srgan-vgg22"}
    run_phase([(name, train_cmd(args, preset, work / name, c, batch=16, lr=1e-4, init=init))
               for name, preset in variants.items()], logs, out)  # fmt: skip
    wall_c = now() - t
    for name in variants:
        export(work / name, name, out, summary, wall_c, "C")

    # D: training-step throughput on this device, if the budget allows.
    left = budget - now()
    if args.device.startswith("cuda") and left > 35:
        cmd = [sys.executable, str(REPO / "bench/train_step.py"), "--device", args.device, "--batches", "16",
               "--steps", "30", "--warmup", "5", "--modes", "conventional", "ours", "--fast-crops",
               "--data", str(Path(args.stage) / "train"), "--out", str(out / "train_step.json")]  # fmt: skip
        say(f"bench: {' '.join(cmd[1:])}")
        try:
            subprocess.run(
                cmd, timeout=left - 10, env=dict(os.environ, PYTHONPATH=str(REPO / "src")), check=False
            )
        except subprocess.TimeoutExpired:
            say("bench stopped at the budget")
    summary["wall_s"], summary["failed"] = round(now(), 1), failed
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    say(f"done; failed: {', '.join(failed)}" if failed else "done")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
