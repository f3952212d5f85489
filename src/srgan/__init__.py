"""srgan: paper-faithful PyTorch SRResNet / SRGAN (Ledig et al., CVPR 2017)."""

from .int8 import quantize as quantize_int8
from .models import Discriminator, Generator, VGG19Features
from .upscale import upscale
from .video import upscale_video
from .zoo import load_model

__all__ = ["Generator", "Discriminator", "VGG19Features", "load_model", "quantize_int8", "upscale",
           "upscale_video"]  # fmt: skip
__version__ = "0.1.0"
