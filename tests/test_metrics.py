"""Golden values for srgan.metrics: hand-computed cases, an independent SciPy SSIM. (Published figures:
SelfExSR's per-image bicubic table is reproduced by the `matlab` protocol in test_protocols.py.)"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.signal import correlate2d

from srgan.metrics import psnr, quantize_uint8, rgb_to_y, ssim


def gray(value: float, h: int = 24, w: int = 24) -> torch.Tensor:
    """(3, h, w) image of one uint8 level `value` (0-255) in [0, 1]."""
    return torch.full((3, h, w), value / 255)


def random_image(h: int, w: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (3, h, w), generator=g).float() / 255


def test_rgb_to_y_matches_matlab_rgb2ycbcr():
    img = torch.tensor([[0.0, 1.0, 1.0, 0.0, 0.0], [0.0, 1.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.0, 0.0, 1.0]])
    y = rgb_to_y(img.view(1, 3, 1, 5))
    assert y.shape == (1, 1, 1, 5) and y.dtype == torch.float64
    # black, white, pure R, G, B: 16 + 65.481 / 128.553 / 24.966; white is 16 + 219 = 235
    assert y.flatten().tolist() == pytest.approx([16.0, 235.0, 81.481, 144.553, 40.966], abs=1e-12)
    # grayscale arrives as three equal channels: Y = 16 + 219 g, not rounded
    level = torch.full((3, 2, 2), 100 / 255, dtype=torch.float64)
    assert rgb_to_y(level).flatten()[0].item() == pytest.approx(16 + 219 * 100 / 255, abs=1e-12)
    with pytest.raises(ValueError, match="RGB"):
        rgb_to_y(torch.zeros(1, 1, 4, 4))


def test_psnr_constant_offset():
    hr_img, sr_img = gray(100), gray(105)
    # RGB: every value differs by 5 levels -> 20 log10(255 / 5)
    assert psnr(sr_img, hr_img, y_channel=False) == pytest.approx(20 * math.log10(255 / 5), abs=1e-10)
    # Y: a 5-level gray step is 5 * 219 / 255 in Y
    expected_y = 20 * math.log10(255 / (5 * 219 / 255))
    assert psnr(sr_img, hr_img) == pytest.approx(expected_y, abs=1e-10)
    assert psnr(hr_img, hr_img) == math.inf


def test_psnr_one_pixel_and_border_crop():
    hr_img = gray(50, 20, 24)
    sr_img = hr_img.clone()
    sr_img[:, 10, 11] += 10 / 255  # one interior pixel, 10 levels in R, G and B
    # with a 4-pixel border removed, 12 x 16 pixels are scored; Y error = 10 * 219 / 255 on one of them
    mse = (10 * 219 / 255) ** 2 / (12 * 16)
    assert psnr(sr_img, hr_img) == pytest.approx(10 * math.log10(255**2 / mse), abs=1e-10)
    assert psnr(sr_img, hr_img, crop_border=0) == pytest.approx(
        10 * math.log10(255**2 * 20 * 24 / (10 * 219 / 255) ** 2)
    )

    # differences only inside the border do not count
    framed = hr_img.clone()
    framed[:, :4] = 1.0
    framed[:, :, -4:] = 0.0
    assert psnr(framed, hr_img) == math.inf
    assert ssim(framed, hr_img) == 1.0
    assert psnr(framed, hr_img, crop_border=0) < 20
    assert ssim(framed, hr_img, crop_border=0) < 0.9
    assert psnr(framed, hr_img, crop_border=3) < 30


def test_rounding_to_uint8_comes_first():
    hr_img = gray(100)
    # 0.4 of a level off rounds back to the same uint8 image: a perfect score
    assert psnr(hr_img + 0.4 / 255, hr_img) == math.inf
    assert ssim(hr_img - 0.4 / 255, hr_img) == 1.0
    # 0.6 of a level rounds to the next level: exactly the one-level PSNR, not the 0.6-level one
    one_level = 20 * math.log10(255 / 1)
    assert psnr(hr_img + 0.6 / 255, hr_img, y_channel=False) == pytest.approx(one_level, abs=1e-10)
    # HR is rounded too, and values outside [0, 1] are clipped
    assert psnr(hr_img, hr_img + 0.3 / 255) == math.inf
    assert psnr(torch.full((3, 24, 24), 1.7), gray(255)) == math.inf
    values = torch.tensor([0.5 / 255, 1.49 / 255, 254.5 / 255, -0.1, 1.2], dtype=torch.float64)
    assert (quantize_uint8(values) * 255).tolist() == pytest.approx([1, 1, 255, 0, 255], abs=1e-9)


def test_ssim_identical_and_constant_images():
    img = random_image(24, 20, seed=1)
    assert ssim(img, img) == pytest.approx(1.0, abs=1e-12)
    # two constant images a, b: no variance, so SSIM = (2ab + C1) / (a^2 + b^2 + C1), C1 = (0.01 * 255)^2
    c1 = (0.01 * 255) ** 2
    expected = (2 * 100 * 110 + c1) / (100**2 + 110**2 + c1)
    assert ssim(gray(110), gray(100), y_channel=False) == pytest.approx(expected, abs=1e-12)
    ya, yb = 16 + 219 * 100 / 255, 16 + 219 * 110 / 255
    assert ssim(gray(110), gray(100)) == pytest.approx((2 * ya * yb + c1) / (ya**2 + yb**2 + c1), abs=1e-12)


def reference_ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Independent transcription of Wang et al.'s ssim_index.m (2-D window, scipy 'valid' correlation)."""
    t = np.arange(11) - 5.0
    xx, yy = np.meshgrid(t, t)
    window = np.exp(-(xx**2 + yy**2) / (2 * 1.5**2))  # fspecial('gaussian', 11, 1.5)
    window /= window.sum()
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2

    def filt(x):
        return correlate2d(x, window, mode="valid")

    mu1, mu2 = filt(a), filt(b)
    s1, s2, s12 = filt(a * a) - mu1**2, filt(b * b) - mu2**2, filt(a * b) - mu1 * mu2
    ssim_map = ((2 * mu1 * mu2 + c1) * (2 * s12 + c2)) / ((mu1**2 + mu2**2 + c1) * (s1 + s2 + c2))
    return float(ssim_map.mean())


def y_numpy(img: torch.Tensor) -> np.ndarray:
    """Y of a (3, H, W) [0, 1] image written out by hand in NumPy."""
    rgb = np.floor(img.double().numpy() * 255 + 0.5)
    return 16 + (65.481 * rgb[0] + 128.553 * rgb[1] + 24.966 * rgb[2]) / 255


def test_ssim_and_psnr_match_an_independent_numpy_implementation():
    hr_img = random_image(30, 27, seed=2)
    noise = torch.randn(3, 30, 27, generator=torch.Generator().manual_seed(3)) * 0.05
    sr_img = (hr_img + noise).clamp(0, 1)
    a, b = y_numpy(sr_img)[4:-4, 4:-4], y_numpy(hr_img)[4:-4, 4:-4]
    assert ssim(sr_img, hr_img) == pytest.approx(reference_ssim(a, b), abs=1e-12)
    assert psnr(sr_img, hr_img) == pytest.approx(10 * np.log10(255**2 / np.mean((a - b) ** 2)), abs=1e-10)


def test_batches_give_per_image_tensors_single_images_floats():
    hr = torch.stack([random_image(20, 20, seed=s) for s in (4, 5)])
    sr = hr.clone()
    sr[1] = (sr[1] + 3 / 255).clamp(0, 1)
    for metric in (psnr, ssim):
        batch = metric(sr, hr)
        assert isinstance(batch, torch.Tensor) and batch.shape == (2,) and batch.dtype == torch.float64
        singles = [metric(sr[i], hr[i]) for i in range(2)]
        assert all(isinstance(v, float) for v in singles)
        assert batch.tolist() == pytest.approx(singles, abs=1e-12)
    assert psnr(sr, hr)[0] == math.inf


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="differ"):
        psnr(gray(1, 16, 16), gray(1, 16, 17))
    with pytest.raises(ValueError, match="too small"):
        psnr(gray(1, 8, 8), gray(1, 8, 8))
    with pytest.raises(ValueError, match="window"):
        ssim(gray(1, 16, 16), gray(1, 16, 16))  # 8 x 8 after the crop
    with pytest.raises(ValueError, match="RGB"):
        psnr(torch.zeros(1, 16, 16), torch.zeros(1, 16, 16))
