"""The paper's published figures (Ledig et al., CVPR 2017), for the tables that set ours beside them."""

from __future__ import annotations

# Ledig et al. Table 2 (x4, PSNR dB / SSIM, daala tools on Y with a 4-pixel border removed).
PAPER_TABLE2: dict[str, dict[str, tuple[float, float]]] = {
    "Set5": {"nearest": (26.26, 0.7552), "bicubic": (28.43, 0.8211), "srcnn": (30.07, 0.8627),
             "espcn": (30.76, 0.8784), "srresnet": (32.05, 0.9019), "srgan": (29.40, 0.8472)},
    "Set14": {"nearest": (24.64, 0.7100), "bicubic": (25.99, 0.7486), "srcnn": (27.18, 0.7861),
              "espcn": (27.66, 0.8004), "srresnet": (28.49, 0.8184), "srgan": (26.02, 0.7397)},
    "BSD100": {"nearest": (25.02, 0.6606), "bicubic": (25.94, 0.6935), "srcnn": (26.68, 0.7291),
               "espcn": (27.02, 0.7442), "srresnet": (27.58, 0.7620), "srgan": (25.16, 0.6688)},
}  # fmt: skip
PAPER_METHODS = {"nearest": "nearest", "bicubic": "bicubic", "srcnn": "SRCNN", "espcn": "ESPCN",
                 "srresnet": "SRResNet", "srgan": "SRGAN"}

# Ledig et al. Table 1, the five loss variants (x4, PSNR dB / SSIM / MOS), keyed by our shipped model names.
PAPER_TABLE1: dict[str, dict[str, tuple[float, float, float]]] = {
    "Set5": {"srresnet": (32.05, 0.9019, 3.37), "srresnet-vgg22": (30.51, 0.8803, 3.46),
             "srgan-mse": (30.64, 0.8701, 3.77), "srgan-vgg22": (29.84, 0.8468, 3.78),
             "srgan": (29.40, 0.8472, 3.58)},
    "Set14": {"srresnet": (28.49, 0.8184, 2.98), "srresnet-vgg22": (27.19, 0.7807, 3.15),
              "srgan-mse": (26.92, 0.7611, 3.43), "srgan-vgg22": (26.44, 0.7518, 3.57),
              "srgan": (26.02, 0.7397, 3.72)},
}  # fmt: skip
