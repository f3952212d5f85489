import logging
from dataclasses import astuple

import pytest
import torch

from srgan.data import CropPlan, StepSampler, TrainCrops
from srgan.imresize import bicubic_degrade

# The crops (image, top, left, hflip, vflip) of the two samples of each of PINNED_STEPS, keyed by
# (seed, flips, world_size, rank), at crop_size 32 and batch_size 2 on make_images' default images; recorded
# from the code before CropPlan existed (by matching every HR sample of TrainCrops against every window and
# flip of every image, and checked equal to DeviceCrops.plan). They must never change: checkpoints resume on
# these draws, and the README's trained models are reproduced from them.
PINNED_STEPS = (0, 1, 2, 3, 4, 77)  # epochs of 4 steps at world_size 1 and of 2 at world_size 2
PINNED_CROPS = {
    (0, False, 1, 0): [
        (2, 4, 6, 0, 0), (4, 0, 5, 0, 0), (3, 7, 1, 0, 0), (6, 10, 0, 0, 0), (5, 1, 4, 0, 0), (0, 3, 3, 0, 0),
        (1, 3, 6, 0, 0), (7, 0, 0, 0, 0), (1, 1, 2, 0, 0), (3, 0, 5, 0, 0), (2, 2, 3, 0, 0), (4, 8, 7, 0, 0),
    ],
    (0, False, 2, 0): [
        (2, 4, 6, 0, 0), (4, 0, 5, 0, 0), (5, 9, 1, 0, 0), (0, 4, 0, 0, 0), (1, 0, 4, 0, 0), (3, 5, 3, 0, 0),
        (0, 3, 6, 0, 0), (4, 0, 0, 0, 0), (5, 2, 2, 0, 0), (2, 0, 5, 0, 0), (1, 1, 3, 0, 0), (2, 6, 7, 0, 0),
    ],
    (0, False, 2, 1): [
        (3, 4, 8, 0, 0), (6, 10, 1, 0, 0), (1, 4, 5, 0, 0), (7, 1, 1, 0, 0), (7, 0, 2, 0, 0), (6, 1, 0, 0, 0),
        (2, 2, 3, 0, 0), (5, 7, 7, 0, 0), (6, 10, 5, 0, 0), (0, 3, 2, 0, 0), (4, 7, 8, 0, 0), (7, 9, 2, 0, 0),
    ],
    (0, True, 1, 0): [
        (2, 4, 6, 1, 0), (4, 0, 5, 0, 0), (3, 7, 1, 0, 1), (6, 10, 0, 0, 0), (5, 1, 4, 1, 0), (0, 3, 3, 1, 0),
        (1, 3, 6, 0, 1), (7, 0, 0, 0, 1), (1, 1, 2, 1, 0), (3, 0, 5, 0, 1), (2, 2, 3, 1, 0), (4, 8, 7, 0, 1),
    ],
    (0, True, 2, 0): [
        (2, 4, 6, 1, 0), (4, 0, 5, 0, 0), (5, 9, 1, 0, 1), (0, 4, 0, 0, 0), (1, 0, 4, 1, 0), (3, 5, 3, 1, 0),
        (0, 3, 6, 0, 1), (4, 0, 0, 0, 1), (5, 2, 2, 1, 0), (2, 0, 5, 0, 1), (1, 1, 3, 1, 0), (2, 6, 7, 0, 1),
    ],
    (0, True, 2, 1): [
        (3, 4, 8, 0, 0), (6, 10, 1, 1, 0), (1, 4, 5, 0, 0), (7, 1, 1, 0, 0), (7, 0, 2, 0, 0), (6, 1, 0, 1, 0),
        (2, 2, 3, 0, 1), (5, 7, 7, 0, 0), (6, 10, 5, 1, 1), (0, 3, 2, 1, 1), (4, 7, 8, 1, 0), (7, 9, 2, 0, 0),
    ],
    (4, False, 1, 0): [
        (1, 5, 8, 0, 0), (2, 1, 7, 0, 0), (0, 1, 6, 0, 0), (7, 10, 3, 0, 0), (4, 7, 0, 0, 0), (5, 0, 8, 0, 0),
        (3, 5, 4, 0, 0), (6, 4, 5, 0, 0), (4, 8, 8, 0, 0), (5, 1, 1, 0, 0), (4, 2, 3, 0, 0), (0, 2, 6, 0, 0),
    ],
    (4, False, 2, 0): [
        (1, 5, 8, 0, 0), (2, 1, 7, 0, 0), (4, 2, 6, 0, 0), (5, 8, 3, 0, 0), (4, 7, 0, 0, 0), (5, 0, 8, 0, 0),
        (2, 5, 4, 0, 0), (7, 4, 5, 0, 0), (4, 8, 8, 0, 0), (0, 0, 1, 0, 0), (7, 3, 3, 0, 0), (4, 4, 6, 0, 0),
    ],
    (4, False, 2, 1): [
        (0, 1, 8, 0, 0), (7, 10, 2, 0, 0), (3, 6, 8, 0, 0), (6, 8, 4, 0, 0), (6, 5, 7, 0, 0), (1, 4, 5, 0, 0),
        (3, 4, 0, 0, 0), (0, 0, 6, 0, 0), (2, 1, 8, 0, 0), (5, 0, 6, 0, 0), (5, 7, 2, 0, 0), (6, 0, 4, 0, 0),
    ],
    (4, True, 1, 0): [
        (1, 5, 8, 0, 1), (2, 1, 7, 0, 1), (0, 1, 6, 1, 0), (7, 10, 3, 1, 1), (4, 7, 0, 0, 1), (5, 0, 8, 1, 1),
        (3, 5, 4, 0, 0), (6, 4, 5, 1, 1), (4, 8, 8, 1, 1), (5, 1, 1, 0, 0), (4, 2, 3, 1, 1), (0, 2, 6, 1, 0),
    ],
    (4, True, 2, 0): [
        (1, 5, 8, 0, 1), (2, 1, 7, 0, 1), (4, 2, 6, 1, 0), (5, 8, 3, 1, 1), (4, 7, 0, 0, 1), (5, 0, 8, 1, 1),
        (2, 5, 4, 0, 0), (7, 4, 5, 1, 1), (4, 8, 8, 1, 1), (0, 0, 1, 0, 0), (7, 3, 3, 1, 1), (4, 4, 6, 1, 0),
    ],
    (4, True, 2, 1): [
        (0, 1, 8, 1, 0), (7, 10, 2, 0, 0), (3, 6, 8, 0, 0), (6, 8, 4, 0, 0), (6, 5, 7, 1, 0), (1, 4, 5, 0, 0),
        (3, 4, 0, 0, 1), (0, 0, 6, 0, 1), (2, 1, 8, 0, 0), (5, 0, 6, 1, 0), (5, 7, 2, 1, 1), (6, 0, 4, 1, 1),
    ],
}  # fmt: skip


def test_crops_ranges_and_lr_made_by_the_degradation(tmp_path, caplog, make_images):
    make_images(tmp_path / "imgs")
    with caplog.at_level(logging.WARNING):
        ds = TrainCrops([str(tmp_path / "imgs")], crop_size=32, batch_size=4)
    assert len(ds.files) == 8 and [p.name for p in ds.skipped] == ["small.png"]
    assert "skipped 1 training image" in caplog.text
    lr_img, hr_img = ds[0]
    assert lr_img.shape == (3, 8, 8) and hr_img.shape == (3, 32, 32)
    assert lr_img.dtype == hr_img.dtype == torch.float32
    assert 0 <= lr_img.min() and lr_img.max() <= 1 and -1 <= hr_img.min() and hr_img.max() <= 1
    assert hr_img.min() < -0.5  # really in [-1, 1], not [0, 1]
    assert torch.equal(lr_img, bicubic_degrade((hr_img + 1) / 2))


def test_batches_hold_distinct_images_and_are_deterministic(tmp_path, make_images):
    make_images(tmp_path / "imgs")
    ds = TrainCrops([str(tmp_path / "imgs")], crop_size=32, batch_size=4, seed=3)
    assert ds.steps_per_epoch == 2
    for step in range(6):  # three epochs
        assert len(set(ds.crop_plan.images(step).tolist())) == 4
        assert [c.image for c in ds.crop_plan.crops(step)] == ds.crop_plan.images(step).tolist()
    again = TrainCrops([str(tmp_path / "imgs")], crop_size=32, batch_size=4, seed=3, cache_images=False)
    for k in (0, 5, 13, 22):
        assert all(torch.equal(a, b) for a, b in zip(ds[k], again[k], strict=True))
    other = TrainCrops([str(tmp_path / "imgs")], crop_size=32, batch_size=4, seed=4)
    assert not torch.equal(ds[0][1], other[0][1])


def test_ranks_take_disjoint_slices(tmp_path, make_images):
    make_images(tmp_path / "imgs")
    ranks = [TrainCrops([str(tmp_path / "imgs")], crop_size=32, batch_size=2, rank=r, world_size=2)
             for r in range(2)]  # fmt: skip
    for step in range(4):  # two epochs
        per_rank = [set(ds.crop_plan.images(step).tolist()) for ds in ranks]
        assert len(per_rank[0]) == len(per_rank[1]) == 2 and per_rank[0].isdisjoint(per_rank[1])


@pytest.mark.parametrize("key", list(PINNED_CROPS))
def test_crops_are_the_pinned_ones(tmp_path, make_images, key):
    seed, flips, world_size, rank = key
    make_images(tmp_path / "imgs")
    ds = TrainCrops([str(tmp_path / "imgs")], crop_size=32, batch_size=2, seed=seed, flips=flips, rank=rank,
                    world_size=world_size)  # fmt: skip
    pinned = PINNED_CROPS[key]
    assert [astuple(c) for step in PINNED_STEPS for c in ds.crop_plan.crops(step)] == pinned
    for k, (image, top, left, hflip, vflip) in enumerate(pinned):  # and the samples are cut from there
        crop = ds._image(image)[top : top + 32, left : left + 32]  # (32, 32, 3)
        crop = crop[:, ::-1] if hflip else crop
        crop = crop[::-1] if vflip else crop
        hr = torch.from_numpy(crop.copy()).permute(2, 0, 1).float().div(255) * 2 - 1  # (3, 32, 32)
        assert torch.equal(ds[PINNED_STEPS[k // 2] * 2 + k % 2][1], hr)
    # a pure function of its fields: a fresh plan, or one sample asked for alone, draws the same
    fresh = CropPlan(ds.crop_plan.sizes, 32, 2, seed=seed, flips=flips, rank=rank, world_size=world_size)
    assert fresh.crops(77) == ds.crop_plan.crops(77) == [*fresh.crops(77, [0]), *fresh.crops(77, [1])]


def test_sampler_resumes_at_a_step():
    assert list(StepSampler(2, 4, 3)) == [6, 7, 8, 9, 10, 11]
    assert len(StepSampler(5, 4, 3)) == 0


def test_errors(tmp_path, make_images):
    with pytest.raises(FileNotFoundError):
        TrainCrops([str(tmp_path / "missing")])
    make_images(tmp_path / "imgs", n=2)
    with pytest.raises(ValueError, match="fewer than one batch"):
        TrainCrops([str(tmp_path / "imgs")], crop_size=32, batch_size=4)
    with pytest.raises(ValueError, match="degradation"):
        TrainCrops([str(tmp_path / "imgs")], degradation="box")


def test_gaussian_degradation_and_flips(tmp_path, make_images):
    make_images(tmp_path / "imgs")
    ds = TrainCrops([str(tmp_path / "imgs")], crop_size=32, batch_size=2, degradation="gaussian", flips=True)
    lr_img, hr_img = ds[3]
    assert lr_img.shape == (3, 8, 8)
