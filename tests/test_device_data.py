import numpy as np
import pytest
import torch
from test_data import PINNED_CROPS, PINNED_STEPS

from srgan.checkpoint import load_checkpoint
from srgan.config import make_config
from srgan.data import TrainCrops
from srgan.device_data import DeviceCrops
from srgan.imresize import bicubic_degrade
from srgan.models import Generator
from srgan.train import train


def cpu_batch(ds: TrainCrops, step: int) -> tuple[torch.Tensor, torch.Tensor]:
    samples = [ds[step * ds.batch_size + i] for i in range(ds.batch_size)]
    return torch.stack([s[0] for s in samples]), torch.stack([s[1] for s in samples])


@pytest.mark.parametrize(
    "kw", [{}, {"flips": True}, {"flips": True, "degradation": "gaussian"}, {"rank": 1, "world_size": 2}]
)
def test_device_batches_equal_the_dataloader_batches(tmp_path, make_images, kw):
    make_images(tmp_path / "imgs")
    kw = dict(crop_size=32, batch_size=3, seed=5, **kw)
    if "world_size" in kw:
        kw["batch_size"] = 2
    ref = TrainCrops([str(tmp_path / "imgs")], **kw)
    dev = DeviceCrops([str(tmp_path / "imgs")], **kw, plan_steps=3)  # several plan chunks
    assert (
        dev.files == ref.files and dev.skipped == ref.skipped and dev.steps_per_epoch == ref.steps_per_epoch
    )
    assert dev.pixels.dtype == torch.uint8 and dev.pixels.numel() == sum(
        np.prod(ref._image(k).shape) for k in range(len(ref.files))
    )
    for step in [0, 1, 2, 3, 7, 2]:  # across epochs and chunks, and back
        lr_img, hr_img = dev.batch(step)
        lr_ref, hr_ref = cpu_batch(ref, step)
        assert lr_img.shape == lr_ref.shape == (kw["batch_size"], 3, 8, 8) and lr_img.dtype == torch.float32
        assert torch.equal(hr_img, hr_ref) and torch.equal(lr_img, lr_ref)
        assert 0 <= lr_img.min() and lr_img.max() <= 1 and -1 <= hr_img.min() and hr_img.max() <= 1
    assert [b[1].shape[0] for b in dev.batches(2, 5)] == [kw["batch_size"]] * 3


def test_exact_plans_are_the_pinned_crops(tmp_path, make_images):
    make_images(tmp_path / "imgs")
    for (seed, flips, world_size, rank), pinned in PINNED_CROPS.items():
        dev = DeviceCrops([str(tmp_path / "imgs")], crop_size=32, batch_size=2, seed=seed, flips=flips,
                          rank=rank, world_size=world_size)  # fmt: skip
        plans = np.concatenate([dev.plan(step) for step in PINNED_STEPS])  # (12, 5)
        assert plans.dtype == np.int64 and plans.tolist() == [list(row) for row in pinned]


def test_flips_happen_and_follow_the_plan(tmp_path, make_images):
    make_images(tmp_path / "imgs")
    dev = DeviceCrops([str(tmp_path / "imgs")], crop_size=32, batch_size=4, flips=True)
    plans = np.concatenate([dev.plan(step) for step in range(8)])
    assert 0 < plans[:, 3].mean() < 1 and 0 < plans[:, 4].mean() < 1  # both flips drawn, not always
    plan = torch.tensor([[0, 1, 2, 1, 0], [0, 1, 2, 0, 1], [0, 1, 2, 0, 0]])
    hflip, vflip, plain = dev.crops(plan)
    assert torch.equal(hflip, plain.flip(2)) and torch.equal(vflip, plain.flip(1))


def test_training_on_device_data_gives_the_same_run(tmp_path, make_images):
    data = make_images(tmp_path / "train")
    common = dict(train_dirs=(str(data),), num_blocks=1, channels=8, crop_size=32, batch_size=2, steps=3,
                  log_every=1, ckpt_every=3, tensorboard=False)  # fmt: skip
    a = load_checkpoint(train(make_config("srresnet-mse", out_dir=str(tmp_path / "a"), **common)))
    b = load_checkpoint(
        train(make_config("srresnet-mse", out_dir=str(tmp_path / "b"), data_on_device=True, **common))
    )
    assert all(torch.equal(a["generator"][k], b["generator"][k]) for k in a["generator"])
    fused = load_checkpoint(
        train(make_config("srresnet-mse", out_dir=str(tmp_path / "c"), fused_adam=True, **common))
    )
    # fused Adam: the same run up to float rounding. Conv biases right before a BN get only rounding-noise
    # gradients (BN cancels them), which Adam amplifies to +-lr steps; the function itself agrees.
    g_a, g_fused = (Generator(num_blocks=1, channels=8) for _ in range(2))
    g_a.load_state_dict(a["generator"])
    g_fused.load_state_dict(fused["generator"])
    x = torch.rand(2, 3, 8, 8)
    with torch.no_grad():
        assert (g_a.eval()(x) - g_fused.eval()(x)).abs().max() < 1e-4


def test_config_validates_compile_mode():
    with pytest.raises(ValueError, match="compile_mode"):
        make_config("srresnet-mse", compile_mode="fast")


def test_crops_drawn_on_the_device(tmp_path, make_images):
    make_images(tmp_path / "imgs")
    kw = dict(crop_size=32, batch_size=4, seed=1, flips=True)
    dev = DeviceCrops([str(tmp_path / "imgs")], **kw, exact_crops=False, plan_steps=4)
    exact = DeviceCrops([str(tmp_path / "imgs")], **kw)
    plans = torch.cat([dev.device_plan(chunk) for chunk in range(25)]).reshape(-1, 5)  # 100 steps
    assert torch.equal(plans[:16, 0].reshape(4, 4), torch.from_numpy(exact.image_indices(0, 4)))
    assert all(len(set(p[:, 0].tolist())) == 4 for p in plans.reshape(100, 4, 5))  # distinct images
    heights, widths = dev._heights[plans[:, 0]], dev._widths[plans[:, 0]]
    assert (plans[:, 1] >= 0).all() and (plans[:, 1] <= heights - 32).all()
    assert (plans[:, 2] >= 0).all() and (plans[:, 2] <= widths - 32).all()
    assert plans[:, 1].float().std() > 1 and plans[:, 2].float().std() > 1  # offsets spread out
    assert 0.35 < plans[:, 3].float().mean() < 0.65 and 0.35 < plans[:, 4].float().mean() < 0.65
    # step-addressed: any start step gives the same batch; conventions as the exact path
    again = DeviceCrops([str(tmp_path / "imgs")], **kw, exact_crops=False, plan_steps=4)
    lr_img, hr_img = dev.batch(6)
    assert torch.equal(again.batch(6)[1], hr_img) and torch.equal(dev.batch(6)[0], lr_img)
    assert lr_img.shape == (4, 3, 8, 8) and -1 <= hr_img.min() and hr_img.max() <= 1
    assert torch.equal(lr_img, bicubic_degrade((hr_img + 1) / 2))
    assert not torch.equal(hr_img, exact.batch(6)[1])
