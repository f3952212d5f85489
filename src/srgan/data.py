"""Training data: random HR crops of distinct images per batch, LR made by the paper's degradation.

Every sample is a pure function of (seed, step, position in batch), so a run resumed at step N sees exactly
the batches an uninterrupted run would, with any number of DataLoader workers or DDP ranks. `CropPlan` draws
which image, window and flips each sample gets, for this DataLoader path and the device path
(`srgan.device_data`) alike.
Images come out as LR in [0, 1] and HR in [-1, 1] (the paper's ranges at the model boundary).

Benchmark sets (Set5, Set14, BSD100 and the like) are folders with HR/ and optionally LR_x{scale}/: the
functions at the end find, check and read their image pairs.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset, Sampler
from tqdm import tqdm

from .imresize import DEGRADATIONS, bicubic_degrade
from .io import IMAGE_EXTENSIONS, list_images, pil_to_rgb, read_image, unit_to_signed

log = logging.getLogger(__name__)

MAX_UNREADABLE = 0.05  # the largest share of undecodable training images that is skipped rather than fatal


def find_images(dirs: tuple[str, ...] | list[str]) -> list[Path]:
    """All image files under the given folders (recursively), sorted for reproducibility."""
    files: list[Path] = []
    for d in dirs:
        d = Path(d)
        if not d.is_dir():
            raise FileNotFoundError(f"training folder not found: {d}")
        files += sorted(p for p in d.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
    return files


def decode_rgb(path: Path) -> np.ndarray:
    """A training image file -> (H, W, 3) uint8 RGB (any mode converted by `io.pil_to_rgb`)."""
    with Image.open(path) as img:
        return np.asarray(pil_to_rgb(img), dtype=np.uint8)


@dataclass(frozen=True)
class Crop:
    """Where one training sample is cut from: `image` indexes the dataset's files, (top, left) is the corner
    of the crop in pixels, and the crop is then mirrored left-right if `hflip` and upside down if `vflip`."""

    image: int
    top: int
    left: int
    hflip: bool
    vflip: bool


@functools.lru_cache(maxsize=4)  # one epoch at a time, two where a plan of many steps straddles epochs
def epoch_order(seed: int, epoch: int, n: int) -> np.ndarray:
    """(n,) the order in which `epoch` visits the n images: a permutation seeded by (seed, epoch).
    Read-only, since every caller shares the cached array."""
    order = np.random.default_rng([seed, epoch]).permutation(n)
    order.setflags(write=False)
    return order


@dataclass(frozen=True)
class CropPlan:
    """Which image, window and flips every training sample gets; the only place their random numbers are
    drawn, so that `TrainCrops` (DataLoader) and `srgan.device_data.DeviceCrops` cut bit-identical batches.

    A pure function of (seed, step, rank, position i in the batch) and the image sizes. Each epoch is a
    permutation of the images (`epoch_order`) cut into consecutive global batches of world_size * batch_size
    distinct images, rank r taking the r-th slice of each; the corner, then the flips, of sample i come from
    its own generator seeded by (seed, step, rank, i, 1). Any change to these draws changes every batch:
    checkpoints would no longer resume exactly, nor the README's models be retrained from their recipe
    (tests/test_data.py pins the crops of several configurations).
    """

    sizes: tuple[tuple[int, int], ...]  # (height, width) of each usable image, in file order
    crop_size: int
    batch_size: int
    seed: int = 0
    flips: bool = False
    rank: int = 0
    world_size: int = 1

    @property
    def steps_per_epoch(self) -> int:
        return len(self.sizes) // (self.batch_size * self.world_size)

    def images(self, step: int) -> np.ndarray:
        """(B,) image indices of `step` on this rank: distinct within the step, and across ranks."""
        epoch, b = divmod(step, self.steps_per_epoch)
        start = (b * self.world_size + self.rank) * self.batch_size
        return epoch_order(self.seed, epoch, len(self.sizes))[start : start + self.batch_size]

    def crops(self, step: int, positions: Iterable[int] | None = None) -> list[Crop]:
        """The crops of the samples at `positions` in the batch of `step` (default: all B of them)."""
        images, s = self.images(step), self.crop_size
        out = []
        for i in range(self.batch_size) if positions is None else positions:
            image = int(images[i])
            h, w = self.sizes[image]
            rng = np.random.default_rng([self.seed, step, self.rank, i, 1])
            top, left = int(rng.integers(0, h - s + 1)), int(rng.integers(0, w - s + 1))
            hflip = vflip = False
            if self.flips:  # drawn after the corner, hflip first
                hflip, vflip = bool(rng.random() < 0.5), bool(rng.random() < 0.5)
            out.append(Crop(image, top, left, hflip, vflip))
        return out


class TrainCrops(Dataset):
    """Random `crop_size` HR crops with their LR, indexed by k = step * batch_size + i.

    Within a batch the images are distinct: each epoch is a random permutation of the images (seeded by
    seed and epoch), cut into consecutive batches. With `world_size` > 1 (DDP), rank r takes its own slice
    of each global batch of world_size * batch_size distinct images. `crop_plan` (a `CropPlan`) says which
    image, window and flips each sample gets.
    Every image is decoded once when the dataset is made (kept in memory with `cache_images`). Images
    smaller than the crop are skipped with a warning; so are images that cannot be decoded (damaged or
    truncated files), each named in the log, as long as they are at most MAX_UNREADABLE of the files found;
    more than that stops before training starts (a wrong or damaged folder). `skipped` lists both kinds,
    `unreadable` the (path, reason) of the second.
    """

    def __init__(
        self,
        dirs: tuple[str, ...] | list[str],
        *,
        crop_size: int = 96,
        scale: int = 4,
        batch_size: int = 16,
        seed: int = 0,
        degradation: str = "bicubic",
        flips: bool = False,
        cache_images: bool = True,
        rank: int = 0,
        world_size: int = 1,
    ):
        if degradation not in DEGRADATIONS:
            raise ValueError(f"unknown degradation {degradation!r}; choose one of {', '.join(DEGRADATIONS)}")
        self.scale, self.batch_size, self.cache_images = scale, batch_size, cache_images
        self.degrade = DEGRADATIONS[degradation]
        self.files: list[Path] = []
        sizes: list[tuple[int, int]] = []  # (height, width) of each usable image
        self.skipped: list[Path] = []
        self.unreadable: list[tuple[Path, str]] = []
        self._cache: dict[int, np.ndarray] = {}
        found = find_images(dirs)
        for path in tqdm(found, desc="checking training images", unit="img", disable=None, leave=False):
            try:  # decoded whole once here, so that a damaged file cannot stop the run later
                arr = decode_rgb(path)
            except Exception as e:  # PIL raises many types for damaged files
                self.unreadable.append((path, str(e).splitlines()[0] if str(e) else type(e).__name__))
                self.skipped.append(path)
                continue
            h, w = arr.shape[:2]
            if w < crop_size or h < crop_size:
                self.skipped.append(path)
                continue
            if cache_images:
                self._cache[len(self.files)] = arr
            self.files.append(path)
            sizes.append((h, w))
        for path, why in self.unreadable:
            log.warning("skipping unreadable training image %s: %s", path, why)
        if len(self.unreadable) > MAX_UNREADABLE * len(found):
            raise ValueError(
                f"{len(self.unreadable)} of {len(found)} training images in {list(dirs)} cannot be decoded "
                f"(more than {MAX_UNREADABLE:.0%}; e.g. {self.unreadable[0][0]}: {self.unreadable[0][1]}): "
                "repair or remove them"
            )
        if self.skipped:
            log.warning("skipped %d training image(s): %d smaller than %dx%d, %d unreadable (e.g. %s)",
                        len(self.skipped), len(self.skipped) - len(self.unreadable), crop_size, crop_size,
                        len(self.unreadable), self.skipped[0])  # fmt: skip
        global_batch = batch_size * world_size
        if len(self.files) < global_batch:
            raise ValueError(
                f"{len(self.files)} usable training images in {list(dirs)}, fewer than one batch of "
                f"{global_batch} distinct images (batch_size x world_size)"
            )
        self.crop_plan = CropPlan(tuple(sizes), crop_size, batch_size, seed, flips, rank, world_size)
        self.steps_per_epoch = self.crop_plan.steps_per_epoch

    def __len__(self) -> int:  # samples are addressed by step; this is one epoch's worth
        return self.steps_per_epoch * self.batch_size

    def take_image(self, idx: int) -> np.ndarray:
        """The decoded pixels of image `idx`, handed over: removed from the cache (so that a caller that
        keeps them elsewhere, as `DeviceCrops` does, holds them once), decoded again if not cached."""
        arr = self._cache.pop(idx, None)
        return decode_rgb(self.files[idx]) if arr is None else arr

    def _image(self, idx: int) -> np.ndarray:
        arr = self._cache.get(idx)
        if arr is None:
            arr = decode_rgb(self.files[idx])
            if self.cache_images:
                self._cache[idx] = arr
        return arr

    def __getitem__(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        step, i = divmod(int(k), self.batch_size)
        c, s = self.crop_plan.crops(step, [i])[0], self.crop_plan.crop_size
        crop = self._image(c.image)[c.top : c.top + s, c.left : c.left + s]  # (S, S, 3) uint8
        if c.hflip:
            crop = crop[:, ::-1]
        if c.vflip:
            crop = crop[::-1, :]
        hr = torch.from_numpy(np.ascontiguousarray(crop)).permute(2, 0, 1).float().div_(255)  # (3, S, S)
        lr_img = self.degrade(hr, self.scale)  # (3, S, S) -> (3, S/4, S/4), in [0, 1]
        hr_img = unit_to_signed(hr)  # [0, 1] -> [-1, 1]
        return lr_img, hr_img


class StepSampler(Sampler[int]):
    """Yields sample indices k = step * batch_size + i for steps start_step .. total_steps - 1."""

    def __init__(self, start_step: int, total_steps: int, batch_size: int):
        self.start_step, self.total_steps, self.batch_size = start_step, total_steps, batch_size

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.start_step * self.batch_size, self.total_steps * self.batch_size))

    def __len__(self) -> int:
        return max(0, self.total_steps - self.start_step) * self.batch_size


# --- benchmark sets: a folder with HR/ and optionally LR_x{scale}/ ----------------------------------------

def check_data_dir(data_dir: str | Path) -> Path:
    """Raise FileNotFoundError (with a one-line message) unless `data_dir` has an HR/ folder of images."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise FileNotFoundError(f"data folder not found: {data_dir}")
    if not (data_dir / "HR").is_dir():
        raise FileNotFoundError(f"no HR/ folder inside {data_dir} (expected {data_dir}/HR/*.png)")
    if not list_images(data_dir / "HR"):
        raise FileNotFoundError(f"no images in {data_dir / 'HR'}")
    return data_dir


def check_set_dirs(dirs: Iterable[str | Path]) -> list[Path]:
    """`check_data_dir` on each folder; their names (the set names in tables) must be distinct."""
    dirs = [check_data_dir(d) for d in dirs]
    names = [d.name for d in dirs]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise ValueError(f"data set folder names must be distinct, got {', '.join(duplicated)} twice")
    return dirs


def list_pairs(data_dir: Path, scale: int) -> list[tuple[str, Path, Path | None]]:
    """(name, HR path, LR path or None) for every HR image; LR matched by file name (stem) in LR_x{scale}/."""
    hr_paths = list_images(data_dir / "HR")
    lr_dir = data_dir / f"LR_x{scale}"
    if not lr_dir.is_dir():
        return [(p.stem, p, None) for p in hr_paths]
    lr_by_stem = {p.stem: p for p in list_images(lr_dir)}
    missing = [p.name for p in hr_paths if p.stem not in lr_by_stem]
    if missing:
        raise FileNotFoundError(f"{lr_dir} lacks LR images for {len(missing)} HR images, e.g. {missing[0]}")
    return [(p.stem, p, lr_by_stem[p.stem]) for p in hr_paths]


# PIL modes with one colour channel (as io.pil_to_planes reads them)
GRAY_MODES = ("1", "L", "LA", "La", "I;16", "I;16B", "I;16L", "I")


def is_gray_file(path: str | Path) -> bool:
    """Whether an image file holds one colour channel (PIL mode L, LA, 1, I;16, I), read from its header."""
    with Image.open(path) as img:
        return img.mode in GRAY_MODES


def load_pair(hr_path: Path, lr_path: Path | None, scale: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(LR, HR) float RGB (3, h, w) in [0, 1]. Without an LR file, LR is MATLAB's bicubic x1/scale of HR,
    HR first cropped to a multiple of `scale` (top-left kept)."""
    hr_img = read_image(hr_path)
    if lr_path is not None:
        return read_image(lr_path), hr_img
    h, w = hr_img.shape[-2:]
    hr_img = hr_img[:, : h - h % scale, : w - w % scale]
    return bicubic_degrade(hr_img, scale), hr_img
