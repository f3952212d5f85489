"""The model zoo: shipped generator names, loading any model by name or file, the realism control, and
the model `srgan upscale` runs.

Names: the five variants of the paper's Table 1 are shipped as `srresnet` (SRResNet-MSE), `srresnet-vgg22`,
`srgan-mse`, `srgan-vgg22` and `srgan` (SRGAN-VGG54, the default of `srgan upscale`); two of Table 2's
baselines as `srcnn` and `espcn`. The preset names
`srresnet-mse` and `srgan-vgg54` are accepted for the first and the last everywhere (`canonical_name`); the
shipped name is what is printed.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import torch

from .checkpoint import generator_from_state, load_generator_file
from .models import Generator

WEIGHTS_DIR = Path(__file__).parent / "weights"

# Shipped generators: name -> file in srgan/weights/ (model cards beside them): "srresnet" is the
# PSNR-oriented SRResNet-MSE, "srgan" the SRGAN-VGG54 fine-tuned from it, the default of `srgan upscale`;
# the other three are the remaining variants of the paper's Table 1 (stored as float16, loaded as float32).
SHIPPED = {
    "srresnet": "srresnet.safetensors",
    "srgan": "srgan.safetensors",
    "srresnet-vgg22": "srresnet-vgg22.safetensors",
    "srgan-mse": "srgan-mse.safetensors",
    "srgan-vgg22": "srgan-vgg22.safetensors",
    # the paper's Table 2 baselines that fit a CPU (srgan.models.SRCNN / ESPCN; docs/baselines.md)
    "srcnn": "srcnn.safetensors",
    "espcn": "espcn.safetensors",
}
TABLE1_VARIANTS = ("srresnet", "srresnet-vgg22", "srgan-mse", "srgan-vgg22", "srgan")
TABLE2_BASELINES = ("srcnn", "espcn")
ALIASES = {"srresnet-mse": "srresnet", "srgan-vgg54": "srgan"}  # the paper's variant names of two of them
DEFAULT_MODEL = "srgan"
AUTO_PRECISION_HELP = "bf16 on CPUs with native bf16 (AVX512-BF16 / AMX), else fp32"


def canonical_name(name: str) -> str:
    """A shipped model's name as printed: preset names (srresnet-mse, srgan-vgg54) map to the shipped ones;
    anything else (a file path) is returned as it is."""
    return ALIASES.get(name, name)


def shipped_path(name: str) -> Path | None:
    """The weights file of a shipped name (or alias), None for anything else."""
    name = canonical_name(name)
    return WEIGHTS_DIR / SHIPPED[name] if name in SHIPPED else None


def load_model(
    name_or_path: str | Path, device: str | torch.device = "cpu", *, fast: bool = False
) -> torch.nn.Module:
    """A generator in eval mode from a shipped name (see SHIPPED and ALIASES), a .safetensors release file,
    or a training checkpoint (.pt) written by `srgan train`. With `fast=True`, its inference form
    (`srgan.fast.prepare_for_inference`: BN folded, channels_last; same outputs within 1e-5), for upscaling
    only (it cannot be trained or saved as a release file)."""
    name = str(name_or_path)
    path = shipped_path(name)
    if path is not None:
        if not path.exists():
            raise FileNotFoundError(f"shipped weights for {name!r} are missing: {path}")
    else:
        path = Path(name)
        if not path.exists():
            names = ", ".join([*SHIPPED, *ALIASES])
            raise FileNotFoundError(f"no model {name!r}: not a shipped name ({names}) nor an existing file")
    model = load_generator_file(path)
    if fast:
        from .fast import prepare_for_inference

        return prepare_for_inference(model, device=device)
    return model.to(device)


def interpolate_generators(g0: Generator, g1: Generator, realism: float) -> Generator:
    """A new generator whose weights (and batch-norm statistics) are (1 - realism) * g0 + realism * g1:
    network interpolation (as in ESRGAN, Wang et al. 2018), a knob along the perception-distortion trade-off.
    realism in [0, 1]; 0 gives g0's weights exactly, 1 gives g1's."""
    if not (math.isfinite(realism) and 0.0 <= realism <= 1.0):
        raise ValueError(f"realism must be in [0, 1], got {realism}")
    if g0.kwargs != g1.kwargs:
        raise ValueError(f"cannot interpolate generators of different shapes: {g0.kwargs} vs {g1.kwargs}")
    s0, s1 = g0.state_dict(), g1.state_dict()
    mixed = {}
    for key, w0 in s0.items():
        w1 = s1[key].to(w0.device)
        # torch.lerp is exact at the ends (start + 0 * diff, end - 0 * diff); BN's integer counter is g1's
        mixed[key] = torch.lerp(w0, w1, realism) if w0.is_floating_point() else w1.clone()
    return generator_from_state(mixed, g0.kwargs).to(next(g0.parameters()).device)


def load_realism_model(realism: float, device: str | torch.device = "cpu") -> Generator:
    """The shipped SRResNet (realism 0, PSNR-oriented) and SRGAN (realism 1, photo-realistic) generators,
    interpolated weight by weight (`interpolate_generators`)."""
    return interpolate_generators(load_model("srresnet", device), load_model("srgan", device), realism)


def resolve_precision(precision: str, device: torch.device, *, backend: str = "torch") -> str:
    """`auto` -> bf16 on a CPU with native bf16 (Set5 PSNR change measured at -0.0013 dB with the shipped
    srresnet, bench/precision.py), else fp32 (GPU fp16/bf16 quality not measured yet); others unchanged."""
    from .hardware import cpu_supports_bf16

    if precision != "auto":
        return precision
    return "bf16" if backend == "torch" and device.type == "cpu" and cpu_supports_bf16() else "fp32"


def load_inference_model(
    name: str | None = None,
    *,
    backend: str = "torch",
    device: str | torch.device = "cpu",
    plain: bool = False,
    realism: float | None = None,
):
    """The model `srgan upscale` runs: the fast inference form of `name` (torch; the shipped default when
    None), its plain Generator (`plain`), or an ONNX Runtime session (a .onnx file, or the model exported to
    a temporary file). With `realism`, the shipped srresnet and srgan interpolated (`name` must be None)."""
    from .fast import prepare_for_inference

    if realism is not None:
        if name is not None:
            raise ValueError("--realism mixes the shipped srresnet and srgan: leave out --model")
        generator = load_realism_model(realism)
    elif Path(name or DEFAULT_MODEL).suffix == ".onnx":
        if backend != "onnxruntime":
            raise ValueError("a .onnx model needs --backend onnxruntime")
        from .onnx_export import OnnxGenerator

        return OnnxGenerator(name)
    else:
        generator = load_model(name or DEFAULT_MODEL)
    if backend == "onnxruntime":
        from .onnx_export import OnnxGenerator, export_onnx

        with tempfile.TemporaryDirectory() as tmp:
            return OnnxGenerator(export_onnx(generator, Path(tmp) / "model.onnx"))
    return generator.to(device) if plain else prepare_for_inference(generator, device=device)
