"""The README's two results tables, laid out from the benchmark's docs/results/benchmark/results.json
(written by scripts/readme_results.sh), and the shipped models' gaps to the paper's Table 2.

    .venv/bin/python scripts/readme_tables.py [results.json]
"""

from __future__ import annotations

import json
import sys

from srgan.evaluate import PAPER_TABLE2

MODELS = ["nearest", "bicubic", "srresnet", "srgan", "realism-0.5"]
SETS = ["Set5", "Set14", "BSD100"]


def row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def with_paper(value: float, model: str, set_name: str, index: int, digits: int) -> str:
    text = f"{value:.{digits}f}"
    if model in PAPER_TABLE2[set_name]:
        text += f" [{PAPER_TABLE2[set_name][model][index]:.{digits}f}]"
    return text


def main(path: str = "docs/results/benchmark/results.json") -> None:
    results = json.load(open(path))

    def mean(model: str, set_name: str) -> dict[str, float]:
        return results[model][set_name]["mean"]

    print(row(["x4, `paper` protocol", "nearest", "bicubic", "**SRResNet-MSE** (ours, `srresnet`)",
               "**SRGAN-VGG54** (ours, `srgan`)", "realism 0.5 (ours)"]))  # fmt: skip
    print("|" + "---|" * 6)
    for s in SETS:
        print(row([f"{s} PSNR"] + [with_paper(mean(m, s)["psnr_paper"], m, s, 0, 2) for m in MODELS]))
        print(row([f"{s} SSIM"] + [with_paper(mean(m, s)["ssim_paper"], m, s, 1, 4) for m in MODELS]))
        lpips = [f"{mean(m, s)['lpips_alex']:.3f} / {mean(m, s)['lpips_vgg']:.3f}" for m in MODELS]
        print(row([f"{s} LPIPS-Alex / VGG", *lpips]))
    print()
    print(row(["x4, `default` protocol", "nearest", "bicubic", "SRResNet-MSE (ours)", "SRGAN-VGG54 (ours)",
               "realism 0.5 (ours)"]))  # fmt: skip
    print("|" + "---|" * 6)
    for s in SETS:
        cells = [f"{mean(m, s)['psnr_default']:.2f} / {mean(m, s)['ssim_default']:.4f}" for m in MODELS]
        print(row([s, *cells]))
    print()
    for m in ("srresnet", "srgan"):
        gaps = " / ".join(f"{mean(m, s)['psnr_paper'] - PAPER_TABLE2[s][m][0]:+.2f}" for s in SETS)
        print(f"{m}: PSNR minus the paper's, `paper` protocol, Set5 / Set14 / BSD100: {gaps} dB")


if __name__ == "__main__":
    main(*sys.argv[1:])
