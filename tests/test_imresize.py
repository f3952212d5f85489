import numpy as np
import pytest
import torch
from PIL import Image

from srgan.imresize import bicubic_degrade, cubic, gaussian_degrade, imresize
from srgan.io import list_images


def load_u8(path) -> torch.Tensor:
    arr = np.asarray(Image.open(path))
    t = torch.from_numpy(arr.copy())
    return t.permute(2, 0, 1) if t.dim() == 3 else t


@pytest.mark.parametrize("name, n_images", [("Set5", 5), ("Set14", 14), ("BSD100", 100)])
def test_reproduces_benchmark_lr_bit_for_bit(bench_dir, name, n_images):
    files = list_images(bench_dir / name / "HR")
    assert len(files) == n_images
    equal = total = 0
    for hr_path in files:
        hr = load_u8(hr_path)
        lr_ref = load_u8(bench_dir / name / "LR_x4" / hr_path.name)
        lr = imresize(hr, 0.25, quantize=True)
        assert lr.dtype == torch.uint8 and lr.shape == lr_ref.shape
        equal += int((lr == lr_ref).sum())
        total += lr_ref.numel()
    assert equal == total, f"{name}: {equal} of {total} pixels equal"


def test_bicubic_degrade_matches_uint8_path(bench_dir):
    hr_path = bench_dir / "Set5" / "HR" / "baby.png"
    hr01 = load_u8(hr_path).float() / 255
    lr_ref = load_u8(bench_dir / "Set5" / "LR_x4" / "baby.png")
    lr = bicubic_degrade(hr01[None])  # batched, float in [0, 1]
    assert lr.dtype == torch.float32 and lr.shape == (1, *lr_ref.shape)
    assert torch.equal(torch.floor(lr[0] * 255 + 0.5).to(torch.uint8), lr_ref)


def test_cubic_kernel_values():
    x = torch.tensor([0.0, 0.5, 1.0, 1.5, 2.0, 2.5], dtype=torch.float64)
    # Keys a = -0.5: k(0)=1, k(0.5)=0.5625, k(1)=0, k(1.5)=-0.0625, k(2)=0
    assert torch.allclose(cubic(x), torch.tensor([1, 0.5625, 0, -0.0625, 0, 0], dtype=torch.float64))


def test_constant_image_stays_constant_both_ways():
    img = torch.full((2, 3, 16, 20), 0.3)
    assert torch.allclose(imresize(img, 0.25), torch.full((2, 3, 4, 5), 0.3), atol=1e-6)
    assert torch.allclose(imresize(img, 4), torch.full((2, 3, 64, 80), 0.3), atol=1e-6)


def test_batch_equals_single_images_and_keeps_dtype():
    x = torch.rand(3, 3, 17, 13)
    batch = imresize(x, 0.5)
    assert batch.dtype == torch.float32 and batch.shape == (3, 3, 9, 7)
    for i in range(3):
        assert torch.allclose(batch[i], imresize(x[i], 0.5))


def test_upscale_interpolates_sample_points():
    # x4 upscaling with the bicubic kernel reproduces a linear ramp away from the borders
    ramp = torch.arange(16, dtype=torch.float64).repeat(4, 1)
    up = imresize(ramp, size=(16, 64))
    # output pixel 4i+1 (0-based) sits at input coordinate i - 0.125 (MATLAB: u = x/4 + 0.375, 1-based)
    centres = up[:, 1::4][:, 2:-2]
    assert torch.allclose(centres[0], torch.arange(2, 14, dtype=torch.float64) - 0.125, atol=1e-9)


def test_size_and_errors():
    assert imresize(torch.rand(1, 10, 12), size=(5, 3)).shape == (1, 5, 3)
    with pytest.raises(ValueError):
        imresize(torch.rand(4, 4))
    with pytest.raises(ValueError):
        imresize(torch.rand(4, 4), 0.5, size=(2, 2))
    with pytest.raises(ValueError, match="multiple"):
        bicubic_degrade(torch.rand(3, 10, 12))


def test_gaussian_degrade_option():
    hr = torch.rand(2, 3, 32, 24)
    lr = gaussian_degrade(hr)
    assert lr.shape == (2, 3, 8, 6) and lr.min() >= 0 and lr.max() <= 1
    assert torch.allclose(
        gaussian_degrade(torch.full((1, 3, 16, 16), 0.5)), torch.full((1, 3, 4, 4), 0.5), atol=3e-3
    )
