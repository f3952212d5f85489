"""Full-reference image quality: Y-channel PSNR and SSIM as the SR literature (and the paper) report them.

Conventions, all explicit in the signatures:
- inputs are float RGB in [0, 1], (N, 3, H, W) or (3, H, W); grayscale images arrive as RGB with three
  equal channels (io.read_image converts them), so their "Y" is 16 + 219 * gray;
- both images are first rounded to uint8 levels, floor(x * 255 + 0.5), as a saved 8-bit image would be;
- `y_channel=True` scores MATLAB's rgb2ycbcr luma (float, not rounded to integers, range [16, 235]);
  `y_channel=False` scores all three RGB channels in [0, 255];
- `crop_border` pixels are removed from each side before scoring (4 for x4 in the paper);
- PSNR uses the peak 255 and float64 arithmetic; SSIM is Wang et al.'s reference `ssim_index.m`
  (11x11 Gaussian window, sigma 1.5, K1 = 0.01, K2 = 0.03, L = 255, 'valid' filtering, mean of the map).

Return values: a float64 tensor of shape (N,) (one value per image) for a batch (N, 3, H, W), and a
Python float for a single image (3, H, W).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .io import uint8_levels

# MATLAB rgb2ycbcr (ITU-R BT.601, studio swing) for RGB in [0, 1]: Y = 16 + 65.481 R + 128.553 G + 24.966 B
Y_WEIGHTS = (65.481, 128.553, 24.966)
Y_OFFSET = 16.0
# and its chroma rows: Cb = 128 + CB_WEIGHTS . RGB, Cr = 128 + CR_WEIGHTS . RGB
CB_WEIGHTS = (-37.797, -74.203, 112.0)
CR_WEIGHTS = (112.0, -93.786, -18.214)


def _ycbcr_matrix(dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    return torch.tensor((Y_WEIGHTS, CB_WEIGHTS, CR_WEIGHTS), dtype=dtype, device=device) / 255


YCBCR_OFFSETS = (16.0, 128.0, 128.0)


def rgb_to_ycbcr(img: torch.Tensor) -> torch.Tensor:
    """MATLAB rgb2ycbcr in [0, 1] units: RGB (..., 3, H, W) in [0, 1] -> YCbCr (..., 3, H, W), Y in
    [16/255, 235/255], Cb and Cr in [16/255, 240/255]. Differentiable; keeps the input's float dtype."""
    if img.dim() < 3 or img.shape[-3] != 3:
        raise ValueError(f"expected RGB images (..., 3, H, W), got shape {tuple(img.shape)}")
    m = _ycbcr_matrix(img.dtype, img.device)
    offset = torch.tensor(YCBCR_OFFSETS, dtype=img.dtype, device=img.device).view(3, 1, 1) / 255
    return torch.einsum("ij,...jhw->...ihw", m, img) + offset


def ycbcr_to_rgb(img: torch.Tensor) -> torch.Tensor:
    """The inverse of `rgb_to_ycbcr` (MATLAB ycbcr2rgb on [0, 1] values); not clamped."""
    if img.dim() < 3 or img.shape[-3] != 3:
        raise ValueError(f"expected YCbCr images (..., 3, H, W), got shape {tuple(img.shape)}")
    inv = torch.linalg.inv(_ycbcr_matrix(torch.float64, torch.device("cpu"))).to(img.device, img.dtype)
    offset = torch.tensor(YCBCR_OFFSETS, dtype=img.dtype, device=img.device).view(3, 1, 1) / 255
    return torch.einsum("ij,...jhw->...ihw", inv, img - offset)


def rgb_to_y(img: torch.Tensor) -> torch.Tensor:
    """RGB in [0, 1], (..., 3, H, W) -> Y (..., 1, H, W) in [16, 235], float (not rounded), as MATLAB's
    rgb2ycbcr on a double image times 255. Computed in float64 unless the input is float64 already."""
    if img.dim() < 3 or img.shape[-3] != 3:
        raise ValueError(f"expected RGB images (..., 3, H, W), got shape {tuple(img.shape)}")
    x = img.to(torch.float64)
    w = torch.tensor(Y_WEIGHTS, dtype=torch.float64, device=x.device).view(3, 1, 1)
    return Y_OFFSET + (x * w).sum(dim=-3, keepdim=True)


def quantize_uint8(img: torch.Tensor) -> torch.Tensor:
    """[0, 1] float -> the nearest uint8 level, still in [0, 1] (float64): floor(x * 255 + 0.5) / 255."""
    return uint8_levels(img) / 255


def _prepare(
    sr_img: torch.Tensor, hr_img: torch.Tensor, crop_border: int, y_channel: bool
) -> tuple[torch.Tensor, torch.Tensor, bool]:
    """Check shapes, round to uint8 levels, convert to Y (or RGB x 255), crop. Returns (N, C, h, w) float64
    tensors in [0, 255] and whether the input was a single image."""
    if sr_img.shape != hr_img.shape:
        raise ValueError(f"sr_img and hr_img shapes differ: {tuple(sr_img.shape)} vs {tuple(hr_img.shape)}")
    if sr_img.dim() not in (3, 4) or sr_img.shape[-3] != 3:
        raise ValueError(f"expected RGB (N, 3, H, W) or (3, H, W), got shape {tuple(sr_img.shape)}")
    if crop_border < 0:
        raise ValueError(f"crop_border must be >= 0, got {crop_border}")
    single = sr_img.dim() == 3
    sr = quantize_uint8(sr_img.detach().cpu())
    hr = quantize_uint8(hr_img.detach().cpu())
    if single:
        sr, hr = sr.unsqueeze(0), hr.unsqueeze(0)
    if y_channel:
        sr, hr = rgb_to_y(sr), rgb_to_y(hr)
    else:
        sr, hr = sr * 255, hr * 255
    if crop_border:
        h, w = sr.shape[-2:]
        if h <= 2 * crop_border or w <= 2 * crop_border:
            raise ValueError(f"image {h}x{w} is too small for crop_border={crop_border}")
        sr = sr[..., crop_border:-crop_border, crop_border:-crop_border]
        hr = hr[..., crop_border:-crop_border, crop_border:-crop_border]
    return sr, hr, single


def _result(values: torch.Tensor, single: bool) -> torch.Tensor | float:
    return float(values[0]) if single else values


def psnr(
    sr_img: torch.Tensor, hr_img: torch.Tensor, *, crop_border: int = 4, y_channel: bool = True
) -> torch.Tensor | float:
    """Peak signal-to-noise ratio in dB (peak 255), per image; inf where the images are equal.

    sr_img, hr_img: float RGB in [0, 1], (N, 3, H, W) -> float64 tensor (N,), or (3, H, W) -> float.
    """
    sr, hr, single = _prepare(sr_img, hr_img, crop_border, y_channel)
    mse = (sr - hr).pow(2).flatten(1).mean(1)
    values = 10 * torch.log10(255.0**2 / mse)  # mse == 0 gives inf
    return _result(values, single)


def gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """1-D normalised Gaussian taps (float64); the outer product with itself is MATLAB's
    fspecial('gaussian', size, sigma) (its eps-threshold never triggers for these sizes)."""
    t = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(t**2) / (2 * sigma**2))
    return g / g.sum()


def _filter_valid(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """'valid' 2-D filtering of (N, C, H, W) with the separable window outer(g, g)."""
    c = x.shape[1]
    k = g.to(x.device)
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def ssim(
    sr_img: torch.Tensor, hr_img: torch.Tensor, *, crop_border: int = 4, y_channel: bool = True
) -> torch.Tensor | float:
    """Structural similarity (Wang et al. 2004, reference `ssim_index.m`), the mean of the SSIM map.

    sr_img, hr_img: float RGB in [0, 1], (N, 3, H, W) -> float64 tensor (N,), or (3, H, W) -> float.
    With `y_channel=False` the map is averaged over the three RGB channels too.
    """
    sr, hr, single = _prepare(sr_img, hr_img, crop_border, y_channel)
    size, sigma, k1, k2, peak = 11, 1.5, 0.01, 0.03, 255.0
    if min(sr.shape[-2:]) < size:
        raise ValueError(
            f"image {tuple(sr.shape[-2:])} (after the border crop) is smaller than the {size}x{size} window"
        )
    c1, c2 = (k1 * peak) ** 2, (k2 * peak) ** 2
    g = gaussian_window(size, sigma)
    mu1, mu2 = _filter_valid(sr, g), _filter_valid(hr, g)
    mu1_sq, mu2_sq, mu1_mu2 = mu1 * mu1, mu2 * mu2, mu1 * mu2
    sigma1_sq = _filter_valid(sr * sr, g) - mu1_sq
    sigma2_sq = _filter_valid(hr * hr, g) - mu2_sq
    sigma12 = _filter_valid(sr * hr, g) - mu1_mu2
    ssim_map = ((2 * mu1_mu2 + c1) * (2 * sigma12 + c2)) / (
        (mu1_sq + mu2_sq + c1) * (sigma1_sq + sigma2_sq + c2)
    )
    return _result(ssim_map.flatten(1).mean(1), single)
