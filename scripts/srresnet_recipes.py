"""SRResNet-MSE recipes at equal steps (issue 18, item 4): paper-protocol PSNR of each run's snapshots.

Reads the generator snapshots that `srgan train --snapshot-every N --ema-decay D` writes
(RUN/snapshots/stepNNNNNNN.safetensors and stepNNNNNNN_ema.safetensors), scores every --every-th step (raw
weights and EMA) with `srgan.evaluate` (fp32, whole image, `paper` protocol, the one of the srresnet target)
on Set5 and Set14, and writes a JSON (scores are kept: a second call only scores what is new), a markdown
table and a two-panel figure. Step 0 is the model the runs start from (default: the shipped srresnet).

    .venv/bin/python scripts/srresnet_recipes.py --run "1e-4 (paper)=runs/sr-a-1e-4" --run ... \
        --json docs/results/srresnet_recipes.json --table TABLE.md --figure docs/figures/srresnet_recipes.png
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from srgan.evaluate import evaluate_sets
from srgan.train import list_snapshots
from srgan.zoo import load_model

DATA = Path(os.environ.get("SRGAN_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
SETS = ("Set5", "Set14")


def score(model) -> dict[str, float]:
    dirs = [DATA / "bench" / name for name in SETS]
    results = evaluate_sets(model, dirs, protocol="paper", progress=False)
    return {name: r["psnr"] for name, r in results.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", action="append", required=True, metavar="LABEL=DIR", help="a run folder")
    ap.add_argument("--every", type=int, default=400, help="score steps that are multiples of this")
    ap.add_argument("--start", default="srresnet", help="the model at step 0 (default: the shipped srresnet)")
    ap.add_argument("--json", required=True)
    ap.add_argument("--table", help="also write a markdown table")
    ap.add_argument("--figure")
    args = ap.parse_args()
    results = json.loads(Path(args.json).read_text()) if Path(args.json).exists() else {}
    if args.start not in results.setdefault("models", {}):
        results["models"][args.start] = score(load_model(args.start))
    for spec in args.run:
        label, folder = spec.split("=", 1)
        for kind in ("raw", "ema"):
            start = {"0": results["models"][args.start]}
            curve = results.setdefault("runs", {}).setdefault(f"{label} {kind}", start)
            for step, path in list_snapshots(folder, ema=kind == "ema"):
                if step % args.every or str(step) in curve:
                    continue
                curve[str(step)] = score(load_model(path))
                print(label, kind, step, {k: round(v, 3) for k, v in curve[str(step)].items()}, flush=True)
                Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
    Path(args.json).write_text(json.dumps(results, indent=1) + "\n")
    if args.table:
        Path(args.table).write_text(table(results, args.start))
        print(f"wrote {args.table}")
    if args.figure:
        plot(results, args.start, args.figure)


def table(results: dict, start: str) -> str:
    """Markdown: one row per run and weights (raw / EMA), one column pair per scored step."""
    steps = sorted({int(s) for curve in results["runs"].values() for s in curve} - {0})
    head = "| recipe | weights | " + " | ".join(f"step {s:,}" for s in steps) + " |"
    lines = [head, "|---|---|" + "---|" * len(steps)]
    for label, curve in results["runs"].items():
        name, kind = label.rsplit(" ", 1)
        cells = [" / ".join(f"{curve[str(s)][k]:.2f}" for k in SETS) if str(s) in curve else ""
                 for s in steps]  # fmt: skip
        lines.append(f"| {name} | {kind} | " + " | ".join(cells) + " |")
    start_row = " / ".join(f"{results['models'][start][k]:.2f}" for k in SETS)
    return "\n".join(lines) + f"\n\nStep 0 (`{start}`): {start_row} dB (Set5 / Set14, `paper` protocol).\n"


def plot(results: dict, start: str, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(SETS), figsize=(12, 4.2))
    colours = {}
    for ax, name in zip(axes, SETS, strict=True):
        for label, curve in results["runs"].items():
            recipe, kind = label.rsplit(" ", 1)
            steps = sorted(int(s) for s in curve)
            colour = colours.setdefault(recipe, f"C{len(colours)}")
            shown = f"{recipe}, {'EMA' if kind == 'ema' else 'raw'}"
            ax.plot(steps, [curve[str(s)][name] for s in steps], marker="o", ms=3, color=colour,
                    ls="-" if kind == "ema" else "--", label=shown)  # fmt: skip
        level = results["models"][start][name]
        ax.axhline(level, color="grey", ls=":", lw=1)
        ax.annotate(f"shipped {start}", (0, level), fontsize=7, color="grey", va="bottom")
        if name == "Set5":
            ax.axhline(31.70, color="red", ls=":", lw=1)
            ax.annotate("target 31.70", (0, 31.70), fontsize=7, color="red", va="bottom")
        ax.set_title(f"Y-PSNR {name} (dB, paper protocol)", fontsize=9)
        ax.set_xlabel("step (from the shipped srresnet)", fontsize=8)
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
