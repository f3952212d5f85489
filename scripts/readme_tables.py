"""The README's results tables, laid out from the benchmark's docs/results/benchmark/results.json (written
by scripts/readme_results.sh): Table 2's methods in two protocols, the shipped models' gaps to the paper's
Table 2, and Table 1's five loss variants.

    .venv/bin/python scripts/readme_tables.py [results.json]
"""

from __future__ import annotations

import json
import sys

from srgan.paper import PAPER_TABLE1, PAPER_TABLE2

MODELS = ["nearest", "bicubic", "srcnn", "espcn", "srresnet", "srgan", "realism-0.5"]
SETS = ["Set5", "Set14", "BSD100"]
VARIANTS = {"srresnet": "SRResNet-MSE", "srresnet-vgg22": "SRResNet-VGG22", "srgan-mse": "SRGAN-MSE",
            "srgan-vgg22": "SRGAN-VGG22", "srgan": "SRGAN-VGG54"}  # fmt: skip


def row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def with_paper(value: float, paper: dict[str, tuple[float, ...]], model: str, index: int, digits: int) -> str:
    """Our figure, then the paper's in brackets when `paper` (one set's table) has the model."""
    text = f"{value:.{digits}f}"
    if model in paper:
        text += f" [{paper[model][index]:.{digits}f}]"
    return text


def main(path: str = "docs/results/benchmark/results.json") -> None:
    results = json.load(open(path))

    def mean(model: str, set_name: str) -> dict[str, float]:
        return results[model][set_name]["mean"]

    print(row(["x4, `paper` protocol", "nearest", "bicubic", "SRCNN (ours, `srcnn`)",
               "ESPCN (ours, `espcn`)", "**SRResNet-MSE** (ours, `srresnet`)",
               "**SRGAN-VGG54** (ours, `srgan`)", "realism 0.5 (ours)"]))
    print("|" + "---|" * (len(MODELS) + 1))
    for s in SETS:
        paper = PAPER_TABLE2[s]
        print(row([f"{s} PSNR"] + [with_paper(mean(m, s)["psnr_paper"], paper, m, 0, 2) for m in MODELS]))
        print(row([f"{s} SSIM"] + [with_paper(mean(m, s)["ssim_paper"], paper, m, 1, 4) for m in MODELS]))
        lpips = [f"{mean(m, s)['lpips_alex']:.3f} / {mean(m, s)['lpips_vgg']:.3f}" for m in MODELS]
        print(row([f"{s} LPIPS-Alex / VGG", *lpips]))
    print()
    print(row(["x4, `default` protocol", "nearest", "bicubic", "SRCNN (ours)", "ESPCN (ours)",
               "SRResNet-MSE (ours)", "SRGAN-VGG54 (ours)", "realism 0.5 (ours)"]))
    print("|" + "---|" * (len(MODELS) + 1))
    for s in SETS:
        cells = [f"{mean(m, s)['psnr_default']:.2f} / {mean(m, s)['ssim_default']:.4f}" for m in MODELS]
        print(row([s, *cells]))
    print()
    for m in ("srcnn", "espcn", "srresnet", "srgan"):
        gaps = " / ".join(f"{mean(m, s)['psnr_paper'] - PAPER_TABLE2[s][m][0]:+.2f}" for s in SETS)
        print(f"{m}: PSNR minus the paper's, `paper` protocol, Set5 / Set14 / BSD100: {gaps} dB")
    print()
    # Table 1: the five loss variants, the paper's figures in brackets (it has Set5 and Set14 only; its MOS
    # row stands beside our LPIPS, which no rater produced)
    print(row(["x4, `paper` protocol", *(f"{title} (`{m}`)" for m, title in VARIANTS.items())]))
    print("|" + "---|" * (len(VARIANTS) + 1))
    for s in SETS:
        paper = PAPER_TABLE1.get(s, {})
        print(row([f"{s} PSNR", *(with_paper(mean(m, s)["psnr_paper"], paper, m, 0, 2) for m in VARIANTS)]))
        print(row([f"{s} SSIM", *(with_paper(mean(m, s)["ssim_paper"], paper, m, 1, 4) for m in VARIANTS)]))
        lpips = [f"{mean(m, s)['lpips_alex']:.3f} / {mean(m, s)['lpips_vgg']:.3f}" for m in VARIANTS]
        print(row([f"{s} LPIPS-Alex / VGG", *lpips]))
        if paper:
            print(row([f"{s} paper's MOS", *(f"[{paper[m][2]:.2f}]" for m in VARIANTS)]))


if __name__ == "__main__":
    main(*sys.argv[1:])
