"""Curves of a training recipe: PSNR, LPIPS-Alex, grid and chroma noise of its snapshots against step.

Reads the generator snapshots that `srgan train --snapshot-every N` writes
(RUN/snapshots/stepNNNNNNN.safetensors and, with --ema-decay, stepNNNNNNN_ema.safetensors), scores every
--every-th step on a fixed validation subset (Set5 and Set14 for PSNR, grid and chroma; the first 20 BSD100
images for LPIPS-Alex, a proxy for the BSD100 LPIPS target) the way `srgan eval` makes SR (fp32, whole
image), and writes a JSON and a six-panel figure. Several runs (--run LABEL=DIR) share one figure. Steps
are G's adversarial steps: a run with a discriminator warm-up (--d-warmup-steps K, read from RUN/last.pt)
has its snapshot at training step S drawn at S - K.

    .venv/bin/python scripts/recipe_curves.py --run paper+EMA=runs/srgan-ema1 --every 500 \
        --json docs/results/recipe_curves.json --figure docs/figures/recipe_curves.png
"""

from __future__ import annotations

import argparse
import json
import math
import os
from pathlib import Path

import torch

from srgan.artefacts import aggregate, measure
from srgan.data import check_data_dir, list_pairs, load_pair
from srgan.evaluate import make_upscaler
from srgan.lpips import load_lpips
from srgan.metrics import psnr
from srgan.train import list_snapshots
from srgan.zoo import load_model, load_realism_model

DATA = Path(os.environ.get("SRGAN_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def score(model, sets: dict[str, list], lpips_pairs: list, lpips_net) -> dict[str, float]:
    upscale = make_upscaler(model)
    out: dict[str, float] = {}
    for set_name, pairs in sets.items():
        rows, values = [], []
        for lr_img, hr_img in pairs:
            sr_img = upscale(lr_img[None])[0]
            values.append(psnr(sr_img, hr_img, crop_border=4))
            rows.append(measure(sr_img, hr_img))
        agg = aggregate(rows)
        out[f"{set_name}/psnr"] = math.fsum(values) / len(values)
        out[f"{set_name}/grid"], out[f"{set_name}/chroma"] = agg["grid"], agg["chroma"]
        out[f"{set_name}/shift_max"] = agg["shift_max"]
    distances = []
    with torch.no_grad():
        for lr_img, hr_img in lpips_pairs:
            sr_img = upscale(lr_img[None])[0]
            distances.append(float(lpips_net(sr_img[None], hr_img[None]).reshape(-1)[0]))
    out["BSD100-20/lpips_alex"] = math.fsum(distances) / len(distances)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", action="append", required=True, metavar="LABEL=DIR", help="a run folder")
    ap.add_argument("--every", type=int, default=500, help="score steps that are multiples of this")
    ap.add_argument("--start", default="srresnet", help="the model at step 0 (default: the shipped srresnet)")
    ap.add_argument("--reference", nargs="*", default=["srgan"],
                    help="models drawn as horizontal lines (shipped names, files, realism-A)")
    ap.add_argument("--lpips-images", type=int, default=20)
    ap.add_argument("--json", required=True)
    ap.add_argument("--figure")
    ap.add_argument("--table", help="also write a markdown table of every scored step and reference")
    args = ap.parse_args()
    sets = {}
    for name in ("Set5", "Set14"):
        d = check_data_dir(DATA / "bench" / name)
        sets[name] = [load_pair(hr, lr, 4) for _, hr, lr in list_pairs(d, 4)]
    bsd = check_data_dir(DATA / "bench" / "BSD100")
    lpips_pairs = [load_pair(hr, lr, 4) for _, hr, lr in list_pairs(bsd, 4)[: args.lpips_images]]
    lpips_net = load_lpips("alex")
    results = json.loads(Path(args.json).read_text()) if Path(args.json).exists() else {}
    for name in [args.start, *args.reference]:
        if name not in results.get("models", {}):
            model = load_realism_model(float(name[8:])) if name.startswith("realism-") else load_model(name)
            results.setdefault("models", {})[name] = score(model, sets, lpips_pairs, lpips_net)
            print(name, results["models"][name], flush=True)
    for spec in args.run:
        label, folder = spec.split("=", 1)
        warmup = run_warmup(Path(folder))  # D-only steps: snapshots are placed at G's adversarial step
        for kind in ("raw", "ema"):
            start = {"0": results["models"][args.start]}
            curve = results.setdefault("runs", {}).setdefault(f"{label} {kind}", start)
            for step, path in list_snapshots(folder, ema=kind == "ema"):
                if step % args.every or step <= warmup:
                    continue
                key = str(step - warmup)
                if key in curve:
                    continue
                curve[key] = score(load_model(path), sets, lpips_pairs, lpips_net)
                print(label, kind, key, {k: round(v, 3) for k, v in curve[key].items()}, flush=True)
                Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
    Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
    if args.figure:
        plot(results, args.figure)
    if args.table:
        Path(args.table).write_text(table(results))
        print(f"wrote {args.table}")


def run_warmup(folder: Path) -> int:
    """The run's discriminator warm-up (TrainConfig.d_warmup_steps) from its last checkpoint's config."""
    last = folder / "last.pt"
    if not last.exists():
        return 0
    from srgan.checkpoint import load_checkpoint

    return int(load_checkpoint(last)["config"].get("d_warmup_steps", 0))


COLUMNS = [("BSD100-20/lpips_alex", "LPIPS-Alex BSD100-20", 3), ("Set5/psnr", "PSNR Set5", 2),
           ("Set14/psnr", "PSNR Set14", 2), ("Set5/grid", "grid Set5", 1), ("Set14/grid", "grid Set14", 1),
           ("Set5/chroma", "chroma Set5", 2), ("Set14/chroma", "chroma Set14", 2),
           ("Set5/shift_max", "max shift Set5", 1)]  # fmt: skip


def table(results: dict) -> str:
    """Markdown: one row per reference model and per scored step of each run."""
    head = "| model | step | " + " | ".join(t for _, t, _ in COLUMNS) + " |"
    lines = [head, "|---|---|" + "---|" * len(COLUMNS)]

    def row(name: str, step: str, figures: dict) -> str:
        return f"| {name} | {step} | " + " | ".join(f"{figures[k]:.{d}f}" for k, _, d in COLUMNS) + " |"

    for name, figures in results["models"].items():
        shown = f"`--realism {name[8:]}`" if name.startswith("realism-") else f"shipped `{name}`"
        lines.append(row(shown, "", figures))
    for label, curve in results["runs"].items():
        for step in sorted(curve, key=int):
            lines.append(row(label, f"{int(step):,}", curve[step]))
    return "\n".join(lines) + "\n"


def plot(results: dict, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("BSD100-20/lpips_alex", "LPIPS-Alex, BSD100 first 20 (lower is better)"),
              ("Set5/psnr", "PSNR Set5 (dB, default protocol)"),
              ("Set14/psnr", "PSNR Set14 (dB, default protocol)"),
              ("Set5/grid", "grid Set5 (x HR, log; target <= 6)"),
              ("Set14/grid", "grid Set14 (x HR, log; target <= 25)"),
              ("Set5/chroma", "chroma noise Set5 (x HR, log; target <= 1)")]  # fmt: skip
    fig, axes = plt.subplots(2, 3, figsize=(14, 7))
    for ax, (key, title) in zip(axes.flat, panels, strict=True):
        for label, curve in results["runs"].items():
            steps = sorted(int(s) for s in curve)
            ax.plot(steps, [curve[str(s)][key] for s in steps], marker="o", ms=3, label=label)
        for name, row in results["models"].items():
            ax.axhline(row[key], color="grey", ls=":", lw=1)
            shown = f"--realism {name[8:]}" if name.startswith("realism-") else f"shipped {name}"
            ax.annotate(shown, (0, row[key]), fontsize=7, color="grey", va="bottom")
        if "grid" in key or "chroma" in key:
            ax.set_yscale("log")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("adversarial step", fontsize=8)
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
