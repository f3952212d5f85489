"""Artefact measures for SR images (not in the paper): the sub-pixel grid, chroma noise and colour shift.

A GAN-trained x4 generator can print a regular pattern with the period of its two sub-pixel x2 upsamplers,
speckle its colour channels on fine texture, and shift the mean colour. PSNR, SSIM and LPIPS mix these with
everything else; these three measure each one alone, always against the HR image, so 1 (or 0 for the shift)
means "like HR". Inputs are float RGB (3, H, W) in [0, 1]; both images are rounded to uint8 levels first and
`crop_border` pixels are removed from each side, as for PSNR.

- grid energy: the Y channel (MATLAB rgb2ycbcr, float) with its mean removed; the energy |F|^2 of its 2-D DFT
  at the frequencies of the x4 sub-pixel grid, the bins at multiples of 1/4 of the size in each direction
  (k H / 4, l W / 4 for k, l in 0..3), DC excluded. `grid_ratio` = SR's over HR's; a set's figure is the
  geometric mean of the images' ratios (`aggregate`).
- chroma noise: the high-pass energy of Cb and Cr (each value minus the mean of its 3x3 neighbourhood,
  squared and summed over the valid region); a set's figure is the sum over its images of SR's energy over
  the sum of HR's.
- colour shift: mean(SR) - mean(HR) per RGB channel, in levels of 255; a set's figure is the mean over its
  images (and `shift_max` the largest absolute per-image, per-channel shift).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .metrics import CB_WEIGHTS, CR_WEIGHTS, quantize_uint8, rgb_to_y

GRID_PERIOD = 4  # two x2 sub-pixel upsamplers: a pattern that repeats every 4 output pixels


def _prepared(img: torch.Tensor, crop_border: int) -> torch.Tensor:
    if img.dim() != 3 or img.shape[0] != 3:
        raise ValueError(f"expected one RGB image (3, H, W), got shape {tuple(img.shape)}")
    x = quantize_uint8(img.detach().cpu())  # float64 in [0, 1], uint8 levels
    if crop_border:
        x = x[:, crop_border:-crop_border, crop_border:-crop_border]
    if x.shape[-1] < GRID_PERIOD or x.shape[-2] < GRID_PERIOD:
        raise ValueError(f"image too small after the {crop_border}-pixel border crop: {tuple(x.shape)}")
    return x


def grid_energy(img: torch.Tensor, *, crop_border: int = 4, period: int = GRID_PERIOD) -> float:
    """Energy of the mean-free Y channel at the DFT bins of a `period`-pixel grid, DC excluded."""
    y = rgb_to_y(_prepared(img, crop_border))[0]  # (3, H, W) -> (H, W), in [16, 235]
    y = y - y.mean()
    power = torch.fft.fft2(y).abs().square()
    h, w = y.shape
    rows = sorted({round(k * h / period) % h for k in range(period)})
    cols = sorted({round(k * w / period) % w for k in range(period)})
    total = sum(float(power[r, c]) for r in rows for c in cols if (r, c) != (0, 0))
    return total / (h * w)


def grid_ratio(
    sr_img: torch.Tensor, hr_img: torch.Tensor, *, crop_border: int = 4, period: int = GRID_PERIOD
) -> float:
    """grid_energy(SR) / grid_energy(HR): 1 is "like HR", a sub-pixel pattern raises it."""
    hr_energy = grid_energy(hr_img, crop_border=crop_border, period=period)
    return grid_energy(sr_img, crop_border=crop_border, period=period) / max(hr_energy, 1e-12)


def chroma_energy(img: torch.Tensor, *, crop_border: int = 4) -> float:
    """Sum of squared 3x3 high-pass values of Cb and Cr (levels of 255), over the valid region."""
    x = _prepared(img, crop_border)
    # MATLAB rgb2ycbcr's chroma rows (their offsets of 128 cancel in a high-pass)
    w = torch.tensor([CB_WEIGHTS, CR_WEIGHTS], dtype=torch.float64).view(2, 3, 1, 1)
    chroma = F.conv2d(x[None], w)  # (1, 3, H, W) -> (1, 2, H, W): Cb, Cr without their offset
    local_mean = F.avg_pool2d(chroma, 3, stride=1)  # (1, 2, H-2, W-2)
    high = chroma[:, :, 1:-1, 1:-1] - local_mean
    return float(high.square().sum())


def colour_shift(sr_img: torch.Tensor, hr_img: torch.Tensor, *, crop_border: int = 4) -> tuple[float, ...]:
    """mean(SR) - mean(HR) per RGB channel, in levels of 255."""
    sr, hr = _prepared(sr_img, crop_border), _prepared(hr_img, crop_border)
    return tuple(float(v) for v in (sr.mean((1, 2)) - hr.mean((1, 2))) * 255)


def measure(
    sr_img: torch.Tensor, hr_img: torch.Tensor, *, crop_border: int = 4, period: int = GRID_PERIOD
) -> dict[str, float]:
    """All artefact figures of one image, as benchmark columns (see `aggregate` for a set's figures);
    `period` is the sub-pixel grid's, the upscaling factor (4 for x4)."""
    shift = colour_shift(sr_img, hr_img, crop_border=crop_border)
    chroma_sr = chroma_energy(sr_img, crop_border=crop_border)
    chroma_hr = chroma_energy(hr_img, crop_border=crop_border)
    return {
        "grid": grid_ratio(sr_img, hr_img, crop_border=crop_border, period=period),
        "chroma": chroma_sr / max(chroma_hr, 1e-12),
        "chroma_sr": chroma_sr,
        "chroma_hr": chroma_hr,
        "shift_r": shift[0],
        "shift_g": shift[1],
        "shift_b": shift[2],
    }


ARTEFACT_KEYS = ("grid", "chroma", "chroma_sr", "chroma_hr", "shift_r", "shift_g", "shift_b")


def aggregate(rows: list[dict[str, float]]) -> dict[str, float]:
    """A set's figures from its images' `measure` rows: grid as the geometric mean of the ratios, chroma as
    the summed SR energy over the summed HR energy, the shifts as means, and shift_max."""
    n = len(rows)
    out = {k: math.fsum(r[k] for r in rows) / n for k in ARTEFACT_KEYS}
    out["grid"] = math.exp(math.fsum(math.log(max(r["grid"], 1e-300)) for r in rows) / n)
    hr_chroma = math.fsum(r["chroma_hr"] for r in rows)
    out["chroma"] = math.fsum(r["chroma_sr"] for r in rows) / max(hr_chroma, 1e-12)
    out["shift_max"] = max(abs(r[k]) for r in rows for k in ("shift_r", "shift_g", "shift_b"))
    return out
