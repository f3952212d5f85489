"""Benchmark evaluation: Y-PSNR / SSIM of an upscaler on folders of HR (and LR) images, and Table 2.

A data set folder holds `HR/` and optionally `LR_x4/` (LR images matched to HR by file name; when the
folder is absent, LR is made from HR with `srgan.imresize.bicubic_degrade`, MATLAB's bicubic x1/4).
Figures follow the paper: Y channel, a `scale`-pixel border removed, 8-bit rounding of both images,
under one of the evaluation protocols of `srgan.protocols` (`default`, `matlab`, `paper`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm import tqdm

from .baselines import BASELINES, bicubic_upscale, nearest_upscale
from .data import check_data_dir, check_set_dirs, is_gray_file, list_pairs, load_pair
from .paper import PAPER_METHODS, PAPER_TABLE2
from .protocols import check_protocol, score

Upscaler = Callable[[torch.Tensor], torch.Tensor]  # LR (1, 3, h, w) in [0, 1] -> SR (1, 3, H, W) in [0, 1]

def make_upscaler(
    model: str | nn.Module | Upscaler,
    *,
    scale: int = 4,
    device: str | torch.device = "cpu",
    precision: str = "fp32",
) -> Upscaler:
    """Turn what `evaluate` accepts into an LR [0, 1] -> SR [0, 1] function on (1, 3, h, w) tensors.

    model: "nearest" or "bicubic"; any other string is a shipped name or a checkpoint path for
    `srgan.zoo.load_model`; an `nn.Module` is treated as a Generator (output in [-1, 1]) and run through
    `srgan.upscale.upscale_tensor`, the one inference path, on `device` at `precision` (int8: its
    `srgan.int8.quantize` form, made once): the whole image at
    once with the network's own zero padding (edge="zeros"), as the paper scores it, in eval mode (its
    train/eval mode restored afterwards); any other callable is used as is and must return SR in [0, 1].
    """
    from .upscale import upscale_tensor

    if isinstance(model, str):
        if model == "nearest":
            return lambda lr_img: nearest_upscale(lr_img, scale)
        if model == "bicubic":
            return lambda lr_img: bicubic_upscale(lr_img, scale)
        from .zoo import load_model

        model = load_model(model, device=device)
    if isinstance(model, nn.Module):
        if precision == "int8":  # its int8 form, once (`srgan.int8.quantize`: a stored calibration needed)
            from .int8 import Int8Generator, check_int8_support, quantize

            check_int8_support(device)
            model = model if isinstance(model, Int8Generator) else quantize(model)
        generator = model.to(device)  # once, not a copy per image

        def run(lr_img: torch.Tensor) -> torch.Tensor:
            was_training = generator.training
            generator.eval()
            try:
                sr_img = upscale_tensor(generator, lr_img, precision=precision, device=device, edge="zeros")
            finally:
                generator.train(was_training)
            return sr_img.cpu()

        return run
    if callable(model):
        return model
    raise TypeError(f"model must be 'nearest', 'bicubic', a model name or path, an nn.Module or a callable, "
                    f"got {type(model).__name__}")  # fmt: skip


def evaluate(
    model: str | nn.Module | Upscaler,
    data_dir: str | Path,
    *,
    scale: int = 4,
    device: str | torch.device = "cpu",
    progress: bool = True,
    protocol: str = "default",
    precision: str = "fp32",
) -> dict[str, Any]:
    """Score an upscaler on one data set folder (HR/ and optionally LR_x{scale}/), one whole image at a time.

    model: see `make_upscaler` ("nearest", "bicubic", a model name or path, a Generator, or a callable
    LR [0, 1] -> SR [0, 1] on (1, 3, h, w)). HR images whose size is not a multiple of `scale` are cropped
    to one (top-left kept) when LR is made from them. The border removed is `scale` pixels. protocol:
    `srgan.protocols.PROTOCOLS` ("default", "matlab" or "paper"); whether each HR file is grayscale is read
    from its header and passed on (the `matlab` protocol scores grayscale images as they are).

    Returns {"psnr": mean dB, "ssim": mean, "images": {file stem: {"psnr": dB, "ssim": value}}}.
    """
    check_protocol(protocol)
    data_dir = check_data_dir(data_dir)
    pairs = list_pairs(data_dir, scale)
    upscale = make_upscaler(model, scale=scale, device=device, precision=precision)
    images: dict[str, dict[str, float]] = {}
    for name, hr_path, lr_path in tqdm(pairs, desc=data_dir.name, unit="img", disable=not progress):
        lr_img, hr_img = load_pair(hr_path, lr_path, scale)
        sr_img = upscale(lr_img.unsqueeze(0))
        if sr_img.shape[-3:] != hr_img.shape:
            raise ValueError(
                f"{name}: SR is {tuple(sr_img.shape[-3:])} but HR is {tuple(hr_img.shape)} "
                f"(LR {tuple(lr_img.shape)}, scale {scale})"
            )
        sr_img = sr_img.reshape(hr_img.shape).cpu()
        gray = is_gray_file(hr_path)
        psnr_db, ssim_value = score(sr_img, hr_img, protocol=protocol, gray=gray, crop_border=scale)
        images[name] = {"psnr": psnr_db, "ssim": ssim_value}
    return {
        "psnr": math.fsum(v["psnr"] for v in images.values()) / len(images),
        "ssim": math.fsum(v["ssim"] for v in images.values()) / len(images),
        "images": images,
    }


def evaluate_sets(
    model: str | nn.Module | Upscaler,
    dirs: Iterable[str | Path],
    *,
    scale: int = 4,
    device: str | torch.device = "cpu",
    progress: bool = True,
    protocol: str = "default",
    precision: str = "fp32",
) -> dict[str, dict[str, Any]]:
    """`evaluate` on several data set folders -> {folder name: result}. A named model is loaded once."""
    check_protocol(protocol)
    dirs = check_set_dirs(dirs)
    named = isinstance(model, str) and model not in BASELINES
    if named or (isinstance(model, nn.Module) and precision == "int8"):  # loaded / quantized once
        model = make_upscaler(model, scale=scale, device=device, precision=precision)
    return {
        d.name: evaluate(model, d, scale=scale, device=device, progress=progress, protocol=protocol,
                         precision=precision)  # fmt: skip
        for d in dirs
    }


def format_table(
    results: dict[str, dict[str, Any]], *, label: str = "ours", scale: int = 4, protocol: str = "default"
) -> str:
    """A Markdown table like the paper's Table 2: one row per data set, our PSNR / SSIM next to the paper's
    nearest, bicubic, SRResNet and SRGAN figures ("-" where the paper has none: other sets, scale != 4).
    `protocol` is the one `results` were scored with (named in the title)."""
    header = ["set", "images", f"{label} PSNR", f"{label} SSIM"]
    header += [f"paper {title}" for title in PAPER_METHODS.values()]
    rows = []
    for name, res in results.items():
        paper = PAPER_TABLE2.get(name, {}) if scale == 4 else {}
        row = [name, str(len(res["images"])), f"{res['psnr']:.2f}", f"{res['ssim']:.4f}"]
        row += [f"{paper[m][0]:.2f} / {paper[m][1]:.4f}" if m in paper else "-" for m in PAPER_METHODS]
        rows.append(row)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        padded = [cells[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)
        ]
        return "| " + " | ".join(padded) + " |"

    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    title = (
        f"x{scale}, Y channel, {scale}-pixel border removed, PSNR in dB / SSIM, protocol {protocol}. "
        "Paper: Ledig et al. 2017, Table 2 (daala tools, x4)."
    )
    if protocol == "paper":
        note = "Protocol paper: the daala tools (png2y4m, dump_psnr, dump_ssim) as the paper used them."
    else:
        note = (
            "Paper SSIM is daala's dump_ssim (Gaussian sigma = 1.5 * height / 256, all positions weighted): "
            "it reads higher than the Wang et al. SSIM here; --protocol paper scores the paper's way."
        )
    return "\n".join([title, line(header), sep, *(line(r) for r in rows), note])
