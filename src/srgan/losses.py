"""Losses of the paper (section 2.2), as pure functions.

All image arguments are in the model range [-1, 1] (the generator's output and the HR targets).
The perceptual loss of the generator is `content + ADV_WEIGHT * adversarial` (+ TV_WEIGHT * tv for
SRResNet-VGG22).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .io import signed_to_unit
from .metrics import Y_WEIGHTS
from .models import VGG19Features

VGG_SCALE = 1 / 12.75  # the paper rescales VGG feature maps by this factor before the MSE
ADV_WEIGHT = 1e-3
TV_WEIGHT = 2e-8


def mse_loss(sr_img: torch.Tensor, hr_img: torch.Tensor) -> torch.Tensor:
    """Pixel-wise MSE (paper eq. 4), mean over all elements."""
    return F.mse_loss(sr_img.float(), hr_img.float())


def mse_y_loss(sr_img: torch.Tensor, hr_img: torch.Tensor) -> torch.Tensor:
    """MSE of the Y channel (MATLAB rgb2ycbcr luma, [0, 1] units), mean over all pixels: the loss of the
    luma-only baselines SRCNN and ESPCN, whose papers train on Y."""
    w = torch.tensor(Y_WEIGHTS, dtype=torch.float32, device=sr_img.device).view(1, 3, 1, 1) / 255
    y_sr = (signed_to_unit(sr_img.float()) * w).sum(1)
    y_hr = (signed_to_unit(hr_img.float()) * w).sum(1)
    return F.mse_loss(y_sr, y_hr)


def vgg_loss(sr_img: torch.Tensor, hr_img: torch.Tensor, vgg: VGG19Features, layer: str) -> torch.Tensor:
    """VGG loss (paper eq. 5): MSE between phi_i,j feature maps (after ReLU) scaled by 1/12.75.

    `layer` is "22" or "54". The HR features carry no gradient; the SR features do.
    """
    with torch.no_grad():
        feat_hr = vgg(signed_to_unit(hr_img))[layer].detach()  # [-1, 1] -> [0, 1] (VGG19Features')
    feat_sr = vgg(signed_to_unit(sr_img))[layer]
    return F.mse_loss(feat_sr.float() * VGG_SCALE, feat_hr.float() * VGG_SCALE)


def adversarial_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Generator's adversarial loss -log D(G(LR)) (paper eq. 6), mean over the batch, unweighted.

    D outputs logits, so -log(sigmoid(z)) = softplus(-z), computed stably.
    """
    return F.softplus(-fake_logits.float()).mean()


def discriminator_loss(
    real_logits: torch.Tensor, fake_logits: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Discriminator's binary cross-entropy (paper eq. 2): -log D(HR) and -log(1 - D(G(LR))), batch means.

    Returns (loss_real, loss_fake); the discriminator minimises their sum.
    """
    loss_real = F.softplus(-real_logits.float()).mean()
    loss_fake = F.softplus(fake_logits.float()).mean()
    return loss_real, loss_fake


def tv_loss(sr_img: torch.Tensor) -> torch.Tensor:
    """Total variation: sum of squared differences of neighbouring pixels, summed over the image and
    averaged over the batch (the paper gives only its weight, 2e-8, which fits a sum of this kind)."""
    x = sr_img.float()
    dh = (x[..., 1:, :] - x[..., :-1, :]).pow(2).sum()
    dw = (x[..., :, 1:] - x[..., :, :-1]).pow(2).sum()
    return (dh + dw) / x.shape[0]
