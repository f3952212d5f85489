"""srgan: paper-faithful PyTorch SRResNet / SRGAN (Ledig et al., CVPR 2017)."""

from .checkpoint import load_model
from .models import Discriminator, Generator, VGG19Features
from .upscale import upscale

__all__ = ["Generator", "Discriminator", "VGG19Features", "load_model", "upscale"]
__version__ = "0.1.0"
