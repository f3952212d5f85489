"""Upscaling with a trained Generator: a pure function, tiled so that any image size runs in bounded memory.

`upscale(model, image)` takes float32 RGB in [0, 1], (3, H, W) or (N, 3, H, W), and returns the same layout
`model.scale` times larger, in [0, 1]. It also takes a PIL image and returns one (grayscale, alpha, 16-bit
and ICC profile handled as in `srgan.io`). Tiles are `tile` LR pixels square, each read with `tile_pad`
extra LR pixels of context on every side whose output is cropped off; the default context is the model's
receptive radius, which makes tiled output equal to untiled output up to float rounding.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Protocol, runtime_checkable

import torch
import torch.nn.functional as F
from PIL import Image

from .fast import auto_tile, is_channels_last
from .hardware import available_memory
from .imresize import imresize
from .io import pil_to_planes, planes_to_pil, signed_to_unit
from .metrics import CB_WEIGHTS, CR_WEIGHTS, Y_WEIGHTS


@runtime_checkable
class SRModel(Protocol):
    """What `upscale` runs: a module that maps LR (N, 3, h, w) in [0, 1] to SR (N, 3, s h, s w) in [-1, 1].
    `srgan.models.Generator`, its inference form `srgan.fast.FastGenerator` and the ONNX Runtime wrapper
    `srgan.onnx_export.OnnxGenerator` all have this shape."""

    scale: int
    training: bool

    def receptive_radius(self) -> int:
        """LR pixels on each side that influence one output pixel (the context an exact tile needs)."""
        ...

    def __call__(self, lr_img: torch.Tensor) -> torch.Tensor: ...

# int8: an `srgan.int8.Int8Generator` (its own quantized arithmetic; float32 in and out, no autocast)
PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16, "int8": torch.float32}
# What the network sees beyond the image's edges. "zeros" is the paper's network as trained (its convolutions
# pad with zeros); "replicate" repeats the edge pixels for `tile_pad` LR pixels first, so that a tiny image
# keeps its colour (shipped srresnet, a 1x1 (200, 10, 10): (80, 72, 72) with zeros, (201, 8, 7) replicated).
# On whole photos replicating costs PSNR (srresnet: Set5 -0.12, Set14 -0.09 dB; scripts/edge_padding.py),
# so "auto" replicates only for images whose shorter side is under SMALL_IMAGE LR pixels, where zeros lose the
# colour; every benchmark image is larger, so there "auto" is "zeros".
EDGES = ("auto", "zeros", "replicate")
SMALL_IMAGE = 16
# Bytes per output pixel beyond the model. The float32 RGB result alone (upscale_tensor); a PIL image
# upscaled and saved: peak RSS measured at 51-53 B/px (960x540 input, colour none / rgb / chroma, a tiny
# model with small tiles so that only the result counts), with a margin.
RESULT_BYTES_PER_PIXEL = 3 * 4
PIL_BYTES_PER_PIXEL = 56


def _is_count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_tiling(tile: int | str | None, tile_pad: int | None) -> None:
    """ValueError unless `tile` is a positive number of LR pixels, "auto" or None (the whole image) and
    `tile_pad` a non-negative number of LR pixels or None (the model's receptive radius)."""
    if tile is not None and tile != "auto" and not (_is_count(tile) and tile >= 1):
        raise ValueError(f"tile must be a positive number of LR pixels, 'auto' or None (whole), got {tile!r}")
    if tile_pad is not None and not (_is_count(tile_pad) and tile_pad >= 0):
        raise ValueError(f"tile_pad must be a non-negative number of LR pixels, got {tile_pad!r}")


def check_output_memory(
    shape: tuple[int, ...], scale: int, device: torch.device, bytes_per_pixel: int = RESULT_BYTES_PER_PIXEL
) -> None:
    """Raise MemoryError when the result of upscaling an (N, 3, H, W) image, `bytes_per_pixel` per output
    pixel, cannot fit in the free memory of `device`. The network itself runs in tiles sized from what is
    left (`auto_tile`)."""
    n, _, h, w = shape
    need = n * h * w * scale * scale * bytes_per_pixel
    free = available_memory(device)
    if need > free:
        raise MemoryError(
            f"upscaling {w}x{h} to {w * scale}x{h * scale} needs about {need / 2**30:.1f} GiB for the "
            f"result, but only {free / 2**30:.1f} GiB of memory is free: upscale a smaller image or free "
            "memory"
        )


def resolve_device(device: str | torch.device | None) -> torch.device | None:
    """`auto` -> cuda if available, else cpu; None stays None (use the model's device). Raises when CUDA is
    asked for and missing."""
    if device is None:
        return None
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {str(device)!r} asked for, but CUDA is not available: use --device cpu")
    return device


def _same_device(a: torch.device, b: torch.device) -> bool:
    if a.type != b.type:
        return False
    if a.type == "cuda":
        cur = torch.cuda.current_device()
        return (a.index if a.index is not None else cur) == (b.index if b.index is not None else cur)
    return True


def _oom_error(exc: BaseException, tile_h: int, tile_w: int, tiled: bool) -> torch.OutOfMemoryError:
    suggestion = max(16, min(tile_h, tile_w) // 2) if tiled else 256
    what = f"{tile_h}x{tile_w} LR tiles" if tiled else f"the whole {tile_h}x{tile_w} image (no tiling)"
    return torch.OutOfMemoryError(
        f"out of GPU memory upscaling {what}: use smaller tiles, e.g. --tile {suggestion} "
        f"(tile={suggestion} in Python), or --device cpu. [{str(exc).splitlines()[0] if str(exc) else ''}]"
    )


def _model_device(model: torch.nn.Module) -> torch.device:
    for tensor in model.parameters():
        return tensor.device
    return torch.device("cpu")  # e.g. an ONNX Runtime session wrapper without parameters


def _check_int8(model: SRModel, precision: str, device: str | torch.device | None) -> None:
    from .int8 import Int8Generator, check_int8_support

    if isinstance(model, Int8Generator) != (precision == "int8"):
        raise ValueError("precision int8 needs the int8 form of a model (srgan.int8.quantize(generator)), "
                         f"and an int8 model runs at precision int8 only (got {type(model).__name__}, "
                         f"{precision})")  # fmt: skip
    if precision == "int8":
        check_int8_support(resolve_device(device) or "cpu")


def upscale_tensor(
    model: SRModel,
    image: torch.Tensor,
    *,
    tile: int | str | None = None,
    tile_pad: int | None = None,
    precision: str = "fp32",
    device: str | torch.device | None = None,
    edge: str = "auto",
    on_tile: Callable[[int, int], None] | None = None,
) -> torch.Tensor:
    """The tensor path of `upscale`: float RGB (3, H, W) or (N, 3, H, W) in [0, 1] -> same layout, x scale.

    The result is float32 on the device of `image`; only one padded tile at a time lives on `device`.
    edge: what the network sees past the image's edges, one of EDGES ("zeros": the network as trained;
        "auto": "replicate" for images under SMALL_IMAGE pixels on a side, else "zeros").
    on_tile: called as on_tile(done, total) after each tile (progress of a big image).
    """
    if not isinstance(image, torch.Tensor):
        raise TypeError(f"image must be a torch.Tensor or a PIL image, got {type(image).__name__}")
    if not image.is_floating_point():
        raise TypeError(f"image must be a float tensor in [0, 1], got {image.dtype} (divide uint8 by 255)")
    if image.dim() not in (3, 4) or image.shape[-3] != 3:
        raise ValueError(f"image must be RGB (3, H, W) or (N, 3, H, W), got shape {tuple(image.shape)}")
    if image.shape[-1] < 1 or image.shape[-2] < 1 or image.numel() == 0:
        raise ValueError(f"image is empty: shape {tuple(image.shape)}")
    lo, hi = image.aminmax()
    if lo < -1e-3 or hi > 1 + 1e-3:
        raise ValueError(f"image values must be in [0, 1], got [{lo.item():.4g}, {hi.item():.4g}]")
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if model.training:
        raise ValueError("model is in training mode (BatchNorm would use batch statistics): call .eval()")
    _check_int8(model, precision, device)
    check_tiling(tile, tile_pad)
    if tile_pad is None:
        tile_pad = model.receptive_radius()
    if edge not in EDGES:
        raise ValueError(f"edge must be one of {', '.join(EDGES)}, got {edge!r}")

    model_device = _model_device(model)
    run_device = resolve_device(device) or model_device
    if not _same_device(run_device, model_device):
        model = copy.deepcopy(model).to(run_device)  # never move the caller's model
    dtype = PRECISIONS[precision]
    if dtype == torch.float16 and run_device.type != "cuda":
        raise ValueError("precision fp16 needs a CUDA device; on CPU use bf16 or fp32")
    if dtype == torch.bfloat16 and run_device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ValueError("this GPU does not support bf16: use fp16 or fp32")

    batched = image.dim() == 4
    lr_img = image if batched else image.unsqueeze(0)  # (3, H, W) -> (1, 3, H, W)
    n, _, h, w = lr_img.shape
    s = model.scale
    check_output_memory(lr_img.shape, s, image.device)
    if edge == "auto":
        edge = "replicate" if min(h, w) < SMALL_IMAGE else "zeros"
    # With edge="replicate" every tile gets its full context: the image is extended by tile_pad pixels.
    pad = tile_pad if edge == "replicate" else 0
    src = F.pad(lr_img, (pad, pad, pad, pad), mode="replicate") if pad else lr_img  # (N,3,H+2p,W+2p)
    if tile == "auto":
        tile = auto_tile(model, (h, w), batch=n, precision=precision, device=run_device, tile_pad=tile_pad)
    memory_format = torch.channels_last if is_channels_last(model) else torch.contiguous_format
    tile_h, tile_w = (h, w) if tile is None else (min(tile, h), min(tile, w))
    sr_img = torch.empty(n, 3, h * s, w * s, dtype=torch.float32, device=image.device)
    autocast = torch.autocast(run_device.type, dtype=dtype, enabled=dtype != torch.float32)
    total = math.ceil(h / tile_h) * math.ceil(w / tile_w)
    try:
        with torch.inference_mode(), autocast:
            for y0 in range(0, h, tile_h):
                y1 = min(y0 + tile_h, h)
                # the tile's rows in `src` (shifted by pad), with up to tile_pad rows of context each side
                py0, py1 = max(0, y0 + pad - tile_pad), min(h + 2 * pad, y1 + pad + tile_pad)
                for x0 in range(0, w, tile_w):
                    x1 = min(x0 + tile_w, w)
                    px0, px1 = max(0, x0 + pad - tile_pad), min(w + 2 * pad, x1 + pad + tile_pad)
                    lr_tile = src[:, :, py0:py1, px0:px1].to(run_device, torch.float32)
                    lr_tile = lr_tile.contiguous(memory_format=memory_format)
                    out = model(lr_tile).float()  # (N, 3, h', w') -> (N, 3, s*h', s*w'), in [-1, 1]
                    oy, ox = y0 + pad - py0, x0 + pad - px0  # where the tile starts inside its context
                    out = out[:, :, oy * s : (oy + y1 - y0) * s, ox * s : (ox + x1 - x0) * s]
                    sr_tile = signed_to_unit(out).clamp_(0, 1)
                    sr_img[:, :, y0 * s : y1 * s, x0 * s : x1 * s] = sr_tile.to(image.device)
                    if on_tile is not None:
                        on_tile((y0 // tile_h) * math.ceil(w / tile_w) + x0 // tile_w + 1, total)
    except torch.OutOfMemoryError as exc:
        if run_device.type == "cuda":
            torch.cuda.empty_cache()
        raise _oom_error(exc, tile_h, tile_w, tile is not None) from exc
    return sr_img if batched else sr_img[0]


COLOUR_FIXES = ("none", "rgb", "chroma")


def colour_fix(sr_img: torch.Tensor, lr_img: torch.Tensor, scale: int, mode: str = "rgb") -> torch.Tensor:
    """Give SR the input's low-frequency colour: sr + up(lr - down(sr)) (back-projection; down is bicubic
    with antialiasing, up is bicubic, both `torch.nn.functional.interpolate`, linear in the pixels and run on
    the image's device), on all RGB channels ("rgb") or only on Cb and Cr, luma untouched ("chroma"). What
    survives the x1/scale degradation then matches the input, so a mean-colour shift of the generator is
    undone while its high-frequency texture stays. (N, 3, H, W) or (3, H, W) float in [0, 1]; a new tensor."""
    if mode not in COLOUR_FIXES:
        raise ValueError(f"colour fix must be one of {', '.join(COLOUR_FIXES)}, got {mode!r}")
    if mode == "none":
        return sr_img
    single = sr_img.dim() == 3
    sr = sr_img[None] if single else sr_img  # (3, H, W) -> (1, 3, H, W)
    lr = (lr_img[None] if lr_img.dim() == 3 else lr_img).to(sr.device, sr.dtype)
    low = F.interpolate(sr, size=lr.shape[-2:], mode="bicubic", align_corners=False, antialias=True)
    delta = lr - low  # (N, 3, H/s, W/s): small
    if mode == "chroma":  # keep only the part of the correction that changes Cb and Cr, not Y
        # MATLAB rgb2ycbcr without its offsets: RGB -> (Y, Cb, Cr), all in [0, 1] units
        m = torch.tensor([Y_WEIGHTS, CB_WEIGHTS, CR_WEIGHTS], dtype=torch.float64, device=delta.device) / 255
        ycc = torch.einsum("cd,ndhw->nchw", m.to(delta.dtype), delta)
        ycc[:, 0] = 0
        delta = torch.einsum("cd,ndhw->nchw", torch.linalg.inv(m).to(delta.dtype), ycc)
    out = F.interpolate(delta, size=sr.shape[-2:], mode="bicubic", align_corners=False)  # (N, 3, H, W)
    out = out.add_(sr).clamp_(0, 1)
    return out[0] if single else out


def upscale_alpha(alpha: torch.Tensor, scale: int) -> torch.Tensor:
    """Alpha planes (..., H, W) in [0, 1] -> bicubic (MATLAB imresize) x scale, clamped to [0, 1]."""
    return imresize(alpha.float(), scale=scale).clamp_(0, 1)


def upscale(
    model: SRModel,
    image: torch.Tensor | Image.Image,
    *,
    tile: int | str | None = None,
    tile_pad: int | None = None,
    precision: str = "fp32",
    device: str | torch.device | None = None,
    edge: str = "auto",
    colour: str = "rgb",
    on_tile: Callable[[int, int], None] | None = None,
) -> torch.Tensor | Image.Image:
    """Super-resolve `image` with `model` (a Generator in eval mode, e.g. from `srgan.load_model`, or its
    fast inference form from `srgan.fast.prepare_for_inference`, or an `srgan.onnx_export.OnnxGenerator`:
    any `SRModel`).

    image: float32 RGB (3, H, W) or (N, 3, H, W) in [0, 1] -> the same layout, `model.scale` times larger,
        float32 in [0, 1], on the image's device. Or a PIL image -> a PIL image: RGB and palette images give
        RGB; alpha (RGBA, LA, P with transparency) is upscaled separately with bicubic and kept; grayscale
        and 16-bit grayscale come back as such; a matching ICC profile is kept in `.info["icc_profile"]`.
    tile: tile size in LR pixels (None: the whole image at once; "auto": the largest tile that fits in half
        the free memory of `device`, see `srgan.fast.auto_tile`). Memory on `device` is bounded by one tile.
    tile_pad: LR pixels of context read around each tile and cropped off its output; default
        `model.receptive_radius()`, which makes the tiled result equal the untiled one up to float error.
    precision: "fp32", "bf16" (autocast, CPU or CUDA), "fp16" (autocast, CUDA only) or "int8" (CPU with
        VNNI / AMX; `model` must be the int8 form from `srgan.int8.quantize`).
    device: "cpu", "cuda", "cuda:N", "auto" or None (the model's device). A model on another device is
        copied there; the caller's model is never moved.
    edge: "zeros" (the network as trained), "replicate" (the edge pixels repeated for `tile_pad` pixels
        around the image first: tiny images keep their colour) or "auto" (replicate only for images under
        SMALL_IMAGE pixels on a side, where zeros lose the colour); see EDGES.
    colour: "rgb" (default): the result's low frequencies set to the input's (`colour_fix`, back-projection
        bicubic down and up): undoes the shipped SRGAN's mean-colour shift; PSNR higher and LPIPS-Alex
        lower or equal on every set for srgan and srresnet (scripts/colour_fix.py); "chroma": only Cb/Cr;
        "none": the network's output as it is (what `srgan eval` scores).
    on_tile: called as on_tile(done, total) after each tile: progress of a big image.

    Raises on any failure (ValueError / TypeError for bad arguments; MemoryError when the result cannot fit
    in free memory; torch.OutOfMemoryError with a hint to use smaller tiles when the GPU runs out of memory).
    """
    kwargs = dict(tile=tile, tile_pad=tile_pad, precision=precision, device=device, edge=edge,
                  on_tile=on_tile)  # fmt: skip
    if colour not in COLOUR_FIXES:
        raise ValueError(f"colour must be one of {', '.join(COLOUR_FIXES)}, got {colour!r}")
    if isinstance(image, Image.Image):
        rgb, alpha, meta = pil_to_planes(image)
        check_output_memory(rgb[None].shape, model.scale, rgb.device, PIL_BYTES_PER_PIXEL)
        sr_rgb = colour_fix(upscale_tensor(model, rgb, **kwargs), rgb, model.scale, colour)
        sr_alpha = None if alpha is None else upscale_alpha(alpha, model.scale)
        return planes_to_pil(sr_rgb, sr_alpha, meta)
    if colour != "none" and isinstance(image, torch.Tensor) and image.dim() in (3, 4):
        shape = image.shape if image.dim() == 4 else image[None].shape
        check_output_memory(shape, model.scale, image.device, 2 * RESULT_BYTES_PER_PIXEL)  # result + fixed
    return colour_fix(upscale_tensor(model, image, **kwargs), image, model.scale, colour)
