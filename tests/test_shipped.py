"""The shipped generators: they load, they are the defaults the README says, they keep the figures their model
cards give on Set5, and the realism control's ends are the two models."""

from __future__ import annotations

import pytest
import torch

from srgan.checkpoint import DEFAULT_MODEL, SHIPPED, load_model, load_realism_model
from srgan.cli import build_parser
from srgan.evaluate import evaluate, list_pairs, load_pair
from srgan.lpips import load_lpips
from srgan.models import Generator, count_parameters


def test_shipped_models_are_the_papers_generator():
    assert set(SHIPPED) == {"srresnet", "srgan"}
    for name in SHIPPED:
        model = load_model(name)
        assert isinstance(model, Generator) and not model.training
        assert model.kwargs == {"num_blocks": 16, "channels": 64, "scale": 4, "in_channels": 3}
        assert count_parameters(model) == 1_549_462


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
    scores = {}
    for name in ("srresnet", "srgan"):
        model = load_model(name)
        result = evaluate(model, bench_dir / "Set5", progress=False)
        scores[name] = result["psnr"]
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
