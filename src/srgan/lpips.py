"""LPIPS, the learned perceptual image patch similarity of Zhang et al. (CVPR 2018), without torchvision.

Both of the official v0.1 variants: "alex" (AlexNet trunk, the one the LPIPS authors recommend as a metric)
and "vgg" (VGG16 trunk). The computation is the official `lpips.LPIPS(net=..., version="0.1")` with
`normalize=True`:

  1. inputs RGB in [0, 1] -> [-1, 1] -> (x - shift) / scale, LPIPS's ScalingLayer (ImageNet statistics
     expressed in [-1, 1]);
  2. ImageNet-trained trunk features at five ReLUs (AlexNet relu1..relu5; VGG16 relu1_2, relu2_2, relu3_3,
     relu4_3, relu5_3), written here as torchvision's `features` Sequential so its weights load by index;
  3. each feature map unit-normalised over channels (eps 1e-10, added to the norm), squared difference;
  4. a learned non-negative 1x1 conv per layer to one channel, averaged over space, summed over layers.

Whole images, no resizing. `LPIPS(net)` has random weights; `load_lpips(net)` gives the real ones (see
`srgan.lpips_weights`, which obtains and caches them, and records the trunks' layouts this module builds).
"""

from __future__ import annotations

import torch
from safetensors.torch import load_file
from torch import nn

# ALEX_LAYOUT, NETS, VGG16_LAYOUT, conv_indices: re-exported, srgan.lpips's names before issue 17
from .lpips_weights import ALEX_LAYOUT as ALEX_LAYOUT
from .lpips_weights import CHANNELS, check_net, ensure_lpips, is_cached, trunk_layout, weights_path
from .lpips_weights import NETS as NETS
from .lpips_weights import VGG16_LAYOUT as VGG16_LAYOUT
from .lpips_weights import conv_indices as conv_indices

# LPIPS's ScalingLayer: (x - shift) / scale for x in [-1, 1].
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)
EPS = 1e-10
# Indices in `features` of the five ReLUs LPIPS reads (the ends of the official slices; widths: CHANNELS).
TAPS = {"alex": (1, 4, 7, 9, 11), "vgg": (3, 8, 15, 22, 29)}
POOLS = {"alex": (3, 2), "vgg": (2, 2)}  # (kernel, stride) of the trunk's max-pools


def trunk_features(net: str) -> nn.Sequential:
    """torchvision's `features` of `net`, built from `srgan.lpips_weights.trunk_layout(net)`."""
    kernel, stride = POOLS[net]
    layers: list[nn.Module] = []
    cin = 3
    for item in trunk_layout(net):
        if item == "M":
            layers.append(nn.MaxPool2d(kernel_size=kernel, stride=stride))
        else:
            cout, k, s, pad = item
            layers += [nn.Conv2d(cin, cout, k, stride=s, padding=pad), nn.ReLU()]
            cin = cout
    return nn.Sequential(*layers)


def alexnet_features() -> nn.Sequential:
    """torchvision's `alexnet().features` up to relu5 (indices 0-11; the last max-pool is not used)."""
    return trunk_features("alex")


def vgg16_features() -> nn.Sequential:
    """torchvision's `vgg16().features` up to relu5_3 (indices 0-29; the last max-pool is not used)."""
    return trunk_features("vgg")


def normalize_channels(feat: torch.Tensor) -> torch.Tensor:
    """Unit length along channels, as the official `normalize_tensor`: x / (||x||_2 + 1e-10)."""
    return feat / (feat.pow(2).sum(dim=1, keepdim=True).sqrt() + EPS)


class LPIPS(nn.Module):
    """LPIPS v0.1 distance. forward(img0, img1): float32 RGB (N, 3, H, W) in [0, 1] -> (N,) distances.

    Parameters are random here: use `load_lpips(net)` for the published weights. State dict keys:
    `features.N.{weight,bias}` (torchvision numbering) and `lins.K.weight` (the five 1x1 heads, no bias).
    """

    def __init__(self, net: str = "alex"):
        super().__init__()
        check_net(net)
        self.net = net
        self.features = trunk_features(net)
        self.taps = TAPS[net]
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, kernel_size=1, bias=False) for c in CHANNELS[net])
        self.register_buffer("shift", torch.tensor(SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(SCALE).view(1, 3, 1, 1), persistent=False)

    def trunk(self, img: torch.Tensor) -> list[torch.Tensor]:
        """RGB in [0, 1] -> the five tapped ReLU feature maps."""
        x = (img * 2 - 1 - self.shift) / self.scale  # [0, 1] -> [-1, 1] -> LPIPS's ScalingLayer
        feats = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self.taps:
                feats.append(x)
        return feats

    def forward(self, img0: torch.Tensor, img1: torch.Tensor) -> torch.Tensor:
        if img0.shape != img1.shape or img0.ndim != 4 or img0.shape[1] != 3:
            raise ValueError(
                f"LPIPS compares two RGB batches of the same shape (N, 3, H, W), got {tuple(img0.shape)} "
                f"and {tuple(img1.shape)}"
            )
        # Each image through the trunk on its own, so identical inputs give exactly 0.
        dist = img0.new_zeros(img0.shape[0])
        for f0, f1, lin in zip(self.trunk(img0), self.trunk(img1), self.lins, strict=True):
            diff = (normalize_channels(f0) - normalize_channels(f1)) ** 2  # (N, C, h, w)
            dist = dist + lin(diff).mean(dim=(1, 2, 3))  # (N, 1, h, w) -> (N,)
        return dist


def load_lpips(net: str = "alex", device: str | torch.device = "cpu") -> LPIPS:
    """LPIPS with the published v0.1 weights (obtained and cached on first use), frozen, in eval mode."""
    check_net(net)
    path = weights_path(net) if is_cached(net) else ensure_lpips(net, progress=True)
    model = LPIPS(net)
    model.load_state_dict(load_file(str(path)))
    model.requires_grad_(False)
    return model.eval().to(device)
