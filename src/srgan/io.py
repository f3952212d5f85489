"""Image I/O: the one place where dtype, range, channel order and mode change; and atomic file writes.

Everything past this module is float32 RGB, NCHW (or CHW for one image), in [0, 1].
"""

from __future__ import annotations

import glob
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError


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


IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
# What `srgan upscale` takes from a folder: images, animated GIFs and videos (`srgan.video`)
MEDIA_EXTENSIONS = (*IMAGE_EXTENSIONS, ".gif", ".apng", ".mp4", ".mkv", ".webm", ".mov")


def list_images(folder: str | Path, extensions: tuple[str, ...] = IMAGE_EXTENSIONS) -> list[Path]:
    """Image files (files with one of `extensions`) directly inside `folder`, sorted by name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"not a folder: {folder}")
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in extensions and p.is_file())


def expand_inputs(specs: list[str]) -> tuple[list[Path], list[tuple[str, str]]]:
    """Command-line inputs -> (image files, [(spec, reason), ...] for those that gave nothing).

    A spec is a file (taken whatever its suffix), a folder (the images, animations and videos directly
    inside: MEDIA_EXTENSIONS)
    or a glob pattern (expanded here too, for shells that do not, each match then taken as a file or folder).
    An existing path is never read as a pattern. Files reached twice are listed once, in first-seen order.
    """
    files: list[Path] = []
    errors: list[tuple[str, str]] = []
    seen: set[Path] = set()

    def add(path: Path, spec: str) -> None:
        if path.is_dir():
            images = list_images(path, MEDIA_EXTENSIONS)
            if not images:
                errors.append((spec, f"no images in folder (looked for {', '.join(MEDIA_EXTENSIONS)})"))
            for image in images:
                add(image, spec)
        elif path.resolve() not in seen:
            seen.add(path.resolve())
            files.append(path)

    for spec in specs:
        path = Path(spec)
        if path.exists():
            add(path, spec)
        elif glob.has_magic(spec):
            matches = sorted(glob.glob(spec))
            if not matches:
                errors.append((spec, "no file matches this pattern"))
            for match in matches:
                add(Path(match), spec)
        else:
            errors.append((spec, "no such file or folder"))
    return files, errors


def gray_levels(img: Image.Image) -> tuple[np.ndarray, bool]:
    """A 16- or 32-bit integer grayscale image (mode I;16*, I) -> (values in [0, 1] as float64, whether it
    is read as 16-bit). I;16 is 16-bit; mode I (32-bit int) is read as 16-bit when it holds values above
    255, else as 8-bit. The one reading of such images, for `pil_to_rgb` and `pil_to_planes` alike."""
    arr = np.asarray(img).astype(np.float64)
    sixteen = img.mode.startswith("I;16") or arr.max(initial=0) > 255
    return np.clip(arr / (65535.0 if sixteen else 255.0), 0, 1), sixteen


def pil_to_rgb(img: Image.Image) -> Image.Image:
    """Any PIL mode (L, LA, P, RGBA, I;16, CMYK, ...) -> RGB. Alpha is dropped, 16-bit scaled to 8 bits."""
    if img.mode == "RGB":
        return img
    if img.mode.startswith("I;16") or img.mode == "I":
        gray, _ = gray_levels(img)
        arr = np.floor(gray * 255 + 0.5).astype(np.uint8)  # the rounding of uint8_levels
        return Image.fromarray(arr, "L").convert("RGB")
    if img.mode == "P" and "transparency" in img.info:
        img = img.convert("RGBA")
    return img.convert("RGB")


def read_image(path: str | Path, *, exif_transpose: bool = True) -> torch.Tensor:
    """Read an image file as float32 RGB (3, H, W) in [0, 1]. A missing file raises FileNotFoundError; an
    unreadable, truncated or damaged one a ValueError that names it."""
    try:
        with Image.open(path) as img:
            img.load()
            if exif_transpose:
                img = ImageOps.exif_transpose(img)
            return pil_to_tensor(pil_to_rgb(img))  # 8-bit levels, as metrics and training read images
    except FileNotFoundError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ValueError(f"{path}: cannot read the image ({reason})") from None


def pil_to_tensor(img: Image.Image) -> torch.Tensor:
    """8-bit PIL image (RGB or L) -> float32 (C, H, W) in [0, 1]."""
    arr = np.asarray(img, dtype=np.uint8)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).float().div_(255)


def uint8_levels(img: torch.Tensor, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """[0, 1] float -> the nearest of the uint8 levels 0..255, as floats of `dtype`: floor(x * 255 + 0.5)
    after clipping to [0, 1] (MATLAB's im2uint8 rounding). The one place this rounding is written."""
    return torch.floor(img.to(dtype).clamp(0, 1) * 255 + 0.5)


def signed_to_unit(img: torch.Tensor) -> torch.Tensor:
    """The generator's output range [-1, 1] -> [0, 1] (not clipped)."""
    return (img + 1) / 2


def unit_to_signed(img: torch.Tensor) -> torch.Tensor:
    """[0, 1] -> [-1, 1], the range of the HR targets and of the discriminator's inputs (paper, 3.2)."""
    return img * 2 - 1


def to_uint8(img: torch.Tensor) -> torch.Tensor:
    """[0, 1] float -> uint8, rounded half up (as MATLAB's im2uint8)."""
    return uint8_levels(img.detach(), torch.float32).to(torch.uint8)


def frames_to_tensor(frames: np.ndarray) -> torch.Tensor:
    """Video frames as uint8 RGB (N, H, W, 3) -> float32 (N, 3, H, W) in [0, 1]."""
    return torch.from_numpy(frames).permute(0, 3, 1, 2).float().div_(255)  # (N, H, W, 3) -> (N, 3, H, W)


def tensor_to_frames(img: torch.Tensor) -> np.ndarray:
    """float (N, 3, H, W) in [0, 1] -> uint8 RGB (N, H, W, 3) video frames (rounded as `to_uint8`)."""
    return to_uint8(img).permute(0, 2, 3, 1).cpu().numpy()  # (N, 3, H, W) -> (N, H, W, 3)


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


# --- Whole images with what must survive a round trip (used by `srgan upscale`) ---------------------------

# ITU-R BT.601 luma, as PIL's convert("L"): how an RGB result becomes one channel again.
LUMA_WEIGHTS = (0.299, 0.587, 0.114)
_ICC_SPACE = {"RGB": b"RGB ", "GRAY": b"GRAY"}  # ICC header bytes 16:20, the profile's data colour space


@dataclass(frozen=True)
class ImageMeta:
    """What a loaded image carries besides its RGB pixels, so that its result can be saved like it.

    source_mode: PIL mode of the file (after EXIF rotation), for messages.
    gray: the source had one colour channel (1, L, LA, I;16, I): the result is saved as one channel.
    has_alpha: the source had an alpha channel (RGBA, LA, PA, or P with transparency).
    bit_depth: 8 or 16 bits per channel for the saved result (16 only for 16-bit grayscale).
    icc_profile: the embedded ICC profile, kept when it describes the saved colour space (RGB or gray).
    """

    source_mode: str
    gray: bool = False
    has_alpha: bool = False
    bit_depth: int = 8
    icc_profile: bytes | None = None

    @property
    def out_mode(self) -> str:
        """PIL mode of the saved result: RGB, RGBA, L, LA or I;16."""
        if self.gray:
            if self.bit_depth == 16:
                return "I;16"
            return "LA" if self.has_alpha else "L"
        return "RGBA" if self.has_alpha else "RGB"


# The largest input `open_image` decodes by default: 64 megapixels passes every camera photo of today (a
# 61 MP full-frame sensor is 9504 x 6336) and refuses decompression bombs, small files that declare a huge
# size (a 97 KB PNG can declare 10000 x 10000). Its x4 result is 1 gigapixel.
MAX_PIXELS = 64_000_000


def image_size(path: str | Path) -> tuple[int, int]:
    """(width, height) from an image file's header, no pixel decoded; ValueError if PIL cannot identify it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            with Image.open(path) as img:
                return img.size
        except UnidentifiedImageError:
            raise ValueError("not an image, or a format PIL cannot read") from None
        except Image.DecompressionBombError:
            limit = 2 * Image.MAX_IMAGE_PIXELS / 1e6
            raise ValueError(f"the image declares more than {limit:.0f} megapixels: refused") from None


def open_image(path: str | Path, *, max_pixels: int | None = MAX_PIXELS) -> Image.Image:
    """Open an image file, fully loaded and turned upright by its EXIF Orientation tag (the ICC profile
    stays in `.info["icc_profile"]`; an animation's frame count in `.info["n_frames"]`, only its first frame
    is loaded). The size declared in the header is checked against `max_pixels` before any pixel is decoded
    (None: no limit). Raises ValueError for files PIL cannot identify or that are over the limit, OSError
    for truncated or unreadable ones."""
    with warnings.catch_warnings():  # our own limit replaces PIL's DecompressionBombWarning
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            img = Image.open(path)
        except UnidentifiedImageError:
            raise ValueError("not an image, or a format PIL cannot read") from None
        except Image.DecompressionBombError:
            raise ValueError(
                f"the image declares more than {2 * Image.MAX_IMAGE_PIXELS / 1e6:.0f} megapixels: refused "
                "before decoding (a decompression bomb, or far larger than a photo)"
            ) from None
        with img:
            w, h = img.size
            if max_pixels is not None and w * h > max_pixels:
                raise ValueError(
                    f"{w}x{h} is {w * h / 1e6:.1f} megapixels, over the limit of {max_pixels / 1e6:g} "
                    "(refused before decoding; raise it with --max-pixels, or max_pixels= in Python)"
                )
            # animations only (GIF, APNG, WebP): a camera's MPO JPEG or a multi-page TIFF is not one
            animated = getattr(img, "is_animated", False) and img.format in ("GIF", "PNG", "WEBP")
            n_frames = getattr(img, "n_frames", 1) if animated else 1
            img.load()
            out = ImageOps.exif_transpose(img)  # a loaded copy, rotated if the tag says so
    out.info["n_frames"] = n_frames
    return out


def _icc_for(icc: bytes | None, gray: bool) -> bytes | None:
    """Keep an ICC profile only if it describes the colour space we save (a CMYK one would be wrong)."""
    if not icc or len(icc) < 20:
        return None
    return icc if icc[16:20] == _ICC_SPACE["GRAY" if gray else "RGB"] else None


def pil_to_planes(img: Image.Image) -> tuple[torch.Tensor, torch.Tensor | None, ImageMeta]:
    """Any supported PIL image -> (rgb (3, H, W), alpha (1, H, W) or None, meta), float32 in [0, 1].

    Grayscale is repeated to three channels, palettes are expanded, 16-bit grayscale keeps its 16 bits
    (scaled by 65535), other colour spaces (CMYK, YCbCr, LAB, ...) are converted naively by PIL.
    """
    mode = img.mode
    icc = img.info.get("icc_profile")
    if mode == "F":
        raise ValueError("unsupported image mode 'F' (32-bit float grayscale has no defined range)")
    if mode.startswith("I;16") or mode == "I":
        levels, sixteen = gray_levels(img)
        gray = torch.from_numpy(levels).float()[None]  # (H, W) -> (1, H, W)
        meta = ImageMeta(mode, gray=True, bit_depth=16 if sixteen else 8, icc_profile=_icc_for(icc, True))
        return gray.expand(3, -1, -1).contiguous(), None, meta
    if mode in ("1", "L", "LA", "La"):
        has_alpha = mode in ("LA", "La")
        planes = pil_to_tensor(img.convert("LA" if has_alpha else "L"))  # (1 or 2, H, W)
        alpha = planes[1:2] if has_alpha else None
        meta = ImageMeta(mode, gray=True, has_alpha=has_alpha, icc_profile=_icc_for(icc, True))
        return planes[0:1].expand(3, -1, -1).contiguous(), alpha, meta
    has_alpha = "A" in img.getbands() or "a" in img.getbands() or (mode == "P" and "transparency" in img.info)
    planes = pil_to_tensor(img.convert("RGBA" if has_alpha else "RGB"))  # (3 or 4, H, W)
    alpha = planes[3:4] if has_alpha else None
    meta = ImageMeta(mode, has_alpha=has_alpha, icc_profile=_icc_for(icc, False))
    return planes[:3].contiguous(), alpha, meta


def planes_to_pil(rgb: torch.Tensor, alpha: torch.Tensor | None, meta: ImageMeta) -> Image.Image:
    """(rgb (3, H, W), alpha (1, H, W) or None) in [0, 1] -> PIL image in `meta.out_mode`, with the ICC
    profile in `.info`. The inverse of `pil_to_planes` (at any size)."""
    if rgb.dim() != 3 or rgb.shape[0] != 3:
        raise ValueError(f"expected rgb of shape (3, H, W), got {tuple(rgb.shape)}")
    rgb = rgb.detach().float().cpu().clamp(0, 1)
    if meta.has_alpha and (alpha is None or alpha.shape[-2:] != rgb.shape[-2:]):
        raise ValueError(f"{meta.source_mode} image needs an alpha plane of size {tuple(rgb.shape[-2:])}")
    if meta.gray:
        weights = torch.tensor(LUMA_WEIGHTS).view(3, 1, 1)
        gray = (rgb * weights).sum(0).clamp(0, 1)  # (3, H, W) -> (H, W)
        if meta.bit_depth == 16:
            arr = torch.floor(gray * 65535 + 0.5).to(torch.int32).numpy().astype(np.uint16)
            out = Image.fromarray(arr)  # uint16 (H, W) -> mode I;16
        elif meta.has_alpha:
            arr = to_uint8(torch.stack([gray, alpha[0].float().cpu()])).permute(1, 2, 0).numpy()
            out = Image.fromarray(arr, "LA")
        else:
            out = Image.fromarray(to_uint8(gray).numpy(), "L")
    elif meta.has_alpha:
        rgba = torch.cat([rgb, alpha.float().cpu()])  # (3, H, W) + (1, H, W) -> (4, H, W)
        out = Image.fromarray(to_uint8(rgba).permute(1, 2, 0).numpy(), "RGBA")
    else:
        out = tensor_to_pil(rgb)
    if meta.icc_profile:
        out.info["icc_profile"] = meta.icc_profile
    return out


def save_png(img: Image.Image, path: str | Path) -> None:
    """Write a PIL image as PNG (whatever the suffix of `path`), embedding its ICC profile if it has one."""
    kwargs = {}
    if img.info.get("icc_profile"):
        kwargs["icc_profile"] = img.info["icc_profile"]
    img.save(path, format="PNG", **kwargs)
