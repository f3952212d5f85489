import logging

import pytest
import torch

from srgan.data import StepSampler, TrainCrops
from srgan.imresize import bicubic_degrade


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
        ids = set()
        for i in range(4):
            epoch, b = divmod(step, ds.steps_per_epoch)
            ids.add(int(ds._permutation(epoch)[b * 4 + i]))
        assert len(ids) == 4
    again = TrainCrops([str(tmp_path / "imgs")], crop_size=32, batch_size=4, seed=3, cache_images=False)
    for k in (0, 5, 13, 22):
        assert all(torch.equal(a, b) for a, b in zip(ds[k], again[k], strict=True))
    other = TrainCrops([str(tmp_path / "imgs")], crop_size=32, batch_size=4, seed=4)
    assert not torch.equal(ds[0][1], other[0][1])


def test_ranks_take_disjoint_slices(tmp_path, make_images):
    make_images(tmp_path / "imgs")
    ranks = [TrainCrops([str(tmp_path / "imgs")], crop_size=32, batch_size=2, rank=r, world_size=2)
             for r in range(2)]  # fmt: skip
    per_rank = [{int(ds._permutation(0)[(0 * 2 + ds.rank) * 2 + i]) for i in range(2)} for ds in ranks]
    assert per_rank[0].isdisjoint(per_rank[1])


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
