import math

import pytest
import torch

from srgan import losses


def test_mse_hand_value():
    sr = torch.tensor([[[[0.0, 1.0]]]])
    hr = torch.tensor([[[[1.0, 1.0]]]])
    assert losses.mse_loss(sr, hr).item() == pytest.approx(0.5)


def identity_vgg(x):
    return {"22": x, "54": 2 * x}


def test_vgg_loss_hand_value_with_the_papers_scaling():
    sr = torch.ones(1, 3, 2, 2)  # [-1, 1] range: white
    hr = -torch.ones(1, 3, 2, 2)  # black
    # features of [0, 1] images: 1 and 0; scaled by 1/12.75 before the MSE
    assert losses.vgg_loss(sr, hr, identity_vgg, "22").item() == pytest.approx((1 / 12.75) ** 2)
    assert losses.vgg_loss(sr, hr, identity_vgg, "54").item() == pytest.approx((2 / 12.75) ** 2)


def test_vgg_loss_backpropagates_to_sr_only():
    sr = torch.zeros(1, 3, 2, 2, requires_grad=True)
    hr = torch.ones(1, 3, 2, 2, requires_grad=True)
    losses.vgg_loss(sr, hr, identity_vgg, "22").backward()
    assert sr.grad is not None and sr.grad.abs().sum() > 0
    assert hr.grad is None


def test_adversarial_loss_is_minus_log_d():
    logits = torch.tensor([0.0, math.log(3.0)])  # D = 0.5 and 0.75
    expected = (-math.log(0.5) - math.log(0.75)) / 2
    assert losses.adversarial_loss(logits).item() == pytest.approx(expected)
    assert losses.ADV_WEIGHT == 1e-3


def test_adversarial_loss_is_stable_for_large_logits():
    assert losses.adversarial_loss(torch.tensor([-200.0])).item() == pytest.approx(200.0)
    assert losses.adversarial_loss(torch.tensor([200.0])).item() == pytest.approx(0.0)


def test_discriminator_loss_hand_value():
    real = torch.tensor([math.log(3.0)])  # D(HR) = 0.75
    fake = torch.tensor([-math.log(3.0)])  # D(SR) = 0.25
    loss_real, loss_fake = losses.discriminator_loss(real, fake)
    assert loss_real.item() == pytest.approx(-math.log(0.75))
    assert loss_fake.item() == pytest.approx(-math.log(1 - 0.25))


def test_tv_loss_hand_value():
    x = torch.tensor([[[[0.0, 1.0], [2.0, 4.0]]]])
    # vertical: (2-0)^2 + (4-1)^2 = 13; horizontal: (1-0)^2 + (4-2)^2 = 5
    assert losses.tv_loss(x).item() == pytest.approx(18.0)
    assert losses.tv_loss(torch.cat([x, x])).item() == pytest.approx(18.0)  # averaged over the batch
    assert losses.TV_WEIGHT == 2e-8
