"""srgan.daala and srgan.protocols: the pieces against hand computations and the daala C tools' own output,
then the published figures: the paper's twelve nearest / bicubic numbers of Table 2 (protocol `paper`) and
SelfExSR's per-image bicubic figures (protocol `matlab`).

Golden values marked "C" were produced by the daala tools' C source (xiph/daala, commit 8d03668:
tools/kiss99.c, tools/png2y4m.c, tools/dump_ssim.c) compiled with gcc.
"""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
import torch
from PIL import Image

from srgan import daala
from srgan.baselines import bicubic_upscale, nearest_upscale
from srgan.cli import main
from srgan.data import is_gray_file
from srgan.evaluate import evaluate, evaluate_sets
from srgan.imresize import bicubic_degrade
from srgan.io import read_image, write_image
from srgan.metrics import psnr, ssim
from srgan.paper import PAPER_TABLE2
from srgan.protocols import PROTOCOLS, matlab_y, paper_y, score


def kiss99_scalar(n: int) -> list[int]:
    """kiss99_rand after kiss99_srand(NULL, 0), one call at a time in plain Python (tools/kiss99.c)."""
    z, w, jsr, jcong = 362436069, 521288629, 123456789, 380116160
    out = []
    for _ in range(n):
        z = 36969 * (z & 0xFFFF) + (z >> 16)
        w = 18000 * (w & 0xFFFF) + (w >> 16)
        mwc = ((z << 16) + w) & 0xFFFFFFFF
        jsr ^= (jsr << 17) & 0xFFFFFFFF
        jsr ^= jsr >> 13
        jsr ^= (jsr << 5) & 0xFFFFFFFF
        jcong = (69069 * jcong + 1234567) & 0xFFFFFFFF
        out.append(((mwc ^ jcong) + jsr) & 0xFFFFFFFF)
    return out


def test_kiss99_stream_matches_the_generator_call_by_call():
    assert daala.kiss99_stream(5).tolist() == [769445856, 742012328, 2121196314, 2805620942, 3214428071]  # C
    # 3001 calls run as 55 lanes of 55: every lane start comes from the jump-ahead
    assert daala.kiss99_stream(3001).tolist() == kiss99_scalar(3001)
    assert daala.kiss99_stream(0).shape == (0,)


def test_dither_is_png2y4m_triangle_rand_in_block_order():
    stream = iter(kiss99_scalar(40 * 64))

    def triangle_rand(range_: int) -> int:
        range_ += 1
        m = 0xFFFFFFFF // range_ * range_
        r1 = next(r for r in stream if r < m)
        r2 = next(r for r in stream if r < m)
        return r1 % range_ - r2 % range_

    expected = [
        [triangle_rand(r) for _ in range(4) for r in (1223320000, 1479548743, 1255654969)] for _ in range(64)
    ]
    expected = np.array(expected)  # per block: yd[0], cbd[0], crd[0], yd[1], ...
    yd, cbd, crd = daala.dither(64)
    assert yd.shape == cbd.shape == crd.shape == (64, 4)
    np.testing.assert_array_equal(yd, expected[:, 0::3])
    np.testing.assert_array_equal(cbd, expected[:, 1::3])
    np.testing.assert_array_equal(crd, expected[:, 2::3])
    assert yd[0].tolist() == [27433528, 662606395, 441129234, -101089519]  # C
    assert np.abs(yd).max() <= 1223320000 and np.abs(cbd).max() <= 1479548743


# 4x6 RGB image with red, blue, black and white in the first 2x2 block; its Y' plane from png2y4m (C)
TINY_RGB = [
    [[255, 0, 0], [0, 0, 255], [6, 160, 149], [106, 38, 175], [188, 205, 175], [229, 98, 249]],
    [[0, 0, 0], [255, 255, 255], [66, 39, 106], [213, 171, 45], [167, 57, 69], [81, 55, 14]],
    [[153, 178, 215], [76, 52, 39], [250, 72, 215], [50, 161, 223], [112, 172, 161], [233, 38, 17]],
    [[89, 1, 221], [6, 242, 127], [143, 6, 60], [210, 94, 25], [166, 33, 249], [189, 12, 204]],
]
TINY_Y = [
    [63, 32, 124, 70, 186, 133],
    [15, 235, 59, 161, 87, 65],
    [168, 64, 119, 138, 152, 82],
    [48, 174, 50, 113, 83, 70],
]


def test_png2y4m_luma():
    np.testing.assert_array_equal(daala.png2y4m_luma(np.array(TINY_RGB, dtype=np.uint8)), TINY_Y)  # C
    # flat grays: BT.709 limited range, Y' = 16 + 219 v / 255, with a triangular dither of about one level
    # (in luma and chroma, so the chosen luma moves by up to 2 levels) that averages out away from the ends
    # of the range (at black and white, RGB clipping in the reconstruction error biases it outwards)
    for level in (0, 64, 128, 192, 255):
        y = daala.png2y4m_luma(np.full((64, 64, 3), level, np.uint8)).astype(float)
        ideal = 16 + 219 * level / 255
        assert np.abs(y - ideal).max() <= 2.5
        if 0 < level < 255:
            assert abs(y.mean() - ideal) < 0.1 and np.bincount(y.astype(int).ravel()).argmax() == round(ideal)
        else:
            assert abs(y.mean() - ideal) < 0.4
    # odd sizes: the last column / row reuse their neighbour inside the 2x2 block; the rest is unchanged
    odd = daala.png2y4m_luma(np.array(TINY_RGB, dtype=np.uint8)[:3, :5])
    np.testing.assert_array_equal(odd[:2, :4], np.array(TINY_Y)[:2, :4])
    with pytest.raises(ValueError, match="uint8 RGB"):
        daala.png2y4m_luma(np.zeros((4, 4, 3), np.float32))


def test_dump_ssim_kernel():
    # sigma = 1.5 H / 256 for H = 320 (BSD100 landscape, 4-px border cropped: 312) and H = 224
    assert daala.gaussian_kernel(1.5 * 320 / 256, 312).tolist() == [
        2,
        6,
        15,
        31,
        47,
        54,
        47,
        31,
        15,
        6,
        2,
    ]  # C
    assert daala.gaussian_kernel(1.5 * 224 / 256, 220).tolist() == [1, 6, 24, 58, 78, 58, 24, 6, 1]  # C
    kernel = daala.gaussian_kernel(2.953125, 496)
    assert kernel.sum() == 256 and kernel.tolist() == kernel[::-1].tolist() and len(kernel) == 17
    # tiny pictures: the half length is capped at min(W, H) - 1; tiny sigma: a single tap of 256
    assert len(daala.gaussian_kernel(10.0, 3)) == 5
    assert daala.gaussian_kernel(0.05, 100).tolist() == [256]


def test_dump_psnr_and_dump_ssim():
    a = np.full((24, 20), 100, np.uint8)
    b = np.full((24, 20), 110, np.uint8)
    assert daala.dump_psnr(a, b) == pytest.approx(20 * math.log10(255 / 10), abs=1e-12)
    assert daala.dump_psnr(a, a) == math.inf
    # constant pictures: every window gives (2ab + C1) / (a^2 + b^2 + C1), C1 = (0.01 * 255)^2
    c1 = (0.01 * 255) ** 2
    assert daala.dump_ssim(a, b) == pytest.approx((2 * 100 * 110 + c1) / (100**2 + 110**2 + c1), abs=1e-12)
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (24, 20), dtype=np.uint8)
    assert daala.dump_ssim(x, x) == pytest.approx(1.0, abs=1e-12)
    # C on a fixed pair (a = noise, b = a plus noise); the port is bit-exact
    a = np.array([[(37 * i + 11 * j * j) % 256 for j in range(20)] for i in range(24)], dtype=np.uint8)
    b = np.clip(
        a.astype(int) + np.array([[(7 * i * j) % 41 - 20 for j in range(20)] for i in range(24)]), 0, 255
    )
    assert daala.dump_ssim(a, b.astype(np.uint8)) == 0.94993961006038619  # C, printed with %.17g
    with pytest.raises(ValueError, match="one size"):
        daala.dump_ssim(a, a[:-1])


def random_image(h: int, w: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (3, h, w), generator=g).float() / 255


def test_score_protocols_on_small_images():
    hr_img = random_image(40, 36, seed=1)
    sr_img = (hr_img + torch.randn(3, 40, 36, generator=torch.Generator().manual_seed(2)) * 0.05).clamp(0, 1)
    assert PROTOCOLS == ("default", "matlab", "paper")
    # default is srgan.metrics
    assert score(sr_img, hr_img) == (psnr(sr_img, hr_img), ssim(sr_img, hr_img))
    # matlab: rounded Y, then PSNR / Wang SSIM on it
    sr_y, hr_y = matlab_y(sr_img)[4:-4, 4:-4], matlab_y(hr_img)[4:-4, 4:-4]
    assert torch.equal(sr_y, torch.round(sr_y)) and sr_y.min() >= 16 and sr_y.max() <= 235
    expected = 10 * math.log10(255**2 / float(((sr_y - hr_y) ** 2).mean()))
    assert score(sr_img, hr_img, protocol="matlab")[0] == pytest.approx(expected, abs=1e-10)
    # paper: png2y4m of the cropped RGB, then dump_psnr / dump_ssim
    sr_p, hr_p = paper_y(sr_img), paper_y(hr_img)
    assert sr_p.shape == (32, 28) and sr_p.dtype == np.uint8
    assert score(sr_img, hr_img, protocol="paper") == (
        daala.dump_psnr(sr_p, hr_p),
        daala.dump_ssim(sr_p, hr_p),
    )
    assert score(hr_img, hr_img, protocol="paper") == (math.inf, 1.0)
    # numpy input works too; the border is a parameter
    assert (
        score(sr_img.numpy(), hr_img.numpy(), protocol="paper", crop_border=2)[0]
        != score(sr_img, hr_img, protocol="paper")[0]
    )
    with pytest.raises(ValueError, match="choose one of default, matlab, paper"):
        score(sr_img, hr_img, protocol="daala")
    with pytest.raises(ValueError, match="differ"):
        score(sr_img, hr_img[:, :-1])
    with pytest.raises(ValueError, match="too small"):
        score(sr_img[:, :8, :8], hr_img[:, :8, :8])


def test_matlab_scores_grayscale_images_as_they_are():
    gray_hr = random_image(40, 36, seed=3)[:1].expand(3, -1, -1)
    gray_sr = (gray_hr + 3 / 255).clamp(0, 1)
    # gray values used as they are: a 3-level offset is PSNR 20 log10(255 / 3) (but for clipping at 255)
    values = matlab_y(gray_hr, gray=True)
    assert torch.equal(values, torch.floor(gray_hr[0].double() * 255 + 0.5))
    ours = score(gray_sr, gray_hr, protocol="matlab", gray=True)[0]
    as_rgb = score(gray_sr, gray_hr, protocol="matlab", gray=False)[0]
    # as RGB, Y = 16 + 219 g (rounded) shrinks the differences: a higher PSNR
    assert as_rgb > ours
    interior = (gray_hr[0, 4:-4, 4:-4].double() * 255).round()
    diff = torch.clamp(interior + 3, max=255) - interior
    assert ours == pytest.approx(10 * math.log10(255**2 / float((diff**2).mean())), abs=1e-10)
    # gray SR images of an RGB model are made gray with BT.601 weights, rounded
    rgb_sr = random_image(40, 36, seed=4)
    levels = torch.floor(rgb_sr.double() * 255 + 0.5)
    expected = torch.floor(0.299 * levels[0] + 0.587 * levels[1] + 0.114 * levels[2] + 0.5)
    assert torch.equal(matlab_y(rgb_sr, gray=True), expected)


def test_evaluate_and_cli_with_protocols(tmp_path, capsys):
    folder = tmp_path / "toy"
    (folder / "HR").mkdir(parents=True)
    rgb = random_image(32, 40, seed=5)
    write_image(rgb, folder / "HR" / "rgb.png")
    Image.fromarray((rgb[0] * 255).round().byte().numpy(), "L").save(folder / "HR" / "gray.png")
    assert is_gray_file(folder / "HR" / "gray.png") and not is_gray_file(folder / "HR" / "rgb.png")
    results = {p: evaluate("bicubic", folder, progress=False, protocol=p) for p in PROTOCOLS}
    for name, gray in (("rgb", False), ("gray", True)):
        hr_img = read_image(folder / "HR" / f"{name}.png")
        sr_img = bicubic_upscale(bicubic_degrade(hr_img).unsqueeze(0))[0]
        for p in PROTOCOLS:
            psnr_db, ssim_value = score(sr_img, hr_img, protocol=p, gray=gray)
            assert results[p]["images"][name] == {"psnr": psnr_db, "ssim": ssim_value}
    assert results["matlab"]["images"]["gray"]["psnr"] != results["default"]["images"]["gray"]["psnr"]
    assert evaluate_sets("bicubic", [folder], progress=False, protocol="paper")["toy"] == results["paper"]
    with pytest.raises(ValueError, match="choose one of"):
        evaluate("bicubic", folder, progress=False, protocol="nope")

    assert (
        main(["eval", "--model", "bicubic", "--data", str(folder), "--protocol", "paper", "--no-progress"])
        == 0
    )
    printed = capsys.readouterr().out
    assert "protocol paper" in printed and f"{results['paper']['psnr']:.2f}" in printed
    with pytest.raises(SystemExit):
        main(["eval", "--model", "bicubic", "--data", str(folder), "--protocol", "daala"])


@pytest.mark.slow
def test_paper_protocol_reproduces_table2_nearest_and_bicubic(bench_dir, one_thread):
    """All twelve nearest / bicubic figures of the paper's Table 2, to the printed precision. Nearest is
    4x4 pixel replication of LR_x4, bicubic MATLAB's imresize."""
    for name in ("Set5", "Set14", "BSD100"):
        scores: dict[str, list[tuple[float, float]]] = {"nearest": [], "bicubic": []}
        for hr_path in sorted((bench_dir / name / "HR").glob("*.png")):
            hr_img = read_image(hr_path)
            lr_img = read_image(bench_dir / name / "LR_x4" / hr_path.name).unsqueeze(0)
            hr_y = paper_y(hr_img)  # the HR side once for both methods; score() does the same per call
            for method, upscale in (("nearest", nearest_upscale), ("bicubic", bicubic_upscale)):
                sr_y = paper_y(upscale(lr_img)[0])
                scores[method].append((daala.dump_psnr(sr_y, hr_y), daala.dump_ssim(sr_y, hr_y)))
        assert len(scores["bicubic"]) == {"Set5": 5, "Set14": 14, "BSD100": 100}[name]
        for method, values in scores.items():
            mean_psnr = math.fsum(v[0] for v in values) / len(values)
            mean_ssim = math.fsum(v[1] for v in values) / len(values)
            paper_psnr, paper_ssim = PAPER_TABLE2[name][method]
            assert f"{mean_psnr:.2f}" == f"{paper_psnr:.2f}", (name, method, mean_psnr)
            assert f"{mean_ssim:.4f}" == f"{paper_ssim:.4f}", (name, method, mean_ssim)


@pytest.mark.slow
def test_matlab_protocol_reproduces_selfexsr_per_image_bicubic(bench_dir, one_thread):
    """Every image of SelfExSR's published bicubic table (Set5, Set14, BSD100) to 1e-4 dB and 1e-5 SSIM."""
    with open(bench_dir / "reference_bicubic_selfexsr.tsv") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    assert len(rows) == 119
    for row in rows:
        hr_path = bench_dir / row["set"] / "HR" / f"{row['image']}.png"
        hr_img = read_image(hr_path)
        sr_img = bicubic_upscale(read_image(bench_dir / row["set"] / "LR_x4" / hr_path.name).unsqueeze(0))[0]
        psnr_db, ssim_value = score(sr_img, hr_img, protocol="matlab", gray=is_gray_file(hr_path))
        assert psnr_db == pytest.approx(float(row["psnr_y"]), abs=1e-4), (row["set"], row["image"])
        assert ssim_value == pytest.approx(float(row["ssim_y"]), abs=1e-5), (row["set"], row["image"])
