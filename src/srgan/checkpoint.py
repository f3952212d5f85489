"""Self-describing checkpoints and the shipped generators.

Training checkpoints (`.pt`) hold everything needed to resume exactly: weights of G (and D), their
constructor kwargs, the resolved TrainConfig, the step, optimizer states and RNG states. Released
generators are safetensors files whose metadata carries the constructor kwargs.
Files are written atomically: to a temporary file in the same folder, then renamed over the target.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from .models import Generator

WEIGHTS_DIR = Path(__file__).parent / "weights"

# Shipped generators: name -> file in srgan/weights/ (model cards beside them): "srresnet" is the
# PSNR-oriented SRResNet-MSE, "srgan" the SRGAN-VGG54 fine-tuned from it, the default of `srgan upscale`;
# the other three are the remaining variants of the paper's Table 1 (stored as float16, loaded as float32).
SHIPPED = {
    "srresnet": "srresnet_mse_interim.safetensors",
    "srgan": "srgan_vgg54_interim.safetensors",
    "srresnet-vgg22": "srresnet_vgg22_interim.safetensors",
    "srgan-mse": "srgan_mse_interim.safetensors",
    "srgan-vgg22": "srgan_vgg22_interim.safetensors",
}
DEFAULT_MODEL = "srgan"


def atomic_write(path: str | Path, write_fn) -> None:
    """Call write_fn(tmp_path), then rename tmp_path over `path` (never leaves a half-written file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    try:
        write_fn(tmp)
        # mkstemp makes 0600 (and some writers, safetensors' among them, re-create the file): give it the
        # permissions open() would
        os.chmod(tmp, 0o666 & ~umask)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    atomic_write(path, lambda tmp: torch.save(state, tmp))


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    # weights_only=False: our own checkpoints carry RNG states and the config (plain dicts and tensors).
    return torch.load(path, map_location=map_location, weights_only=False)


def save_generator(
    path: str | Path, generator: Generator, metadata: dict[str, str] | None = None, *, half: bool = False
) -> None:
    """Release format: safetensors with {"kwargs": json} (and any extra string metadata). Floating-point
    tensors are stored as float32, or as float16 with `half=True` (half the size; `load_model` gives float32
    back). Integer tensors (batch norm's counters) keep their dtype."""
    meta = {"format": "srgan-generator", "kwargs": json.dumps(generator.kwargs)}
    meta.update(metadata or {})
    if half:
        meta["dtype"] = "float16"
    dtype = torch.float16 if half else torch.float32
    tensors = {
        k: (v.detach().to(dtype) if v.is_floating_point() else v.detach()).cpu().contiguous()
        for k, v in generator.state_dict().items()
    }
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=meta))


def _generator_from_state(state_dict: dict[str, torch.Tensor], kwargs: dict[str, Any]) -> Generator:
    model = Generator(**kwargs)
    model.load_state_dict(state_dict)
    return model.eval()


def generator_from_checkpoint(
    ckpt: dict[str, Any], where: str = "checkpoint", *, ema: bool = True
) -> Generator:
    """The generator (eval mode, CPU) of a training checkpoint already loaded with `load_checkpoint`: its
    exponential moving average when the run kept one (`ema_decay`) and `ema` is True, else the trained
    weights."""
    if "generator" not in ckpt or "generator_kwargs" not in ckpt:
        raise ValueError(f"{where} is not an srgan training checkpoint (no generator / generator_kwargs)")
    state = ckpt["generator_ema"] if ema and ckpt.get("generator_ema") is not None else ckpt["generator"]
    return _generator_from_state(state, ckpt["generator_kwargs"])


def load_model(
    name_or_path: str | Path, device: str | torch.device = "cpu", *, fast: bool = False
) -> Generator:
    """A generator in eval mode from a shipped name (see SHIPPED), a .safetensors release file, or a
    training checkpoint (.pt) written by `srgan train`. With `fast=True`, its inference form
    (`srgan.fast.prepare_for_inference`: BN folded, channels_last; same outputs within 1e-5), for upscaling
    only (it cannot be trained or saved as a release file)."""
    name = str(name_or_path)
    if name in SHIPPED:
        path = WEIGHTS_DIR / SHIPPED[name]
        if not path.exists():
            raise FileNotFoundError(f"shipped weights for {name!r} are missing: {path}")
    else:
        path = Path(name)
        if not path.exists():
            raise FileNotFoundError(
                f"no model {name!r}: not a shipped name ({', '.join(SHIPPED)}) nor an existing file"
            )
    if path.suffix == ".safetensors":
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        if "kwargs" not in meta:
            raise ValueError(f"{path} has no 'kwargs' metadata: not an srgan generator file")
        model = _generator_from_state(load_file(str(path)), json.loads(meta["kwargs"]))
    else:
        model = generator_from_checkpoint(load_checkpoint(path), where=str(path))
    if fast:
        from .fast import prepare_for_inference

        return prepare_for_inference(model, device=device)
    return model.to(device)


def interpolate_generators(g0: Generator, g1: Generator, alpha: float) -> Generator:
    """A new generator whose weights (and batch-norm statistics) are (1 - alpha) * g0 + alpha * g1: network
    interpolation (as in ESRGAN, Wang et al. 2018), a knob along the perception-distortion trade-off.
    alpha in [0, 1]; 0 gives g0's weights exactly, 1 gives g1's."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"realism / alpha must be in [0, 1], got {alpha}")
    if g0.kwargs != g1.kwargs:
        raise ValueError(f"cannot interpolate generators of different shapes: {g0.kwargs} vs {g1.kwargs}")
    s0, s1 = g0.state_dict(), g1.state_dict()
    mixed = {}
    for key, w0 in s0.items():
        w1 = s1[key].to(w0.device)
        # torch.lerp is exact at the ends (start + 0 * diff, end - 0 * diff); BN's integer counter is g1's
        mixed[key] = torch.lerp(w0, w1, alpha) if w0.is_floating_point() else w1.clone()
    return _generator_from_state(mixed, g0.kwargs).to(next(g0.parameters()).device)


def load_realism_model(realism: float, device: str | torch.device = "cpu") -> Generator:
    """The shipped SRResNet (realism 0, PSNR-oriented) and SRGAN (realism 1, photo-realistic) generators,
    interpolated weight by weight (`interpolate_generators`)."""
    return interpolate_generators(load_model("srresnet", device), load_model("srgan", device), realism)
