"""SRResNet / SRGAN networks of Ledig et al., "Photo-Realistic Single Image Super-Resolution Using a
Generative Adversarial Network", CVPR 2017 (arXiv 1609.04802), Figure 4 and section 2.

Ranges at the model boundary follow the paper (section 3.2): the generator takes LR images in [0, 1] and
returns SR images in [-1, 1] (the range of the HR targets); the discriminator takes images in [-1, 1] and
returns one logit per image (the sigmoid is folded into the losses). `VGG19Features` takes RGB in [0, 1]
and handles the convention of whichever weights it was loaded with internally.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .imresize import imresize
from .io import unit_to_signed
from .metrics import rgb_to_ycbcr, ycbcr_to_rgb


class ResidualBlock(nn.Module):
    """conv3x3 - BN - PReLU - conv3x3 - BN, plus the identity (Figure 4, B of these)."""

    def __init__(self, channels: int = 64):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.BatchNorm2d(channels),
            nn.PReLU(),
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.BatchNorm2d(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class UpsampleBlock(nn.Module):
    """Sub-pixel convolution x2 (Shi et al. 2016): conv3x3 C -> 4C, PixelShuffle(2), PReLU."""

    def __init__(self, channels: int = 64):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels * 4, 3, padding=1)
        self.shuffle = nn.PixelShuffle(2)
        self.act = nn.PReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(x)  # (B, C, H, W) -> (B, 4C, H, W)
        x = self.shuffle(x)  # (B, 4C, H, W) -> (B, C, 2H, 2W)
        return self.act(x)


class Generator(nn.Module):
    """SRResNet generator. Defaults are the paper's: B = 16 residual blocks, 64 channels, x4.

    forward(lr_img in [0, 1]) -> sr_img in [-1, 1] (tanh), shape (B, 3, 4H, 4W) for scale 4.
    With the defaults it has 1,549,462 parameters (single-parameter PReLUs, as in Lasagne/Keras defaults
    of the time; per-channel PReLUs would add 1,197).
    """

    def __init__(self, num_blocks: int = 16, channels: int = 64, scale: int = 4, in_channels: int = 3):
        super().__init__()
        if scale not in (2, 4, 8):
            raise ValueError(f"scale must be 2, 4 or 8, got {scale}")
        self.kwargs = dict(num_blocks=num_blocks, channels=channels, scale=scale, in_channels=in_channels)
        self.scale = scale
        self.head = nn.Sequential(nn.Conv2d(in_channels, channels, 9, padding=4), nn.PReLU())
        self.blocks = nn.Sequential(*[ResidualBlock(channels) for _ in range(num_blocks)])
        self.body_tail = nn.Sequential(nn.Conv2d(channels, channels, 3, padding=1), nn.BatchNorm2d(channels))
        self.upsample = nn.Sequential(*[UpsampleBlock(channels) for _ in range(int(math.log2(scale)))])
        self.tail = nn.Conv2d(channels, in_channels, 9, padding=4)

    def forward(self, lr_img: torch.Tensor) -> torch.Tensor:
        x = self.head(lr_img)  # (B, 3, H, W) -> (B, 64, H, W)
        x = x + self.body_tail(self.blocks(x))  # long skip connection
        x = self.upsample(x)  # (B, 64, H, W) -> (B, 64, 4H, 4W)
        return torch.tanh(self.tail(x))  # (B, 64, 4H, 4W) -> (B, 3, 4H, 4W)

    def receptive_radius(self) -> int:
        """How many LR pixels on each side influence one output pixel (for exact tiling)."""
        n = self.kwargs["num_blocks"]
        ups = int(math.log2(self.scale))
        # head 9x9 (4), 2 convs per block, body tail conv, upsample convs at 1x, 2x, ..., final 9x9 at sxs.
        radius = 4 + 2 * n + 1 + sum(1 / 2**i for i in range(ups)) + 4 / self.scale
        return math.ceil(radius)


class LumaSR(nn.Module):
    """Base of the two Table 2 baselines that work on luma only, as their papers do: the network maps the
    Y channel (MATLAB rgb2ycbcr), Cb and Cr are MATLAB-bicubic x scale, and the result goes back to RGB.

    Same contract as `Generator`: forward(lr_img RGB in [0, 1]) -> RGB in [-1, 1] (clamped in eval mode,
    not in training, so that the loss on Y sees the network's own values). Train it with the Y-channel MSE
    (`content_loss="mse-y"`): RGB MSE would make the luma make up for the fixed chroma error.
    The colour conversions and the bicubic run in float32 / float64 even under autocast.
    """

    arch = ""

    def __init__(self, scale: int = 4):
        super().__init__()
        if scale not in (2, 4, 8):
            raise ValueError(f"scale must be 2, 4 or 8, got {scale}")
        self.kwargs = dict(arch=self.arch, scale=scale)
        self.scale = scale

    def luma(self, lr_y: torch.Tensor, bicubic_y: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, lr_img: torch.Tensor) -> torch.Tensor:
        with torch.autocast(lr_img.device.type, enabled=False):
            lr_ycc = rgb_to_ycbcr(lr_img.float())  # (B, 3, H, W), [0, 1] units
            up_ycc = imresize(lr_ycc, self.scale)  # (B, 3, sH, sW), MATLAB bicubic (float)
        y = self.luma(lr_ycc[:, :1], up_ycc[:, :1])  # (B, 1, sH, sW)
        with torch.autocast(lr_img.device.type, enabled=False):
            rgb = ycbcr_to_rgb(torch.cat([y.float(), up_ycc[:, 1:]], dim=1))
            out = unit_to_signed(rgb)
        return out if self.training else out.clamp(-1, 1)


class SRCNN(LumaSR):
    """SRCNN of Dong, Loy, He and Tang, "Image Super-Resolution Using Deep Convolutional Networks" (ECCV 2014;
    TPAMI 2016, the 9-5-5 network with n1 = 64, n2 = 32 that the SRGAN paper's Table 2 lists).

    On the bicubic-upscaled image's Y channel, at HR size: conv 9x9 1 -> 64, ReLU, conv 5x5 64 -> 32, ReLU,
    conv 5x5 32 -> 1; 57,281 parameters. The network outputs the HR luma itself (no residual), as in the
    paper. Choices the paper leaves open or makes for its training set-up only: the paper trains on 33x33
    sub-images without padding; here every conv keeps the size with replicated edges, so that a whole image
    (and every border pixel) is predicted. Cb / Cr are bicubic, as in the paper's colour experiments (its
    "Y only" setting, section 5.3).
    """

    arch = "srcnn"

    def __init__(self, scale: int = 4):
        super().__init__(scale)
        self.net = nn.Sequential(
            nn.Conv2d(1, 64, 9, padding=4, padding_mode="replicate"),
            nn.ReLU(),
            nn.Conv2d(64, 32, 5, padding=2, padding_mode="replicate"),
            nn.ReLU(),
            nn.Conv2d(32, 1, 5, padding=2, padding_mode="replicate"),
        )

    def luma(self, lr_y: torch.Tensor, bicubic_y: torch.Tensor) -> torch.Tensor:
        return self.net(bicubic_y)

    def receptive_radius(self) -> int:
        # the net sees 4 + 2 + 2 = 8 HR pixels each side, the bicubic 2 LR pixels: 8 / s + 2, plus 1 to spare
        return math.ceil(8 / self.scale) + 3


class ESPCN(LumaSR):
    """ESPCN of Shi et al., "Real-Time Single Image and Video Super-Resolution Using an Efficient Sub-Pixel
    Convolutional Neural Network" (CVPR 2016), the network of its ImageNet results (SRGAN's Table 2).

    On the LR image's Y channel: conv 5x5 1 -> 64, tanh, conv 3x3 64 -> 32, tanh, conv 3x3 32 -> s^2, then
    the sub-pixel shuffle to (1, sH, sW); 24,752 parameters at x4. tanh as in the paper's final model; the
    last layer is linear (the paper names no output activation). The paper trains on sub-images without
    padding; here every conv keeps the size with replicated edges. Cb / Cr are bicubic.
    """

    arch = "espcn"

    def __init__(self, scale: int = 4):
        super().__init__(scale)
        self.net = nn.Sequential(
            nn.Conv2d(1, 64, 5, padding=2, padding_mode="replicate"),
            nn.Tanh(),
            nn.Conv2d(64, 32, 3, padding=1, padding_mode="replicate"),
            nn.Tanh(),
            nn.Conv2d(32, scale * scale, 3, padding=1, padding_mode="replicate"),
            nn.PixelShuffle(scale),
        )

    def luma(self, lr_y: torch.Tensor, bicubic_y: torch.Tensor) -> torch.Tensor:
        return self.net(lr_y)

    def receptive_radius(self) -> int:
        return 2 + 1 + 1 + 1  # the three convs (2 + 1 + 1 LR pixels); the chroma bicubic needs 2 of them


# The networks a generator file may hold: its kwargs' "arch" (absent: the paper's SRResNet generator).
ARCHS = {"srresnet": Generator, "srcnn": SRCNN, "espcn": ESPCN}


def make_generator(kwargs: dict) -> nn.Module:
    """The network a generator file's kwargs describe (Generator's own, or {"arch": ..., "scale": ...})."""
    kwargs = dict(kwargs)
    arch = kwargs.pop("arch", "srresnet")
    if arch not in ARCHS:
        raise ValueError(f"unknown generator arch {arch!r}; known: {', '.join(ARCHS)}")
    return ARCHS[arch](**kwargs)


class Discriminator(nn.Module):
    """SRGAN discriminator (Figure 4): 8 conv layers, LeakyReLU 0.2, BN after the first, dense 1024, dense 1.

    forward(img in [-1, 1], shape (B, 3, S, S)) -> logits (B,). The paper's final sigmoid is folded into
    the losses (binary cross-entropy with logits) for numerical stability.
    """

    def __init__(self, image_size: int = 96, channels: int = 64, in_channels: int = 3):
        super().__init__()
        if image_size % 16:
            raise ValueError(f"image_size must be a multiple of 16, got {image_size}")
        self.kwargs = dict(image_size=image_size, channels=channels, in_channels=in_channels)
        c = channels
        layers: list[nn.Module] = [nn.Conv2d(in_channels, c, 3, padding=1), nn.LeakyReLU(0.2)]
        # (out channels, stride) of the seven conv-BN-LeakyReLU layers
        spec = [(c, 2), (2 * c, 1), (2 * c, 2), (4 * c, 1), (4 * c, 2), (8 * c, 1), (8 * c, 2)]
        prev = c
        for out, stride in spec:
            layers += [
                nn.Conv2d(prev, out, 3, stride=stride, padding=1),
                nn.BatchNorm2d(out),
                nn.LeakyReLU(0.2),
            ]
            prev = out
        self.features = nn.Sequential(*layers)  # (B, 3, 96, 96) -> (B, 512, 6, 6)
        feat = image_size // 16
        self.classifier = nn.Sequential(
            nn.Flatten(),  # (B, 512, 6, 6) -> (B, 18432)
            nn.Linear(prev * feat * feat, 1024),
            nn.LeakyReLU(0.2),
            nn.Linear(1024, 1),
        )

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(img)).squeeze(1)


# VGG19 conv layers as (name, in, out); "M" is a 2x2 max-pool. Indices in `features` match torchvision's,
# so a torchvision state dict ("features.N.weight") loads as it is.
VGG19_LAYOUT = [
    ("conv1_1", 3, 64), ("conv1_2", 64, 64), "M",
    ("conv2_1", 64, 128), ("conv2_2", 128, 128), "M",
    ("conv3_1", 128, 256), ("conv3_2", 256, 256), ("conv3_3", 256, 256), ("conv3_4", 256, 256), "M",
    ("conv4_1", 256, 512), ("conv4_2", 512, 512), ("conv4_3", 512, 512), ("conv4_4", 512, 512), "M",
    ("conv5_1", 512, 512), ("conv5_2", 512, 512), ("conv5_3", 512, 512), ("conv5_4", 512, 512),
]  # fmt: skip

# Input conventions of the two weight sources.
CAFFE_BGR_MEAN = (103.939, 116.779, 123.68)  # Oxford/Caffe weights: BGR, 0-255, mean subtracted
IMAGENET_MEAN = (0.485, 0.456, 0.406)  # torchvision weights: RGB, [0, 1], normalised
IMAGENET_STD = (0.229, 0.224, 0.225)


def vgg19_conv_indices() -> dict[str, int]:
    """Layer name (conv5_4) -> index of its Conv2d in `VGG19Features.features`."""
    out, i = {}, 0
    for item in VGG19_LAYOUT:
        if item == "M":
            i += 1
        else:
            out[item[0]] = i
            i += 2  # conv + ReLU
    return out


class VGG19Features(nn.Module):
    """VGG19 feature extractor returning phi_i,j: the j-th conv before the i-th pool, after its ReLU.

    forward(img RGB in [0, 1]) -> {"22": phi_2,2, "54": phi_5,4} (only the requested layers).
    `convention` is "caffe" (BGR, 0-255, mean subtracted: the paper's weights) or "torchvision".
    The network is frozen (no parameter gradients), but gradients flow to the input.
    """

    def __init__(self, layers: tuple[str, ...] = ("22", "54"), convention: str = "caffe"):
        super().__init__()
        if convention not in ("caffe", "torchvision"):
            raise ValueError(f"convention must be 'caffe' or 'torchvision', got {convention!r}")
        for layer in layers:
            if layer not in ("22", "54"):
                raise ValueError(f"VGG19 layer must be '22' or '54', got {layer!r}")
        self.convention = convention
        self.layers = tuple(sorted(layers))
        idx = vgg19_conv_indices()
        # output index = the ReLU right after the conv
        self.taps = {"22": idx["conv2_2"] + 1, "54": idx["conv5_4"] + 1}
        mods: list[nn.Module] = []
        for item in VGG19_LAYOUT:
            if item == "M":
                mods.append(nn.MaxPool2d(2, 2))
            else:
                mods += [nn.Conv2d(item[1], item[2], 3, padding=1), nn.ReLU(inplace=False)]
        last = max(self.taps[layer] for layer in self.layers)
        self.features = nn.Sequential(*mods[: last + 1])
        if convention == "caffe":
            mean = torch.tensor(CAFFE_BGR_MEAN[::-1]).view(1, 3, 1, 1) / 255.0  # RGB order, [0, 1] units
            std = torch.full((1, 3, 1, 1), 1 / 255.0)
        else:
            mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
            std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
        self.register_buffer("mean", mean, persistent=False)
        self.register_buffer("std", std, persistent=False)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> VGG19Features:  # always in eval mode (no BN/dropout anyway)
        return super().train(False)

    def forward(self, img: torch.Tensor) -> dict[str, torch.Tensor]:
        x = (img - self.mean) / self.std
        if self.convention == "caffe":
            x = x.flip(1)  # RGB -> BGR
        out = {}
        for i, layer in enumerate(self.features):
            x = layer(x)
            for name in self.layers:
                if self.taps[name] == i:
                    out[name] = x
        return out


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
