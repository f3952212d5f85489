"""Training batches made on the training device: images decoded once, kept there as packed uint8.

`DeviceCrops` gives exactly the batches of `srgan.data.TrainCrops` (same files, the same `CropPlan` of images,
offsets and flips, same MATLAB bicubic degradation), but builds each batch with a handful of kernels on the
device: one gather of all B crops from the packed pixels, a cast, and `bicubic_degrade` on the whole batch.
The only host work is drawing the crop offsets, done for `plan_steps` steps at a time and uploaded as one
small tensor (no per-step copies). Drawing them exactly as the DataLoader path does costs numpy about 0.55 ms
of host time per step at batch 16 (one seeded generator per sample; measured on this CPU). `exact_crops=False`
draws them on the device instead (torch's generator, seeded per chunk of `plan_steps` steps from (seed, chunk,
rank), so resuming at any step is still exact): the same images per batch and the same distribution of offsets
and flips, but not the same offsets as the DataLoader path, and no per-step host work at all.

Memory: every training image's pixels live on the device (H x W x 3 bytes each: DIV2K's 800 HR images take
about 5.6 GB). For data that does not fit, use the DataLoader path (`data_on_device=False`, the default).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from .data import CropPlan, TrainCrops
from .imresize import DEGRADATIONS

log = logging.getLogger(__name__)


class DeviceCrops:
    """Step-addressed training batches built on `device` (see the module docstring).

    batch(step) -> (lr_img (B, 3, S/s, S/s) in [0, 1], hr_img (B, 3, S, S) in [-1, 1]), float32 on `device`,
    equal to stacking `TrainCrops(...)[step * B + i]` for i < B. `batches(start, end)` iterates steps.
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
        rank: int = 0,
        world_size: int = 1,
        device: str | torch.device = "cpu",
        plan_steps: int = 256,
        exact_crops: bool = True,
    ):
        # The CPU dataset is the source of truth for which files are used and how samples are addressed.
        self.index = TrainCrops(
            dirs, crop_size=crop_size, scale=scale, batch_size=batch_size, seed=seed, degradation=degradation,
            flips=flips, cache_images=True, rank=rank, world_size=world_size,
        )  # fmt: skip
        self.files: list[Path] = self.index.files
        self.skipped: list[Path] = self.index.skipped
        self.crop_plan: CropPlan = self.index.crop_plan
        self.steps_per_epoch = self.index.steps_per_epoch
        self.crop_size, self.scale, self.batch_size = crop_size, scale, batch_size
        self.degrade = DEGRADATIONS[degradation]
        self.device = torch.device(device)
        self.plan_steps, self.exact_crops = plan_steps, exact_crops

        # sizes from the dataset's check of every image, so that the pixels are allocated once
        self.heights = np.array([h for h, _ in self.crop_plan.sizes], dtype=np.int64)
        self.widths = np.array([w for _, w in self.crop_plan.sizes], dtype=np.int64)
        nbytes = self.widths * self.heights * 3
        offsets = np.concatenate([[0], np.cumsum(nbytes)[:-1]])
        self.pixels = torch.empty(int(nbytes.sum()), dtype=torch.uint8, device=self.device)
        for k, path in enumerate(self.files):  # the pixels the dataset decoded when it checked each image
            arr = np.require(self.index.take_image(k), requirements="W")  # writable, as torch wants
            if arr.shape[:2] != (self.heights[k], self.widths[k]):
                raise ValueError(f"{path}: decoded size {arr.shape[:2]} changed since it was checked")
            self.pixels[offsets[k] : offsets[k] + nbytes[k]].copy_(torch.from_numpy(arr.reshape(-1)))
        self.offsets = torch.from_numpy(offsets).to(self.device)
        self.row_bytes = torch.from_numpy(self.widths * 3).to(self.device)
        self._heights = torch.from_numpy(self.heights).to(self.device)
        self._widths = torch.from_numpy(self.widths).to(self.device)
        ar = torch.arange(crop_size, device=self.device)
        self._ar, self._ar_rev = ar, crop_size - 1 - ar
        self._channels = torch.arange(3, device=self.device)
        log.info("%d training images on %s: %.1f MB of uint8 pixels", len(self.files), self.device,
                 self.pixels.numel() / 1e6)  # fmt: skip
        self._plan_start, self._plan = None, None

    def __len__(self) -> int:
        return self.steps_per_epoch * self.batch_size

    def plan(self, step: int) -> np.ndarray:
        """(B, 5) int64: image index, top, left, hflip, vflip of each sample of `step`: the crops
        `TrainCrops.__getitem__` cuts, from the same `CropPlan`."""
        crops = self.crop_plan.crops(step)
        return np.array([(c.image, c.top, c.left, c.hflip, c.vflip) for c in crops], dtype=np.int64)

    def image_indices(self, start: int, n: int) -> np.ndarray:
        """(n, B) image indices of steps start .. start + n - 1 (the DataLoader path's permutation)."""
        return np.stack([self.crop_plan.images(step) for step in range(start, start + n)]).astype(np.int64)

    def device_plan(self, chunk: int) -> torch.Tensor:
        """(plan_steps, B, 5) plan of steps chunk * plan_steps ..., with offsets and flips drawn on the device
        from a generator seeded by (seed, chunk, rank)."""
        idx = torch.from_numpy(self.image_indices(chunk * self.plan_steps, self.plan_steps)).to(self.device)
        p = self.crop_plan
        seed = int(np.random.SeedSequence([p.seed, chunk, p.rank, 2]).generate_state(1, np.uint64)[0])
        gen = torch.Generator(device=self.device).manual_seed(seed >> 1)
        u = torch.rand(*idx.shape, 4, generator=gen, device=self.device, dtype=torch.float64)
        top = (u[..., 0] * (self._heights[idx] - self.crop_size + 1)).long()
        left = (u[..., 1] * (self._widths[idx] - self.crop_size + 1)).long()
        flips = (u[..., 2:] < 0.5).long() if p.flips else torch.zeros_like(u[..., 2:], dtype=torch.long)
        return torch.cat([idx[..., None], top[..., None], left[..., None], flips], dim=-1)

    def _plans(self, step: int) -> torch.Tensor:
        """The device-side plan of `step`, from a chunk of `plan_steps` steps made at once."""
        if self._plan_start is None or not (0 <= step - self._plan_start < self.plan_steps):
            if self.exact_crops:
                chunk = np.stack([self.plan(t) for t in range(step, step + self.plan_steps)])
                self._plan = torch.from_numpy(chunk).to(self.device, non_blocking=True)
                self._plan_start = step
            else:  # chunks aligned to multiples of plan_steps: the same plan whatever step a run starts at
                self._plan_start = step - step % self.plan_steps
                self._plan = self.device_plan(self._plan_start // self.plan_steps)
        return self._plan[step - self._plan_start]

    def crops(self, plan: torch.Tensor) -> torch.Tensor:
        """uint8 HR crops (B, 3, S, S) for a (B, 5) device plan: one gather from the packed pixels."""
        idx, top, left, hflip, vflip = plan.unbind(1)
        rows = torch.where(vflip[:, None].bool(), self._ar_rev, self._ar) + top[:, None]  # (B, S)
        cols = torch.where(hflip[:, None].bool(), self._ar_rev, self._ar) + left[:, None]  # (B, S)
        base = self.offsets[idx]  # (B,)
        flat = (
            base[:, None, None, None]
            + rows[:, :, None, None] * self.row_bytes[idx][:, None, None, None]
            + cols[:, None, :, None] * 3
            + self._channels
        )  # (B, S, S, 3) byte addresses
        return self.pixels[flat].permute(0, 3, 1, 2)  # (B, S, S, 3) -> (B, 3, S, S)

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        hr = self.crops(self._plans(step)).float().div_(255)  # (B, 3, S, S) in [0, 1]
        lr_img = self.degrade(hr, self.scale)  # (B, 3, S, S) -> (B, 3, S/s, S/s)
        return lr_img, hr.mul_(2).sub_(1)  # HR [0, 1] -> [-1, 1]

    def batches(self, start_step: int, total_steps: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for step in range(start_step, total_steps):
            yield self.batch(step)
