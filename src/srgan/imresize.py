"""MATLAB-compatible bicubic `imresize`, in pure PyTorch (batches, any device).

Reproduces MATLAB's `imresize(img, scale, 'bicubic')`: the Keys cubic kernel with a = -0.5, widened by
1/scale when shrinking (antialiasing), edge pixels replicated, the first (row) dimension resized before the
second when both scales are equal, and, for uint8 images (`quantize=True`), the result rounded to uint8 after
each of the two passes, as MATLAB's imresizemex does. With it, HR -> LR x4 reproduces the standard benchmark
LR_x4 images bit for bit.

Also the paper's alternative degradation (section 2): Gaussian blur, then subsampling.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch
import torch.nn.functional as F

from .io import uint8_levels


def cubic(x: torch.Tensor) -> torch.Tensor:
    """Keys (1981) cubic convolution kernel with a = -0.5 (MATLAB's `cubic`)."""
    ax = x.abs()
    ax2, ax3 = ax * ax, ax * ax * ax
    return (1.5 * ax3 - 2.5 * ax2 + 1) * (ax <= 1) + (-0.5 * ax3 + 2.5 * ax2 - 4 * ax + 2) * (
        (ax > 1) & (ax <= 2)
    )


@lru_cache(maxsize=64)
def _weight_matrix(in_len: int, out_len: int, scale: float, antialias: bool) -> torch.Tensor:
    """(out_len, in_len) float64 matrix of MATLAB's `contributions` for one dimension (on CPU)."""
    kernel_width = 4.0
    if scale < 1 and antialias:
        kernel_width = kernel_width / scale
    x = torch.arange(1, out_len + 1, dtype=torch.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)  # output pixel centre in input coordinates (1-based)
    left = torch.floor(u - kernel_width / 2)
    p = int(math.ceil(kernel_width)) + 2
    indices = left.unsqueeze(1) + torch.arange(p, dtype=torch.float64).unsqueeze(0)  # (out, p)
    dist = u.unsqueeze(1) - indices
    if scale < 1 and antialias:
        weights = scale * cubic(dist * scale)
    else:
        weights = cubic(dist)
    weights = weights / weights.sum(1, keepdim=True)
    idx = indices.clamp(1, in_len).long() - 1  # replicate edge pixels
    mat = torch.zeros(out_len, in_len, dtype=torch.float64)
    mat.scatter_add_(1, idx, weights)
    return mat


def _resize_dim(x: torch.Tensor, dim: int, out_len: int, scale: float, antialias: bool, quantize: bool):
    mat = _weight_matrix(x.shape[dim], out_len, scale, antialias).to(x.device)
    x = x.movedim(dim, -1)
    y = torch.matmul(x, mat.T)
    if quantize:
        y = torch.floor(y + 0.5).clamp_(0, 255)  # MATLAB rounds half away from zero; values are >= 0 here
    return y.movedim(-1, dim)


def imresize(
    img: torch.Tensor,
    scale: float | None = None,
    size: tuple[int, int] | None = None,
    *,
    antialias: bool = True,
    quantize: bool = False,
) -> torch.Tensor:
    """Resize (..., H, W) images like MATLAB's `imresize(img, scale, 'bicubic')`.

    img: float tensor (any leading dims). With `quantize=True` it must hold uint8 values (0-255, a uint8
    or float tensor) and each pass is rounded to uint8, exactly as MATLAB does for uint8 images; the result
    is then a uint8 tensor. Otherwise the computation is in float64 and the result has the input's dtype.
    Give `scale` (e.g. 0.25 or 4) or `size` = (out_h, out_w).
    """
    if (scale is None) == (size is None):
        raise ValueError("give exactly one of scale and size")
    if img.dim() < 2:
        raise ValueError(f"img must have at least 2 dims (..., H, W), got shape {tuple(img.shape)}")
    in_h, in_w = img.shape[-2:]
    if size is None:
        scale_h = scale_w = float(scale)
        out_h, out_w = math.ceil(in_h * scale_h), math.ceil(in_w * scale_w)
    else:
        out_h, out_w = size
        scale_h, scale_w = out_h / in_h, out_w / in_w
    if out_h < 1 or out_w < 1:
        raise ValueError(f"output size must be positive, got {(out_h, out_w)} from input {(in_h, in_w)}")
    dtype = img.dtype
    x = img.to(torch.float64)
    # MATLAB resizes the dimension with the smallest scale first; rows (H) first on ties.
    order = [(-2, out_h, scale_h), (-1, out_w, scale_w)]
    if scale_w < scale_h:
        order.reverse()
    for dim, out_len, s in order:
        x = _resize_dim(x, x.dim() + dim, out_len, s, antialias, quantize)
    if quantize:
        return x.to(torch.uint8)
    return x.to(dtype)


def bicubic_degrade(hr_img: torch.Tensor, scale: int = 4) -> torch.Tensor:
    """HR in [0, 1] (float, (..., H, W)) -> LR in [0, 1], made as MATLAB makes it from a uint8 image:
    HR rounded to uint8, bicubic antialiased 1/scale with uint8 rounding after each pass."""
    if hr_img.shape[-1] % scale or hr_img.shape[-2] % scale:
        raise ValueError(f"HR size {tuple(hr_img.shape[-2:])} is not a multiple of the scale {scale}")
    hr_u8 = uint8_levels(hr_img)
    lr = imresize(hr_u8, 1 / scale, quantize=True)
    return (lr.to(torch.float32) / 255).to(hr_img.dtype if hr_img.is_floating_point() else torch.float32)


def gaussian_degrade(hr_img: torch.Tensor, scale: int = 4, sigma: float = 1.6) -> torch.Tensor:
    """The paper's alternative degradation: Gaussian blur (reflect padding), then subsample by `scale`.

    Samples are taken at the centre of each scale x scale block. Result rounded to uint8 levels, in [0, 1].
    """
    if hr_img.shape[-1] % scale or hr_img.shape[-2] % scale:
        raise ValueError(f"HR size {tuple(hr_img.shape[-2:])} is not a multiple of the scale {scale}")
    radius = max(1, math.ceil(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=torch.float64)
    k = torch.exp(-(t**2) / (2 * sigma**2))
    k = (k / k.sum()).to(hr_img.device)
    shape = hr_img.shape
    x = hr_img.to(torch.float64).reshape(-1, 1, *shape[-2:])
    x = F.pad(x, (radius, radius, radius, radius), mode="reflect")
    x = F.conv2d(x, k.view(1, 1, 1, -1))
    x = F.conv2d(x, k.view(1, 1, -1, 1))
    off = scale // 2
    x = x[..., off::scale, off::scale]
    x = uint8_levels(x) / 255
    return x.reshape(*shape[:-2], *x.shape[-2:]).to(hr_img.dtype)


DEGRADATIONS = {"bicubic": bicubic_degrade, "gaussian": gaussian_degrade}
