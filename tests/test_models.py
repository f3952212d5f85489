import pytest
import torch

from srgan.models import Discriminator, Generator, VGG19Features, count_parameters, vgg19_conv_indices


def tiny_generator(**kw):
    return Generator(num_blocks=kw.pop("num_blocks", 2), channels=kw.pop("channels", 8), **kw)


def test_parameter_counts_match_the_paper_layout():
    assert count_parameters(Generator()) == 1_549_462
    assert count_parameters(Discriminator()) == 23_565_505


def test_generator_shapes_and_range():
    g = tiny_generator().eval()
    with torch.no_grad():
        out = g(torch.rand(2, 3, 12, 10))
    assert out.shape == (2, 3, 48, 40)
    assert out.min() >= -1 and out.max() <= 1


@pytest.mark.parametrize("scale", [2, 4, 8])
def test_generator_scales(scale):
    g = tiny_generator(scale=scale).eval()
    with torch.no_grad():
        assert g(torch.rand(1, 3, 5, 7)).shape == (1, 3, 5 * scale, 7 * scale)


def test_generator_layout_is_the_papers():
    g = Generator()
    assert len(g.blocks) == 16
    assert g.head[0].kernel_size == (9, 9) and g.tail.kernel_size == (9, 9)
    assert [m.conv.out_channels for m in g.upsample] == [256, 256]
    assert all(isinstance(b.body[1], torch.nn.BatchNorm2d) for b in g.blocks)


def test_every_parameter_gets_a_gradient():
    g, d = tiny_generator(), Discriminator(image_size=32, channels=8)
    sr = g(torch.rand(2, 3, 8, 8))
    d(sr).sum().backward()
    for name, p in list(g.named_parameters()) + list(d.named_parameters()):
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_discriminator_layout_and_logits():
    d = Discriminator()
    convs = [m for m in d.features if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 8
    assert [c.out_channels for c in convs] == [64, 64, 128, 128, 256, 256, 512, 512]
    assert [c.stride[0] for c in convs] == [1, 2, 1, 2, 1, 2, 1, 2]
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in d.features) == 7
    assert d.classifier[1].out_features == 1024
    out = d.eval()(torch.rand(3, 3, 96, 96) * 2 - 1)
    assert out.shape == (3,)  # logits: no sigmoid inside the model


def test_receptive_radius_bounds_the_influence_of_a_pixel():
    g = tiny_generator(num_blocks=1).eval()
    r = g.receptive_radius()
    x = torch.rand(1, 3, 2 * r + 9, 2 * r + 9)
    y = x.clone()
    c = r + 4
    y[..., c, c] += 0.5
    with torch.no_grad():
        diff = (g(x) - g(y)).abs().sum(1)[0]
    changed = diff.nonzero()
    assert changed.numel() > 0
    # every changed output pixel is within r LR pixels of the perturbed one
    assert (changed // 4 - c).abs().max() <= r


def test_vgg_features_shapes_activation_and_gradients():
    vgg = VGG19Features(layers=("22", "54"))
    x = torch.rand(1, 3, 32, 32, requires_grad=True)
    feats = vgg(x)
    assert feats["22"].shape == (1, 128, 16, 16)
    assert feats["54"].shape == (1, 512, 2, 2)
    assert feats["22"].min() >= 0  # after the ReLU
    feats["54"].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0  # gradients reach the input (loss not detached)
    assert all(p.grad is None for p in vgg.parameters())  # the network itself is frozen


def test_vgg_uses_torchvision_indices():
    idx = vgg19_conv_indices()
    assert idx["conv1_1"] == 0 and idx["conv2_2"] == 7 and idx["conv5_4"] == 34
    keys = set(VGG19Features(layers=("54",)).state_dict())
    assert "features.34.weight" in keys and "features.0.bias" in keys


def test_vgg_only_builds_the_layers_it_needs():
    assert len(VGG19Features(layers=("22",)).features) == 9


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="scale"):
        Generator(scale=3)
    with pytest.raises(ValueError, match="multiple of 16"):
        Discriminator(image_size=90)
    with pytest.raises(ValueError, match="layer"):
        VGG19Features(layers=("33",))
