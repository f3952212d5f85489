"""The shipped generators: they load, they are the defaults the README says, they keep the figures their model
cards give on Set5, and the realism control's ends are the two models."""

from __future__ import annotations

import functools

import pytest
import torch
from safetensors import safe_open

from srgan.cli import build_parser
from srgan.data import list_pairs, load_pair
from srgan.evaluate import evaluate
from srgan.lpips import load_lpips
from srgan.models import ESPCN, SRCNN, Generator, count_parameters
from srgan.zoo import (
    DEFAULT_MODEL,
    SHIPPED,
    TABLE1_VARIANTS,
    TABLE2_BASELINES,
    WEIGHTS_DIR,
    load_model,
    load_realism_model,
)


@functools.cache
def set5_psnr(bench_dir, name: str) -> float:
    """Set5 PSNR (default protocol) of a shipped model, measured once for all tests here."""
    return evaluate(load_model(name), bench_dir / "Set5", progress=False)["psnr"]


def test_shipped_models_are_the_papers_generator():
    """The two main models and the other three variants of Table 1, each with its model card and the
    training preset it names in its metadata."""
    presets = {"srresnet": "srresnet-mse", "srgan": "srgan-vgg54", "srresnet-vgg22": "srresnet-vgg22",
               "srgan-mse": "srgan-mse", "srgan-vgg22": "srgan-vgg22"}  # fmt: skip
    assert set(TABLE1_VARIANTS) == set(presets) and set(SHIPPED) == set(presets) | set(TABLE2_BASELINES)
    for name in TABLE1_VARIANTS:
        file = SHIPPED[name]
        model = load_model(name)
        assert isinstance(model, Generator) and not model.training
        assert model.kwargs == {"num_blocks": 16, "channels": 64, "scale": 4, "in_channels": 3}
        assert count_parameters(model) == 1_549_462
        assert all(t.dtype == torch.float32 for t in model.state_dict().values() if t.is_floating_point())
        assert (WEIGHTS_DIR / file).with_suffix(".md").is_file(), f"{file} has no model card"
        with safe_open(str(WEIGHTS_DIR / file), framework="pt") as f:
            assert f.metadata()["preset"] == presets[name], name


def test_shipped_table2_baselines():
    """SRCNN and ESPCN at their papers' sizes, each with its model card and preset."""
    for name, cls in (("srcnn", SRCNN), ("espcn", ESPCN)):
        model = load_model(name)
        assert type(model) is cls and not model.training and model.kwargs == {"arch": name, "scale": 4}
        assert (WEIGHTS_DIR / SHIPPED[name]).with_suffix(".md").is_file(), f"{name} has no model card"
        with safe_open(str(WEIGHTS_DIR / SHIPPED[name]), framework="pt") as f:
            assert f.metadata()["preset"] == name


def test_upscale_defaults_to_srgan():
    assert DEFAULT_MODEL == "srgan"
    args = build_parser().parse_args(["upscale", "x.png", "-o", "out"])
    assert args.model is None and args.realism is None  # None: DEFAULT_MODEL


def test_realism_ends_are_the_two_shipped_models():
    x = torch.rand(1, 3, 12, 10)
    with torch.no_grad():
        for realism, name in ((0.0, "srresnet"), (1.0, "srgan")):
            assert torch.equal(load_realism_model(realism)(x), load_model(name)(x)), name
        mid = load_realism_model(0.5)(x)
        for name in ("srresnet", "srgan"):
            assert not torch.equal(mid, load_model(name)(x)), name


@pytest.mark.slow
def test_set5_figures_of_the_model_cards(bench_dir, one_thread):
    """Set5, default protocol: SRResNet beats bicubic (28.43 dB) by more than 1.5 dB; SRGAN trades PSNR for
    perceptual similarity: lower PSNR than SRResNet but lower (better) LPIPS-Alex."""
    lpips = load_lpips("alex")
    scores = {name: set5_psnr(bench_dir, name) for name in ("srresnet", "srgan")}
    assert scores["srresnet"] > 28.43 + 1.5
    assert scores["srgan"] < scores["srresnet"]
    # LPIPS on one image pair per model is enough to show the direction; the README has the full tables
    name, hr_path, lr_path = list_pairs(bench_dir / "Set5", 4)[0]  # baby
    lr_img, hr_img = load_pair(hr_path, lr_path, 4)
    dist = {}
    with torch.no_grad():
        for model_name in ("srresnet", "srgan"):
            sr = (load_model(model_name)(lr_img[None]) + 1) / 2
            sr = torch.floor(sr.clamp(0, 1) * 255 + 0.5) / 255
            dist[model_name] = float(lpips(sr, hr_img[None])[0])
    assert dist["srgan"] < dist["srresnet"], (name, dist)


@pytest.mark.slow
def test_set5_figures_of_the_table1_variants(bench_dir, one_thread):
    """The three other Table 1 variants keep the Set5 PSNR their model cards give (default protocol), and each
    trades PSNR for perceptual similarity against SRResNet-MSE as in the paper: lower PSNR than `srresnet`."""
    cards = {"srresnet-vgg22": 29.02, "srgan-mse": 27.90, "srgan-vgg22": 28.85}  # from docs/results/benchmark
    srresnet_psnr = set5_psnr(bench_dir, "srresnet")
    for name, card_psnr in cards.items():
        psnr = set5_psnr(bench_dir, name)
        assert abs(psnr - card_psnr) < 0.01, (name, psnr)
        assert psnr < srresnet_psnr - 1.0, (name, psnr, srresnet_psnr)
