"""Self-describing checkpoints and release files: what is written, and how it is read back safely.

Training checkpoints (`.pt`) hold everything needed to resume exactly: weights of G (and D), their
constructor kwargs, the resolved TrainConfig, the step, optimizer states and RNG states. Released
generators are safetensors files whose metadata carries the constructor kwargs.
Files are written atomically: to a temporary file in the same folder, then renamed over the target.
"""

from __future__ import annotations

import json
import pickle
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn

from .io import atomic_write
from .models import ARCHS, Generator, make_generator

__all__ = ["atomic_write", "save_checkpoint", "load_checkpoint", "load_resumable", "save_generator",
           "load_generator_file", "generator_from_checkpoint", "generator_from_state",
           "check_finite", "read_release", "release_kwargs"]  # fmt: skip

def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    atomic_write(path, lambda tmp: torch.save(state, tmp))


# Checkpoints written before RNG states were kept as plain data hold numpy's MT19937 state as an ndarray.
# These are the only non-torch globals such a file may name; they rebuild arrays and run no other code.
_reconstruct = np._core.multiarray._reconstruct if hasattr(np, "_core") else np.core.multiarray._reconstruct
_LEGACY_NUMPY_GLOBALS = [
    (_reconstruct, "numpy.core.multiarray._reconstruct"),  # written by numpy 1.x
    (_reconstruct, "numpy._core.multiarray._reconstruct"),  # written by numpy 2.x
    np.ndarray,
    np.dtype,
    type(np.dtype(np.uint32)),
]


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """A training checkpoint written by `srgan train`, read with `torch.load(weights_only=True)`: tensors and
    plain Python data only, so a file whose pickle would construct other objects (and so could run code) is
    refused with a ValueError, as is a truncated or non-checkpoint file. Nothing in the file is executed."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such checkpoint file: {path}")
    try:
        with torch.serialization.safe_globals(_LEGACY_NUMPY_GLOBALS):
            ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        detail = str(e).split("WeightsUnpickler error:")[-1].strip().splitlines()[0]
        raise ValueError(
            f"{path}: refused to load: it holds Python objects other than tensors and plain data, which "
            f"could run code when loaded ({detail[:200]}); srgan checkpoints never do"
        ) from None
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError, KeyError, IndexError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ValueError(
            f"{path}: not a readable srgan checkpoint (truncated or another format: {first[:200]})"
        ) from None
    if not isinstance(ckpt, dict) or ckpt.get("format", "srgan-train-checkpoint") != "srgan-train-checkpoint":
        raise ValueError(f"{path}: not an srgan training checkpoint")
    return ckpt


RESUME_KEYS = ("config", "step", "generator", "opt_g", "rng")


def load_resumable(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """`load_checkpoint`, then ValueError unless the file holds what `srgan train --resume` needs."""
    ckpt = load_checkpoint(path, map_location)
    missing = [k for k in RESUME_KEYS if k not in ckpt]
    if missing:
        raise ValueError(
            f"{path} cannot be resumed: it lacks {', '.join(missing)} (not a last.pt of `srgan train`)"
        )
    return ckpt


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


def check_finite(state_dict: dict[str, torch.Tensor], where: str) -> None:
    """Raise ValueError when any floating-point tensor holds NaN or infinity (a diverged run's weights)."""
    bad = [k for k, v in state_dict.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise ValueError(
            f"{where}: {len(bad)} of {len(state_dict)} weight tensors hold NaN or infinity (e.g. {bad[0]}): "
            "the run that wrote them diverged; refusing to use them"
        )


# What a generator file may ask for before any tensor is built: the paper's network is 16 blocks of 64
# channels; a file must not be able to make us allocate terabytes (channels=200000) or loop for hours.
KWARG_LIMITS = {"num_blocks": (1, 256), "channels": (1, 1024), "scale": (2, 8), "in_channels": (3, 3)}
# The Table 2 baselines (srgan.models.ARCHS) take only a scale.
BASELINE_KWARG_LIMITS = {"scale": (2, 8)}


def check_generator_kwargs(kwargs: Any, where: str) -> None:
    """ValueError unless `kwargs` are the arguments of a known generator arch, of sane size (KWARG_LIMITS)."""
    if not isinstance(kwargs, dict):
        raise ValueError(f"{where}: the generator kwargs are not a mapping")
    arch = kwargs.get("arch", "srresnet")
    if arch not in ARCHS:
        raise ValueError(f"{where}: unknown generator arch {arch!r} (known: {', '.join(ARCHS)})")
    limits = KWARG_LIMITS if arch == "srresnet" else BASELINE_KWARG_LIMITS
    values = {k: v for k, v in kwargs.items() if k != "arch"}
    unknown = set(values) - set(limits)
    if unknown:
        raise ValueError(f"{where}: unknown generator kwargs {sorted(unknown)}")
    for name, value in values.items():
        lo, hi = limits[name]
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise ValueError(f"{where}: generator kwarg {name}={value!r} is not an integer in [{lo}, {hi}]")


def generator_from_state(
    state_dict: dict[str, torch.Tensor], kwargs: dict[str, Any], where: str = "weights"
) -> nn.Module:
    """The generator (eval mode) that `kwargs` describe (`srgan.models.make_generator`: the paper's SRResNet
    Generator, or a Table 2 baseline), with `state_dict` loaded; ValueError naming `where` otherwise."""
    check_generator_kwargs(kwargs, where)
    try:
        model = make_generator(kwargs)
    except (TypeError, ValueError, RuntimeError) as e:
        raise ValueError(f"{where}: generator kwargs {kwargs} do not describe a Generator: {e}") from None
    check_finite(state_dict, where)
    try:
        model.load_state_dict(state_dict)
    except RuntimeError as e:
        lines = [line.strip() for line in str(e).splitlines() if line.strip()]
        detail = " ".join(lines[1:3])[:300]
        raise ValueError(f"{where}: weights do not fit the generator {kwargs}: {detail}") from None
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
    return generator_from_state(state, ckpt["generator_kwargs"], where)


def load_generator_file(path: str | Path) -> Generator:
    """A generator (eval mode, CPU) from a .safetensors release file or a training checkpoint (.pt) written
    by `srgan train` (its EMA when it kept one). ValueError, with the file named, for anything else."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such model file: {path}")
    if path.is_dir():
        raise ValueError(f"{path} is a folder, not a model file")
    if path.suffix == ".safetensors":
        return _generator_from_release(path)
    if path.suffix in (".pt", ".pth", ".ckpt") or zipfile.is_zipfile(path):
        return generator_from_checkpoint(load_checkpoint(path), where=str(path))
    raise ValueError(
        f"{path}: not a model file: expected an srgan .safetensors release file or a training checkpoint "
        "(.pt), or a shipped name"
    )


def read_release(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(state dict, string metadata) of a safetensors file; ValueError naming the file when it is not one."""
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        state = load_file(str(path))
    except Exception as e:  # safetensors raises its own SafetensorError for a bad header, OSError, ...
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ValueError(f"{path}: not a readable safetensors file ({first[:200]})") from None
    return state, meta


def release_kwargs(meta: dict[str, str], where: str) -> dict[str, Any]:
    """The generator kwargs of a release file's metadata; ValueError when they are missing or not JSON."""
    if "kwargs" not in meta:
        raise ValueError(f"{where} has no 'kwargs' metadata: not an srgan generator file")
    try:
        return json.loads(meta["kwargs"])
    except json.JSONDecodeError:
        raise ValueError(f"{where}: its 'kwargs' metadata is not JSON") from None


def _generator_from_release(path: Path) -> Generator:
    """A release file (safetensors with a 'kwargs' metadata entry) -> Generator; ValueError when it is not."""
    state, meta = read_release(path)
    return generator_from_state(state, release_kwargs(meta, str(path)), str(path))
