import dataclasses

import pytest

from srgan.config import PRESETS, TrainConfig, make_config


@pytest.mark.parametrize("name", [name for name in PRESETS if PRESETS[name].arch == "srresnet"])
def test_every_preset_validates_and_has_the_papers_defaults(name):
    cfg = make_config(name, train_dirs=("x",))
    assert cfg.preset == name and cfg.batch_size == 16 and cfg.beta1 == 0.9 and cfg.crop_size == 96
    assert cfg.learning_rate == 1e-4
    if name.startswith("srresnet"):
        assert not cfg.adversarial and cfg.steps == 1_000_000
    else:
        assert cfg.adversarial and cfg.steps == 200_000 and cfg.lr_decay_step == 100_000
        assert cfg.adv_weight == 1e-3
        assert cfg.learning_rate_at(99_999) == 1e-4
        assert cfg.learning_rate_at(100_000) == pytest.approx(1e-5)
    assert cfg.tv_weight == (2e-8 if name == "srresnet-vgg22" else 0)
    assert cfg.content_loss == name.split("-")[1]


def test_the_five_variants_and_the_two_baselines_are_all_the_presets():
    variants = {"srresnet-mse", "srresnet-vgg22", "srgan-mse", "srgan-vgg22", "srgan-vgg54"}
    assert set(PRESETS) == variants | {"srcnn", "espcn"}
    # the baselines' presets (Table 2; their tests are in test_table2_baselines.py)
    assert PRESETS["srcnn"].arch == "srcnn" and PRESETS["espcn"].arch == "espcn"


@pytest.mark.parametrize(
    "field, value",
    [("content_loss", "l1"), ("precision", "fp8"), ("steps", 0), ("batch_size", -1), ("learning_rate", 0.0),
     ("crop_size", 95), ("scale", 3), ("degradation", "box"), ("beta1", 1.0), ("max_seconds", 0.0)],
)  # fmt: skip
def test_bad_values_name_the_field(field, value):
    with pytest.raises(ValueError, match=f"TrainConfig.{field}"):
        dataclasses.replace(TrainConfig(), **{field: value})


def test_make_config_errors():
    with pytest.raises(ValueError, match="unknown preset"):
        make_config("esrgan")
    with pytest.raises(ValueError, match="unknown TrainConfig field"):
        make_config("srgan-vgg54", lr=1e-3)
    assert make_config("srgan-mse").out_dir == "runs/srgan-mse"


def test_the_shipped_names_and_the_preset_names_are_one_vocabulary():
    import torch

    from srgan.zoo import canonical_name, load_model

    assert make_config("srgan").preset == "srgan-vgg54" and make_config("srresnet").preset == "srresnet-mse"
    assert canonical_name("srgan-vgg54") == "srgan" and canonical_name("srresnet-mse") == "srresnet"
    a, b = load_model("srgan-vgg54").state_dict(), load_model("srgan").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_cosine_schedule_falls_from_the_rate_to_zero_at_the_last_step():
    cfg = make_config("srresnet-mse", steps=1000, learning_rate=2e-4, lr_schedule="cosine")
    rates = [cfg.learning_rate_at(s) for s in (0, 250, 500, 1000, 1200)]
    assert rates == pytest.approx([2e-4, 2e-4 * (1 + 0.5**0.5) / 2, 1e-4, 0, 0], abs=1e-12)
    assert all(a > b for a, b in zip(rates[:3], rates[1:4], strict=True))
    with pytest.raises(ValueError, match="lr_decay_step"):  # the x0.1 step is the step schedule's
        make_config("srresnet-mse", lr_schedule="cosine", lr_decay_step=10)
    with pytest.raises(ValueError, match="lr_schedule"):
        make_config("srresnet-mse", lr_schedule="linear")
