import math

import pytest
import torch
from torch import nn

from srgan import fast
from srgan.fast import (
    DEFAULT_CPU_BUDGET,
    FastGenerator,
    auto_tile,
    bytes_per_pixel,
    fold_batchnorm,
    is_channels_last,
    prepare_for_inference,
)
from srgan.models import Generator
from srgan.upscale import upscale


def _generator(scale=4, num_blocks=2, channels=8) -> Generator:
    """A tiny generator with non-trivial BN statistics and affine parameters (folding must use them)."""
    g = Generator(num_blocks=num_blocks, channels=channels, scale=scale)
    with torch.no_grad():
        for m in g.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
            if isinstance(m, nn.PReLU):
                m.weight.fill_(0.1)
    return g.eval()


def test_fold_batchnorm_is_the_same_function_and_leaves_the_model_alone():
    g = _generator()
    before = {k: v.clone() for k, v in g.state_dict().items()}
    folded = fold_batchnorm(g)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    assert sum(isinstance(m, nn.BatchNorm2d) for m in g.modules()) == 2 * 2 + 1
    assert all(torch.equal(v, g.state_dict()[k]) for k, v in before.items())
    x = torch.rand(2, 3, 11, 13)
    with torch.no_grad():
        assert (folded(x) - g(x)).abs().max() < 1e-5
    with pytest.raises(ValueError, match="eval-mode"):
        fold_batchnorm(g.train())


@pytest.mark.parametrize("scale", [2, 4, 8])
@pytest.mark.parametrize("channels_last", [False, True])
def test_fast_generator_matches_the_generator(scale, channels_last):
    g = _generator(scale=scale)
    f = prepare_for_inference(g, channels_last=channels_last)
    assert isinstance(f, FastGenerator) and f.scale == scale and f.kwargs == g.kwargs
    assert f.receptive_radius() == g.receptive_radius() and is_channels_last(f) == channels_last
    x = torch.rand(2, 3, 9, 14)
    with torch.no_grad():
        ref, out = g(x), f(x.contiguous(memory_format=torch.channels_last) if channels_last else x)
    assert out.shape == ref.shape == (2, 3, 9 * scale, 14 * scale)
    assert (out - ref).abs().max() < 1e-5


def test_fast_generator_on_the_shipped_model():
    from srgan import load_model

    g = load_model("srresnet")
    x = torch.rand(1, 3, 24, 20)
    with torch.no_grad():
        assert (prepare_for_inference(g)(x) - g(x)).abs().max() < 1e-5


def test_upscale_with_the_fast_model_equals_the_plain_one_tiled_and_untiled():
    g = _generator()
    f = prepare_for_inference(g)
    img = torch.rand(3, 30, 22)
    ref = upscale(g, img)
    assert (upscale(f, img) - ref).abs().max() < 1e-5
    assert (upscale(f, img, tile=8) - ref).abs().max() < 1e-5
    assert (upscale(f, img, tile="auto") - ref).abs().max() < 1e-5
    bf16 = upscale(f, img, precision="bf16", tile=8)
    assert bf16.dtype == torch.float32 and (bf16 - ref).abs().max() < 0.05


def test_prelu_must_be_single_parameter():
    g = _generator()
    g.upsample[0].act = nn.PReLU(g.kwargs["channels"])
    with pytest.raises(ValueError, match="single-parameter PReLU"):
        prepare_for_inference(g.eval())


def test_auto_tile_memory_model():
    g = _generator(channels=64)
    f = prepare_for_inference(g, channels_last=False)
    pad = g.receptive_radius()
    # fp32 fast model: 2 planes of 64 * 16 values of 4 bytes per LR pixel
    assert bytes_per_pixel(f, "fp32") == 2.0 * 64 * 16 * 4 == 2 * bytes_per_pixel(f, "bf16")
    assert bytes_per_pixel(g, "fp32") > bytes_per_pixel(f, "fp32")
    per_px = bytes_per_pixel(f, "fp32")
    assert auto_tile(f, (50, 60), budget=int(per_px * 50 * 60)) is None  # fits whole
    budget = int(per_px * 300**2)
    tile = auto_tile(f, (1000, 1000), budget=budget)
    assert tile <= 300 - 2 * pad and per_px * (tile + 2 * pad) ** 2 <= budget
    # as even as possible: 1000 / ceil(1000 / 220) = 200 rather than 4 x 220 + 120
    assert tile == math.ceil(1000 / math.ceil(1000 / (300 - 2 * pad)))
    assert auto_tile(f, (1000, 1000), budget=budget, batch=4) < tile
    assert auto_tile(f, (1000, 1000), budget=budget, precision="bf16") > tile
    with pytest.raises(MemoryError, match="--tile"):
        auto_tile(f, (1000, 1000), budget=int(per_px * (pad * 2 + 10) ** 2))


def test_auto_tile_default_budget_from_available_memory(monkeypatch):
    f = prepare_for_inference(_generator(channels=64), channels_last=False)
    per_px = bytes_per_pixel(f, "fp32")
    monkeypatch.setattr(fast, "available_memory", lambda device: int(2 * per_px * 200**2))
    assert auto_tile(f, (1000, 1000)) == auto_tile(f, (1000, 1000), budget=int(per_px * 200**2))
    monkeypatch.setattr(fast, "available_memory", lambda device: 100 * 2**30)  # capped on CPU
    assert auto_tile(f, (4000, 4000)) == auto_tile(f, (4000, 4000), budget=DEFAULT_CPU_BUDGET)


def test_available_memory_reads_the_system(monkeypatch, tmp_path):
    import psutil

    from srgan import hardware

    free = hardware.available_memory(torch.device("cpu"))
    # what the kernel reports, read another way (a cgroup limit can only lower it)
    assert 0 < free <= psutil.virtual_memory().available * 1.05 + 2**26
    meminfo = tmp_path / "meminfo"
    meminfo.write_text("MemTotal: 1000 kB\nMemAvailable:     123 kB\n")
    real_path = hardware.Path
    monkeypatch.setattr(hardware, "Path", lambda p: meminfo if p == "/proc/meminfo" else real_path(p))
    assert hardware.available_memory(torch.device("cpu")) <= 123 * 1024


def test_load_model_fast(tmp_path):
    from srgan.checkpoint import save_generator
    from srgan.zoo import load_model

    g = _generator()
    save_generator(tmp_path / "g.safetensors", g)
    f = load_model(tmp_path / "g.safetensors", fast=True)
    assert isinstance(f, FastGenerator) and is_channels_last(f)
    x = torch.rand(1, 3, 10, 12)
    with torch.no_grad():
        assert (f(x) - g(x)).abs().max() < 1e-5
