"""The README's inference figure: time and peak memory against image size, ours vs the plain forward, from the
JSON written by bench/upscale.py.

    python bench/plot_upscale.py bench/results/upscale_<device>_<versions>.json -o docs/upscale_speed.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

LABELS = {
    "plain": "plain forward (eval, fp32, whole image)",
    "ours": "ours (auto for srresnet)",
    "ours-fp32": "ours, fp32",
    "ours-bf16": "ours, bf16",
    "ours-fp16": "ours, fp16",
    "ours-int8": "ours, int8 (--precision int8)",
    "onnxruntime": "ours, ONNX Runtime (fp32)",
}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("results", help="JSON from bench/upscale.py")
    parser.add_argument("-o", "--out", default="docs/upscale_speed.png", help="PNG to write")
    args = parser.parse_args()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = json.loads(Path(args.results).read_text())
    runs = [r for r in data["runs"] if "error" not in r]
    if not runs:
        raise SystemExit(f"error: {args.results} has no successful runs")
    configs = list(dict.fromkeys(r["config"] for r in runs))
    fig, (ax_time, ax_mem) = plt.subplots(1, 2, figsize=(10, 4))
    for config in configs:
        rows = sorted((r for r in runs if r["config"] == config), key=lambda r: r["output_megapixels"])
        mp = [r["output_megapixels"] for r in rows]
        style = dict(marker="o", linestyle="--" if config == "plain" else "-")
        label = LABELS.get(config, config)
        if config == "ours":
            label += f" ({rows[0]['precision']})"
        ax_time.plot(mp, [r["seconds"] for r in rows], label=label, **style)
        ax_mem.plot(mp, [r["peak_rss_mb"] / 1024 for r in rows], label=label, **style)
    sizes = {r["output_megapixels"]: f"{r['width']}x{r['height']}" for r in runs}
    for mp, size in sizes.items():  # the LR input size under each point
        ax_mem.annotate(size, (mp, 0), textcoords="offset points", xytext=(2, 4), fontsize=7)
    ax_time.set(xlabel="output megapixels (x4)", ylabel="seconds per image", title="time")
    ax_mem.set(xlabel="output megapixels (x4)", ylabel="peak RSS (GB)", title="peak memory (whole process)")
    for ax in (ax_time, ax_mem):
        ax.grid(alpha=0.3)
        ax.set_ylim(bottom=0)
    ax_time.legend(fontsize=8)
    title = f"x4 upscaling, {data['model']}: {data['device']}, torch {data['torch'].split('+')[0]}"
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
