"""Image I/O: the one place where dtype, range, channel order and mode change.

Everything past this module is float32 RGB, NCHW (or CHW for one image), in [0, 1].
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")


def list_images(folder: str | Path) -> list[Path]:
    """Image files directly inside `folder`, sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"not a folder: {folder}")
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())


def pil_to_rgb(img: Image.Image) -> Image.Image:
    """Any PIL mode (L, LA, P, RGBA, I;16, CMYK, ...) -> RGB. Alpha is dropped, 16-bit scaled to 8 bits."""
    if img.mode == "RGB":
        return img
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(img, dtype=np.float64)
        peak = 65535.0 if arr.max() > 255 or img.mode.startswith("I;16") else 255.0
        arr = np.clip(np.floor(arr / peak * 255 + 0.5), 0, 255).astype(np.uint8)
        return Image.fromarray(arr, "L").convert("RGB")
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    return img.convert("RGB")


def read_image(path: str | Path, *, exif_transpose: bool = True) -> torch.Tensor:
    """Read an image file as float32 RGB (3, H, W) in [0, 1]."""
    with Image.open(path) as img:
        img.load()
        if exif_transpose:
            img = ImageOps.exif_transpose(img)
        return pil_to_tensor(pil_to_rgb(img))


def pil_to_tensor(img: Image.Image) -> torch.Tensor:
    """8-bit PIL image (RGB or L) -> float32 (C, H, W) in [0, 1]."""
    arr = np.asarray(img, dtype=np.uint8)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div_(255)


def to_uint8(img: torch.Tensor) -> torch.Tensor:
    """[0, 1] float -> uint8, rounded half up (as MATLAB's im2uint8)."""
    return torch.floor(img.detach().float().clamp(0, 1) * 255 + 0.5).to(torch.uint8)


def tensor_to_pil(img: torch.Tensor) -> Image.Image:
    """float (C, H, W) or (1, C, H, W) in [0, 1] -> 8-bit PIL image (RGB for 3 channels, L for 1)."""
    if img.dim() == 4:
        if img.shape[0] != 1:
            raise ValueError(f"expected one image, got a batch of {img.shape[0]}")
        img = img[0]
    arr = to_uint8(img).permute(1, 2, 0).cpu().numpy()
    if arr.shape[2] == 1:
        return Image.fromarray(arr[:, :, 0], "L")
    return Image.fromarray(arr, "RGB")


def write_image(img: torch.Tensor, path: str | Path, **save_kwargs) -> None:
    """Save float (C, H, W) in [0, 1] as an 8-bit image file (format from the suffix)."""
    tensor_to_pil(img).save(path, **save_kwargs)
