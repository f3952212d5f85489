"""The paper's two interpolation baselines of Table 2: nearest neighbour and MATLAB bicubic x4."""

from __future__ import annotations

import torch

from .imresize import imresize
from .io import uint8_levels

BASELINES = ("nearest", "bicubic")


def nearest_upscale(lr_img: torch.Tensor, scale: int = 4) -> torch.Tensor:
    """Pixel replication: each LR pixel becomes a scale x scale block. (..., h, w) -> (..., sh, sw)."""
    return lr_img.repeat_interleave(scale, dim=-2).repeat_interleave(scale, dim=-1)


def bicubic_upscale(lr_img: torch.Tensor, scale: int = 4) -> torch.Tensor:
    """MATLAB `imresize(uint8 LR, scale, 'bicubic')`: LR in [0, 1] rounded to uint8, both passes rounded to
    uint8, result back in [0, 1] (float32)."""
    lr_u8 = uint8_levels(lr_img)
    return imresize(lr_u8, scale, quantize=True).to(torch.float32) / 255
