"""srgan.evaluate and `srgan eval`: tiny synthetic data sets, then the paper's baselines on the real ones."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from srgan.baselines import bicubic_upscale, nearest_upscale
from srgan.checkpoint import save_generator
from srgan.cli import main
from srgan.evaluate import evaluate, evaluate_sets, format_table
from srgan.imresize import bicubic_degrade
from srgan.io import read_image, write_image
from srgan.metrics import psnr, ssim
from srgan.models import Generator
from srgan.paper import PAPER_METHODS, PAPER_TABLE2

SIZES = {"a": (32, 40), "b": (36, 28)}  # HR (H, W), multiples of 4; LR 8x10 and 9x7


def make_set(root: Path, name: str = "toy", *, with_lr: bool = False) -> Path:
    """root/name/HR/{a,b}.png: smooth random RGB images (and LR_x4/ made by bicubic_degrade if asked)."""
    folder = root / name
    (folder / "HR").mkdir(parents=True)
    gen = torch.Generator().manual_seed(len(name))
    for stem, (h, w) in SIZES.items():
        coarse = torch.rand(1, 3, h // 4, w // 4, generator=gen)
        hr_img = torch.nn.functional.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)[0]
        write_image(hr_img, folder / "HR" / f"{stem}.png")
        if with_lr:
            (folder / "LR_x4").mkdir(exist_ok=True)
            write_image(
                bicubic_degrade(read_image(folder / "HR" / f"{stem}.png")), folder / "LR_x4" / f"{stem}.png"
            )
    return folder


def expected_scores(folder: Path, upscale) -> dict[str, dict[str, float]]:
    """Per-image figures computed directly with srgan.metrics, LR made from HR."""
    out = {}
    for stem in SIZES:
        hr_img = read_image(folder / "HR" / f"{stem}.png")
        sr_img = upscale(bicubic_degrade(hr_img).unsqueeze(0))[0]
        out[stem] = {"psnr": psnr(sr_img, hr_img), "ssim": ssim(sr_img, hr_img)}
    return out


def test_baselines_shapes_and_values():
    lr_img = torch.tensor([[[0.0, 1.0], [0.5, 0.25]]]).expand(3, -1, -1).unsqueeze(0)
    up = nearest_upscale(lr_img)
    assert up.shape == (1, 3, 8, 8)
    assert torch.equal(up[0, 0, :4, 4:], torch.ones(4, 4)) and torch.equal(
        up[0, 1, 4:, :4], torch.full((4, 4), 0.5)
    )
    bic = bicubic_upscale(lr_img)
    assert bic.shape == (1, 3, 8, 8) and bic.dtype == torch.float32
    assert torch.equal(bic * 255, torch.round(bic * 255))  # uint8 levels
    constant = torch.full((1, 3, 5, 6), 77 / 255)
    assert torch.allclose(bicubic_upscale(constant), torch.full((1, 3, 20, 24), 77 / 255))


def test_evaluate_makes_lr_from_hr_when_lr_x4_is_absent(tmp_path):
    folder = make_set(tmp_path)
    result = evaluate("bicubic", folder, progress=False)
    assert set(result) == {"psnr", "ssim", "images"}
    assert list(result["images"]) == ["a", "b"]
    expected = expected_scores(folder, bicubic_upscale)
    for stem in SIZES:
        assert result["images"][stem]["psnr"] == pytest.approx(expected[stem]["psnr"], abs=1e-12)
        assert result["images"][stem]["ssim"] == pytest.approx(expected[stem]["ssim"], abs=1e-12)
        assert isinstance(result["images"][stem]["psnr"], float)
    assert result["psnr"] == pytest.approx((expected["a"]["psnr"] + expected["b"]["psnr"]) / 2)
    assert result["ssim"] == pytest.approx((expected["a"]["ssim"] + expected["b"]["ssim"]) / 2)
    assert 20 < result["psnr"] < 60 and 0.5 < result["ssim"] < 1

    # nearest is worse than bicubic on smooth images
    nearest = evaluate("nearest", folder, progress=False)
    assert nearest["psnr"] < result["psnr"]


def test_callable_models_and_lr_x4_matching(tmp_path):
    folder = make_set(tmp_path, with_lr=True)
    auto = evaluate("bicubic", make_set(tmp_path / "auto"), progress=False)
    # LR_x4/ holds exactly what bicubic_degrade makes: the same figures
    assert evaluate("bicubic", folder, progress=False) == auto

    # an "oracle" callable that returns the HR image scores perfectly; it is given (1, 3, h, w) LR in [0, 1]
    hr_by_lr_shape = {}
    for stem in SIZES:
        hr_img = read_image(folder / "HR" / f"{stem}.png")
        hr_by_lr_shape[tuple(read_image(folder / "LR_x4" / f"{stem}.png").shape)] = hr_img

    def oracle(lr_img):
        assert lr_img.dim() == 4 and lr_img.shape[0] == 1 and 0 <= lr_img.min() and lr_img.max() <= 1
        return hr_by_lr_shape[tuple(lr_img.shape[1:])].unsqueeze(0)

    perfect = evaluate(oracle, folder, progress=False)
    assert perfect["psnr"] == math.inf and perfect["ssim"] == pytest.approx(1.0)

    # LR files are matched by name: a different LR for "b" changes only b's figures
    write_image(torch.zeros(3, 9, 7), folder / "LR_x4" / "b.png")
    changed = evaluate("bicubic", folder, progress=False)
    assert changed["images"]["a"] == auto["images"]["a"]
    assert changed["images"]["b"]["psnr"] < auto["images"]["b"]["psnr"] - 5

    (folder / "LR_x4" / "b.png").unlink()
    with pytest.raises(FileNotFoundError, match="lacks LR images"):
        evaluate("bicubic", folder, progress=False)


def test_sr_of_the_wrong_size_is_an_error(tmp_path):
    folder = make_set(tmp_path)
    with pytest.raises(ValueError, match="SR is"):
        evaluate(lambda lr_img: nearest_upscale(lr_img, 2), folder, progress=False)


def test_hr_not_a_multiple_of_the_scale_is_cropped(tmp_path):
    folder = make_set(tmp_path)
    hr_img = read_image(folder / "HR" / "a.png")
    odd = torch.cat([hr_img, hr_img[:, :3]], dim=1)  # 35 rows
    write_image(odd, folder / "HR" / "a.png")
    result = evaluate("bicubic", folder, progress=False)
    expected = psnr(bicubic_upscale(bicubic_degrade(hr_img).unsqueeze(0))[0], hr_img)
    assert result["images"]["a"]["psnr"] == pytest.approx(expected, abs=1e-12)


def test_generator_module_runs_in_eval_mode_and_mode_is_restored(tmp_path):
    folder = make_set(tmp_path)
    generator = Generator(num_blocks=1, channels=8).train()
    result = evaluate(generator, folder, progress=False)
    assert generator.training  # restored
    assert all(p.grad is None for p in generator.parameters())

    generator.eval()
    with torch.no_grad():
        expected = expected_scores(folder, lambda lr_img: (generator(lr_img) + 1) / 2)
    for stem in SIZES:
        assert result["images"][stem]["psnr"] == pytest.approx(expected[stem]["psnr"], abs=1e-9)
        assert result["images"][stem]["ssim"] == pytest.approx(expected[stem]["ssim"], abs=1e-9)


def test_evaluate_sets_and_table(tmp_path):
    dirs = [make_set(tmp_path, "Set5"), make_set(tmp_path, "mine")]
    results = evaluate_sets("nearest", dirs, progress=False)
    assert list(results) == ["Set5", "mine"]
    assert results["mine"] == evaluate("nearest", dirs[1], progress=False)

    table = format_table(results, label="nearest")
    lines = table.splitlines()
    assert len(lines) == 6 and lines[1].startswith("| set") and "nearest PSNR" in lines[1]
    assert "paper SRResNet" in lines[1] and "paper SRGAN" in lines[1]
    set5 = next(line for line in lines if line.startswith("| Set5"))
    assert f"{results['Set5']['psnr']:.2f}" in set5 and "26.26 / 0.7552" in set5 and "32.05 / 0.9019" in set5
    mine = next(line for line in lines if line.startswith("| mine"))
    assert mine.count(" - ") == len(PAPER_METHODS)  # no paper figures for an unknown set
    assert "26.26" not in format_table(results, scale=2)

    with pytest.raises(ValueError, match="distinct"):
        evaluate_sets("nearest", [dirs[0], dirs[0]], progress=False)


def test_missing_folders_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="data folder not found"):
        evaluate("bicubic", tmp_path / "nope", progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no HR/ folder"):
        evaluate("bicubic", tmp_path / "empty", progress=False)
    with pytest.raises(TypeError, match="model must be"):
        evaluate(42, make_set(tmp_path), progress=False)


def test_cli_eval_prints_table_and_writes_json(tmp_path, capsys):
    dirs = [make_set(tmp_path, "Set5"), make_set(tmp_path, "Set14")]
    out = tmp_path / "results" / "bicubic.json"
    argv = ["eval", "--model", "bicubic", "--data", str(dirs[0]), "--data", str(dirs[1]), "--json", str(out)]
    assert main([*argv, "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "| Set5" in printed and "| Set14" in printed and "28.43 / 0.8211" in printed

    data = json.loads(out.read_text())
    assert list(data) == ["Set5", "Set14"]
    for name, folder in zip(data, dirs, strict=True):
        assert set(data[name]) == {"psnr", "ssim", "images"}
        assert set(data[name]["images"]) == {"a", "b"}
        assert set(data[name]["images"]["a"]) == {"psnr", "ssim"}
        assert data[name] == evaluate("bicubic", folder, progress=False)  # floats round-trip exactly

    # an existing JSON is kept unless --force
    out.write_text("keep me")
    assert main([*argv, "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "--force" in err and len(err.strip().splitlines()) == 1
    assert out.read_text() == "keep me"
    assert main([*argv, "--no-progress", "--force"]) == 0
    assert json.loads(out.read_text()) == data
    assert not [p for p in out.parent.iterdir() if p.name != out.name]  # no temporary files left


def test_cli_eval_checkpoint_path(tmp_path, capsys):
    folder = make_set(tmp_path, "toy")
    weights = tmp_path / "tiny.safetensors"
    save_generator(weights, Generator(num_blocks=1, channels=8))
    assert main(["eval", "--model", str(weights), "--data", str(folder), "--no-progress"]) == 0
    assert "tiny.safetensors PSNR" in capsys.readouterr().out


@pytest.mark.parametrize(
    "args, message",
    [
        (["--model", "bicubic", "--data", "{tmp}/nope"], "data folder not found"),
        (["--model", "bicubic", "--data", "{tmp}"], "no HR/ folder"),
        (["--model", "no-such-model", "--data", "{toy}"], "no model 'no-such-model'"),
    ],
)
def test_cli_eval_errors_are_one_line_exit_2(tmp_path, capsys, args, message):
    toy = make_set(tmp_path / "sets")
    args = [a.format(tmp=tmp_path, toy=toy) for a in args]
    assert main(["eval", *args, "--no-progress"]) == 2
    captured = capsys.readouterr()
    assert message in captured.err and len(captured.err.strip().splitlines()) == 1
    assert captured.out == ""


# Measured with this code on /work/shared/data/bench (MATLAB bicubic LR_x4); paper figures in PAPER_TABLE2.
# Set14 is higher than the paper because `bridge` (grayscale) is scored as Y = 16 + 219 * gray: see
# test_protocols.test_matlab_protocol_reproduces_selfexsr_per_image_bicubic.
MEASURED = {
    "bicubic": {"Set5": (28.43, 0.8111), "Set14": (26.09, 0.7048), "BSD100": (25.96, 0.6681)},
    "nearest": {"Set5": (26.26, 0.7380), "Set14": (24.74, 0.6553), "BSD100": (25.04, 0.6299)},
}


@pytest.mark.slow
def test_paper_baselines_on_the_benchmarks(bench_dir, one_thread):
    dirs = [bench_dir / name for name in ("Set5", "Set14", "BSD100")]
    results = {method: evaluate_sets(method, dirs, progress=False) for method in MEASURED}
    for method, expected in MEASURED.items():
        assert [len(results[method][name]["images"]) for name in expected] == [5, 14, 100]
        for name, (psnr_db, ssim_value) in expected.items():
            measured = results[method][name]
            assert round(measured["psnr"], 2) == psnr_db, (method, name, measured["psnr"])
            assert measured["ssim"] == pytest.approx(ssim_value, abs=5e-5), (method, name, measured["ssim"])
    # Set5 PSNR is the paper's for both (the bicubic figure is the one the data README promises)
    assert round(results["bicubic"]["Set5"]["psnr"], 2) == PAPER_TABLE2["Set5"]["bicubic"][0] == 28.43
    assert round(results["nearest"]["Set5"]["psnr"], 2) == PAPER_TABLE2["Set5"]["nearest"][0] == 26.26
