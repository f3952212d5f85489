"""srgan.artefacts on synthetic images: each measure is 1 (or 0) for HR against itself and rises with the
artefact it is for."""

from __future__ import annotations

import math

import pytest
import torch

from srgan.artefacts import aggregate, chroma_energy, colour_shift, grid_energy, grid_ratio, measure


def smooth_image(h: int = 72, w: int = 64, seed: int = 0) -> torch.Tensor:
    """A natural-ish image: blurred noise (low frequencies), in [0.2, 0.8]."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(1, 3, h // 8, w // 8, generator=g)
    x = torch.nn.functional.interpolate(x, size=(h, w), mode="bicubic", align_corners=False)[0]
    return (0.2 + 0.6 * x).clamp(0, 1)


def test_hr_against_itself_is_like_hr():
    hr_img = smooth_image()
    row = measure(hr_img, hr_img)
    assert row["grid"] == pytest.approx(1.0) and row["chroma"] == pytest.approx(1.0)
    assert colour_shift(hr_img, hr_img) == (0.0, 0.0, 0.0)


@pytest.mark.parametrize("period", [2, 4])
def test_a_planted_sub_pixel_pattern_raises_the_grid_figure(period):
    hr_img = smooth_image()
    yy, xx = torch.meshgrid(torch.arange(72), torch.arange(64), indexing="ij")
    pattern = ((yy % period == 0) ^ (xx % period == 0)).float() * 2 - 1  # a checkerboard of this period
    sr_img = (hr_img + 0.02 * pattern).clamp(0, 1)
    assert grid_ratio(sr_img, hr_img) > 5
    # white noise of the same power spreads over all frequencies: it barely moves the grid bins
    noisy = (hr_img + 0.02 * torch.randn(1, 72, 64, generator=torch.Generator().manual_seed(1))).clamp(0, 1)
    assert grid_ratio(noisy, hr_img) < grid_ratio(sr_img, hr_img) / 3


def test_grid_energy_reads_the_right_bins():
    y = torch.zeros(3, 40, 40)
    yy, xx = torch.meshgrid(torch.arange(40), torch.arange(40), indexing="ij")
    y += 0.5 + 0.1 * torch.cos(2 * math.pi * xx / 4)  # exactly at the W/4 bin
    off = 0.5 + 0.1 * torch.cos(2 * math.pi * xx * 3 / 40).expand(3, 40, 40)  # between the bins
    assert grid_energy(y, crop_border=0) > 1e3 * max(grid_energy(off, crop_border=0), 1e-9)


def test_coloured_speckle_raises_chroma_but_grey_noise_much_less():
    hr_img = smooth_image()
    g = torch.Generator().manual_seed(2)
    colour_noise = 0.03 * torch.randn(3, 72, 64, generator=g)
    grey_noise = colour_noise.mean(0, keepdim=True).expand(3, -1, -1)
    speckled = measure((hr_img + colour_noise).clamp(0, 1), hr_img)["chroma"]
    grey = measure((hr_img + grey_noise).clamp(0, 1), hr_img)["chroma"]
    assert speckled > 10 and grey < speckled / 5
    assert chroma_energy(torch.full((3, 20, 20), 0.5)) == 0.0


def test_colour_shift_in_levels_and_set_aggregates():
    hr_img = smooth_image()
    shifted = (hr_img + torch.tensor([4.0, 0.0, -2.0]).view(3, 1, 1) / 255).clamp(0, 1)
    r, g, b = colour_shift(shifted, hr_img)
    assert r == pytest.approx(4, abs=0.51) and g == 0 and b == pytest.approx(-2, abs=0.51)
    rows = [{"grid": 4.0, "chroma": 9, "chroma_sr": 9.0, "chroma_hr": 1.0, "shift_r": 1.0, "shift_g": -3.0,
             "shift_b": 0.0},
            {"grid": 1.0, "chroma": 1, "chroma_sr": 3.0, "chroma_hr": 3.0, "shift_r": 3.0, "shift_g": 1.0,
             "shift_b": 0.0}]  # fmt: skip
    agg = aggregate(rows)
    assert agg["grid"] == pytest.approx(2.0)  # geometric mean
    assert agg["chroma"] == pytest.approx(12 / 4)  # summed SR over summed HR
    assert agg["shift_r"] == 2.0 and agg["shift_g"] == -1.0 and agg["shift_max"] == 3.0
