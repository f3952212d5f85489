"""Evaluation protocols: the three ways of turning an SR image and its HR image into (PSNR, SSIM).

- `default`: this project's convention (`srgan.metrics`): Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255
  in floating point on uint8-rounded RGB, a `crop_border`-pixel border removed, Wang et al.'s SSIM
  (11x11 Gaussian, sigma 1.5, valid region). Grayscale images are scored as RGB with equal channels.
- `matlab`: the SelfExSR evaluation code's convention (Huang et al. 2015, the code that produced the
  reference images the SR literature compares with): MATLAB `rgb2ycbcr` on uint8, Y rounded to uint8; a
  grayscale HR file is used as it is (its own values, not 16 + 219 g), the SR image of a grayscale file made
  gray as `srgan upscale` saves it (BT.601 weights, rounded); border removed; Wang et al.'s SSIM.
- `paper`: what Ledig et al. used for Table 2, the daala tools (`srgan.daala`): the border is cropped from
  the RGB images, png2y4m converts them to 8-bit Y'CbCr 4:2:0 (BT.709, dithered), dump_psnr and dump_ssim
  score the Y' planes (dump_ssim's Gaussian grows with the picture height, windows are cut at the edges).

Means over a data set are plain means of the per-image figures in every protocol.
"""

from __future__ import annotations

import numpy as np
import torch

from . import daala
from .io import LUMA_WEIGHTS, uint8_levels
from .metrics import psnr, rgb_to_y, ssim

PROTOCOLS = ("default", "matlab", "paper")


def check_protocol(protocol: str) -> str:
    """`protocol` if it is one of PROTOCOLS, else a ValueError that lists them."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown protocol {protocol!r}: choose one of {', '.join(PROTOCOLS)}")
    return protocol


def _uint8_levels(img: torch.Tensor | np.ndarray) -> torch.Tensor:
    """[0, 1] float (3, H, W) -> float64 uint8 levels 0..255: floor(x * 255 + 0.5), clipped."""
    return uint8_levels(torch.as_tensor(img).detach().cpu())


def matlab_y(img: torch.Tensor | np.ndarray, *, gray: bool = False) -> torch.Tensor:
    """SelfExSR's luma of a float RGB (3, H, W) image in [0, 1] as uint8 levels (float64, (H, W)).

    RGB: MATLAB `rgb2ycbcr` of the uint8 image, Y rounded to the nearest integer. gray=True: the gray values
    themselves, taken as `srgan upscale` saves a grayscale file's result (BT.601 luma of the uint8 RGB,
    rounded), which for three equal channels is that channel.
    """
    levels = _uint8_levels(img)
    if levels.dim() != 3 or levels.shape[0] != 3:
        raise ValueError(f"expected an RGB image (3, H, W), got shape {tuple(levels.shape)}")
    if gray:
        y = sum(w * c for w, c in zip(LUMA_WEIGHTS, levels, strict=True))
    else:
        y = rgb_to_y(levels / 255)[0]  # 16 + (65.481 R + 128.553 G + 24.966 B) / 255, float
    return torch.floor(y + 0.5).clamp(0, 255)


def paper_y(img: torch.Tensor | np.ndarray, *, crop_border: int = 4) -> np.ndarray:
    """The Y' plane (uint8, (H - 2 crop_border, W - 2 crop_border)) that png2y4m makes of a float RGB
    (3, H, W) image in [0, 1] saved as an 8-bit PNG with `crop_border` pixels cropped from each side."""
    levels = _uint8_levels(img)
    if levels.dim() != 3 or levels.shape[0] != 3:
        raise ValueError(f"expected an RGB image (3, H, W), got shape {tuple(levels.shape)}")
    rgb = levels.permute(1, 2, 0).numpy().astype(np.uint8)  # (3, H, W) -> (H, W, 3)
    if crop_border:
        rgb = rgb[crop_border:-crop_border, crop_border:-crop_border]
    return daala.png2y4m_luma(np.ascontiguousarray(rgb))


def score(
    sr_img: torch.Tensor | np.ndarray,
    hr_img: torch.Tensor | np.ndarray,
    *,
    protocol: str = "default",
    gray: bool = False,
    crop_border: int = 4,
) -> tuple[float, float]:
    """(PSNR in dB, SSIM) of one SR image against its HR image under `protocol` (see the module docstring).

    sr_img, hr_img: float RGB (3, H, W) in [0, 1] (a grayscale file read as three equal channels); both are
    rounded to uint8 levels first. gray: the HR file was grayscale (PIL mode L / I;16); only `matlab` uses
    it. crop_border: pixels removed from each side (the scale factor in the SR literature).
    """
    check_protocol(protocol)
    sr_img, hr_img = torch.as_tensor(sr_img), torch.as_tensor(hr_img)
    if sr_img.shape != hr_img.shape:
        raise ValueError(f"sr_img and hr_img shapes differ: {tuple(sr_img.shape)} vs {tuple(hr_img.shape)}")
    if sr_img.dim() != 3 or sr_img.shape[0] != 3:
        raise ValueError(f"expected RGB images (3, H, W), got shape {tuple(sr_img.shape)}")
    if crop_border < 0 or min(sr_img.shape[-2:]) <= 2 * crop_border:
        raise ValueError(f"image {tuple(sr_img.shape[-2:])} is too small for crop_border={crop_border}")
    if protocol == "default":
        return psnr(sr_img, hr_img, crop_border=crop_border), ssim(sr_img, hr_img, crop_border=crop_border)
    if protocol == "matlab":
        # rounded Y as three equal channels in [0, 1]: RGB scoring then scores exactly that one channel
        sr_y, hr_y = (matlab_y(x, gray=gray).div(255).expand(3, -1, -1) for x in (sr_img, hr_img))
        return (
            psnr(sr_y, hr_y, crop_border=crop_border, y_channel=False),
            ssim(sr_y, hr_y, crop_border=crop_border, y_channel=False),
        )
    sr_y, hr_y = paper_y(sr_img, crop_border=crop_border), paper_y(hr_img, crop_border=crop_border)
    return daala.dump_psnr(sr_y, hr_y), daala.dump_ssim(sr_y, hr_y)
