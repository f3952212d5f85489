"""SRCNN and ESPCN, the Table 2 baselines that fit a CPU: their layer sizes, the luma-only contract (bicubic
chroma), the Y-channel loss, the release format, tiling, and training through the same `train` machinery."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from srgan.checkpoint import check_generator_kwargs, load_generator_file, save_generator
from srgan.config import PRESETS, TrainConfig, make_config
from srgan.imresize import imresize
from srgan.io import signed_to_unit, unit_to_signed
from srgan.losses import mse_loss, mse_y_loss
from srgan.metrics import rgb_to_y, rgb_to_ycbcr, ycbcr_to_rgb
from srgan.models import ESPCN, SRCNN, count_parameters, make_generator
from srgan.train import build, generator_step
from srgan.upscale import upscale_tensor


def test_layer_sizes_are_the_papers():
    """SRCNN 9-5-5 with 64 / 32 filters on one (Y) channel; ESPCN 5-3-3 with 64 / 32 and s^2 outputs."""
    srcnn = SRCNN()
    convs = [m for m in srcnn.net if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size[0]) for c in convs] == [
        (1, 64, 9),
        (64, 32, 5),
        (32, 1, 5),
    ]
    assert [type(m).__name__ for m in srcnn.net] == ["Conv2d", "ReLU", "Conv2d", "ReLU", "Conv2d"]
    assert count_parameters(srcnn) == 57_281
    espcn = ESPCN()
    convs = [m for m in espcn.net if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size[0]) for c in convs] == [
        (1, 64, 5),
        (64, 32, 3),
        (32, 16, 3),
    ]
    assert [type(m).__name__ for m in espcn.net] == [
        "Conv2d",
        "Tanh",
        "Conv2d",
        "Tanh",
        "Conv2d",
        "PixelShuffle",
    ]
    assert count_parameters(espcn) == 24_752
    for cls in (SRCNN, ESPCN):
        assert "et al." in cls.__doc__ or "Dong" in cls.__doc__  # cites its paper


def test_ycbcr_round_trip_and_matlab_luma():
    x = torch.rand(2, 3, 7, 5, dtype=torch.float64)
    ycc = rgb_to_ycbcr(x)
    assert torch.allclose(ycbcr_to_rgb(ycc), x, atol=1e-12)
    assert torch.allclose(ycc[:, :1] * 255, rgb_to_y(x), atol=1e-10)  # the metric's Y, in [0, 1] units
    white, black = torch.ones(1, 3, 1, 1), torch.zeros(1, 3, 1, 1)
    assert torch.allclose(rgb_to_ycbcr(white).flatten() * 255, torch.tensor([235.0, 128.0, 128.0]), atol=1e-3)
    assert torch.allclose(rgb_to_ycbcr(black).flatten() * 255, torch.tensor([16.0, 128.0, 128.0]), atol=1e-6)


@pytest.mark.parametrize("cls", [SRCNN, ESPCN])
def test_chroma_is_bicubic_and_only_luma_is_learned(cls):
    """The output's Cb / Cr are MATLAB bicubic of the input's, whatever the weights; Y is the network's."""
    torch.manual_seed(0)
    model = cls().train()  # untrained weights can leave the RGB range: training mode does not clamp
    lr_img = torch.rand(2, 3, 10, 12)
    with torch.no_grad():
        out_ycc = rgb_to_ycbcr(signed_to_unit(model(lr_img)).double())
        bicubic = imresize(rgb_to_ycbcr(lr_img.double()), 4)
        assert out_ycc.shape == (2, 3, 40, 48)
        assert torch.allclose(out_ycc[:, 1:], bicubic[:, 1:], atol=1e-5)
        # a network whose last conv is zero with bias b predicts Y = b everywhere
        last = [m for m in model.net if isinstance(m, torch.nn.Conv2d)][-1]
        last.weight.zero_()
        last.bias.fill_(0.5)
        out_ycc = rgb_to_ycbcr(signed_to_unit(model(lr_img)).double())
    assert torch.allclose(out_ycc[:, :1], torch.full_like(out_ycc[:, :1], 0.5), atol=1e-5)


@pytest.mark.parametrize("cls", [SRCNN, ESPCN])
def test_eval_output_in_range_and_training_passes_gradients(cls):
    model = cls()
    lr_img = torch.rand(1, 3, 8, 8)
    model.eval()
    with torch.no_grad():
        out = model(lr_img)
    assert out.min() >= -1 and out.max() <= 1
    model.train()
    mse_y_loss(model(lr_img), unit_to_signed(torch.rand(1, 3, 32, 32))).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def test_mse_y_loss_ignores_chroma():
    """The luma baselines' loss sees only Y: a change of Cb / Cr at equal Y costs nothing; RGB MSE sees it."""
    hr = 0.3 + 0.4 * torch.rand(2, 3, 8, 8, dtype=torch.float64)
    ycc = rgb_to_ycbcr(hr)
    shifted = ycbcr_to_rgb(ycc + torch.tensor([0.0, 0.05, -0.04], dtype=torch.float64).view(3, 1, 1))
    sr_signed, hr_signed = unit_to_signed(shifted), unit_to_signed(hr)
    assert mse_y_loss(sr_signed, hr_signed) < 1e-12
    assert mse_loss(sr_signed, hr_signed) > 1e-4
    darker = unit_to_signed(ycbcr_to_rgb(ycc - torch.tensor([0.1, 0, 0], dtype=torch.float64).view(3, 1, 1)))
    assert mse_y_loss(darker, hr_signed).item() == pytest.approx(0.1**2, rel=1e-4)


@pytest.mark.parametrize("cls", [SRCNN, ESPCN])
def test_tiled_equals_whole_image(cls):
    """receptive_radius covers the network and the bicubic: tiles with that context give the whole image."""
    torch.manual_seed(1)
    model = cls().eval()
    img = torch.rand(3, 37, 29)
    whole = upscale_tensor(model, img)
    tiled = upscale_tensor(model, img, tile=12)
    assert torch.allclose(whole, tiled, atol=1e-5)


@pytest.mark.parametrize("cls", [SRCNN, ESPCN])
def test_release_file_round_trip(cls, tmp_path):
    torch.manual_seed(2)
    model = cls().eval()
    save_generator(tmp_path / "m.safetensors", model, {"preset": cls.arch})
    loaded = load_generator_file(tmp_path / "m.safetensors")
    assert type(loaded) is cls and loaded.kwargs == {"arch": cls.arch, "scale": 4}
    x = torch.rand(1, 3, 9, 11)
    with torch.no_grad():
        assert torch.equal(loaded(x), model(x))


def test_generator_kwargs_checks_know_the_archs():
    check_generator_kwargs({"arch": "srcnn", "scale": 4}, "f")
    check_generator_kwargs(
        {"num_blocks": 16, "channels": 64, "scale": 4, "in_channels": 3}, "f"
    )  # no arch: SRResNet
    with pytest.raises(ValueError, match="unknown generator arch 'vdsr'"):
        check_generator_kwargs({"arch": "vdsr", "scale": 4}, "f")
    with pytest.raises(ValueError, match="unknown generator kwargs"):
        check_generator_kwargs({"arch": "espcn", "scale": 4, "channels": 10**6}, "f")
    with pytest.raises(ValueError, match="not an integer"):
        check_generator_kwargs({"arch": "espcn", "scale": 3000}, "f")
    with pytest.raises(ValueError, match="unknown generator arch"):
        make_generator({"arch": "drcn"})


def test_presets_and_config_checks():
    for name, arch in (("srcnn", "srcnn"), ("espcn", "espcn")):
        cfg = make_config(name, train_dirs=("x",))
        assert cfg.arch == arch and cfg.content_loss == "mse-y" and not cfg.adversarial
    with pytest.raises(ValueError, match="mse-y"):
        dataclasses.replace(PRESETS["srcnn"], content_loss="mse")
    with pytest.raises(ValueError, match="no adversary"):
        dataclasses.replace(PRESETS["espcn"], adversarial=True)
    with pytest.raises(ValueError, match="luma baselines' loss"):
        TrainConfig(content_loss="mse-y")
    with pytest.raises(ValueError, match="arch"):
        TrainConfig(arch="drcn")


@pytest.mark.parametrize("preset", ["srcnn", "espcn"])
def test_the_train_machinery_learns_them(preset):
    """build() makes the baseline from the preset; twenty Y-MSE steps on a fixed batch lower the loss."""
    cfg = make_config(preset, train_dirs=("unused",), learning_rate=1e-3)
    parts = build(cfg, torch.device("cpu"))
    assert (
        type(parts.generator).__name__ == preset.upper() and parts.vgg is None and parts.discriminator is None
    )
    torch.manual_seed(0)
    coarse = torch.rand(4, 3, 8, 8)  # smooth images: something a few steps can learn
    hr = torch.nn.functional.interpolate(coarse, size=(32, 32), mode="bilinear", align_corners=False)
    lr = imresize(hr, 0.25)
    losses = []
    for _ in range(20):
        out = generator_step(
            parts.generator, None, None, parts.opt_g, lr.clamp(0, 1), unit_to_signed(hr),
            content_loss="mse-y", adv_weight=0.0, tv_weight=0.0, precision="fp32",
        )  # fmt: skip
        losses.append(out["g/content"].item())
    assert losses[-1] < 0.5 * losses[0], losses
