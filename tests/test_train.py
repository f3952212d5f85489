import dataclasses
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from srgan.checkpoint import atomic_write, load_checkpoint, save_checkpoint
from srgan.config import PRESETS, make_config
from srgan.models import Generator
from srgan.train import list_snapshots, train
from srgan.zoo import load_model

TINY = dict(num_blocks=1, channels=8, d_channels=8, crop_size=32, batch_size=2, vgg_source="random",
            log_every=1, ckpt_every=2, tensorboard=False)  # fmt: skip


def tiny_config(preset, tmp_path, data, **kw):
    return make_config(preset, train_dirs=(str(data),), out_dir=str(tmp_path / preset), **{**TINY, **kw})


@pytest.fixture
def data(tmp_path, make_images):
    return make_images(tmp_path / "train")


@pytest.fixture
def srresnet_ckpt(tmp_path, data):
    return train(tiny_config("srresnet-mse", tmp_path / "init", data, steps=1))


@pytest.mark.parametrize("preset", list(PRESETS))
def test_every_preset_trains(preset, tmp_path, data, srresnet_ckpt):
    init = str(srresnet_ckpt) if preset.startswith("srgan") else None
    cfg = tiny_config(preset, tmp_path, data, steps=2, init_from=init, tensorboard=True)
    path = train(cfg)
    ckpt = load_checkpoint(path)
    assert ckpt["step"] == 2 and ckpt["config"]["preset"] == preset
    if cfg.arch == "srresnet":
        assert ckpt["generator_kwargs"] == {"num_blocks": 1, "channels": 8, "scale": 4, "in_channels": 3}
    else:  # the Table 2 baselines have their papers' fixed sizes
        assert ckpt["generator_kwargs"] == {"arch": preset, "scale": 4}
    assert (ckpt["discriminator"] is not None) == cfg.adversarial
    assert (Path(cfg.out_dir) / "config.json").exists()
    assert list((Path(cfg.out_dir) / "tb").glob("events.out.tfevents.*"))
    g = load_model(path)
    assert not g.training and g(torch.rand(1, 3, 8, 8)).shape == (1, 3, 32, 32)
    if init:  # started from the SRResNet weights, then moved
        g0 = load_model(srresnet_ckpt)
        pairs = zip(g.state_dict().values(), g0.state_dict().values(), strict=True)
        assert any(not torch.equal(a, b) for a, b in pairs)


def weights_equal(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("preset", ["srresnet-mse", "srgan-vgg54", "espcn"])
def test_resume_continues_exactly(preset, tmp_path, data):
    straight = tiny_config(preset, tmp_path / "a", data, steps=4)
    half = tiny_config(preset, tmp_path / "b", data, steps=2)
    a = load_checkpoint(train(straight, from_scratch=True))
    train(half, from_scratch=True)
    b = load_checkpoint(train(dataclasses.replace(half, steps=4), resume=Path(half.out_dir) / "last.pt"))
    assert b["step"] == 4
    assert weights_equal(a["generator"], b["generator"])
    if preset.startswith("srgan"):
        assert weights_equal(a["discriminator"], b["discriminator"])
    assert a["opt_g"]["state"][0]["exp_avg"].equal(b["opt_g"]["state"][0]["exp_avg"])


def test_existing_run_is_not_overwritten(tmp_path, data):
    cfg = tiny_config("srresnet-mse", tmp_path, data, steps=1)
    path = train(cfg)
    before = path.read_bytes()
    with pytest.raises(FileExistsError, match="--resume"):
        train(cfg)
    assert path.read_bytes() == before


def test_bf16_and_channels_last_train(tmp_path, data):
    cfg = tiny_config("srresnet-mse", tmp_path, data, steps=2, precision="bf16", channels_last=True)
    ckpt = load_checkpoint(train(cfg))
    assert all(v.dtype != torch.bfloat16 for v in ckpt["generator"].values())  # weights stay fp32
    # the same two steps in fp32 from the same start: every weight moved, and moved like fp32's (Adam moves
    # each weight by at most ~learning_rate per step, so bf16 gradients can differ by at most that much)
    ref = load_checkpoint(train(dataclasses.replace(cfg, precision="fp32", channels_last=False,
                                                    out_dir=str(tmp_path / "fp32"))))  # fmt: skip
    torch.manual_seed(cfg.seed)
    start = Generator(num_blocks=1, channels=8).state_dict()
    for k, w in ckpt["generator"].items():
        if w.is_floating_point() and "running" not in k:
            assert not torch.equal(w, start[k].to(w)), k
            assert (w - ref["generator"][k]).abs().max() <= 2 * 2 * cfg.learning_rate + 1e-6, k
    g = load_model(Path(cfg.out_dir) / "last.pt")
    assert g(torch.rand(1, 3, 8, 8)).shape == (1, 3, 32, 32)


def test_atomic_write_leaves_the_old_file_on_failure(tmp_path):
    path = tmp_path / "ckpt.pt"
    save_checkpoint(path, {"step": 1})

    def fail(tmp):
        Path(tmp).write_bytes(b"half a checkpoint")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, fail)
    assert load_checkpoint(path) == {"step": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"]  # no temporary file left behind


def test_cli_train_and_srgan_needs_init(tmp_path, data, capsys):
    from srgan.cli import main

    args = ["train", "--data", str(data), "--steps", "1", "--batch-size", "2", "--num-blocks", "1",
            "--channels", "8", "--crop-size", "32"]  # fmt: skip
    assert main([*args, "--out", str(tmp_path / "r")]) == 0
    assert main([*args, "--preset", "srgan-vgg54", "--out", str(tmp_path / "g")]) == 2
    assert "--init-from" in capsys.readouterr().err
    assert main([*args, "--preset", "srresnet-mse", "--out", str(tmp_path / "r")]) == 2  # exists: refuse
    assert "--resume" in capsys.readouterr().err


def test_ddp_two_processes_gloo(tmp_path, data):
    """torchrun with 2 CPU processes (gloo): the run finishes with identical weights on both ranks (train
    compares the checksums across ranks at the end) and rank 0 writes the checkpoint."""
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29517",
           "-m", "srgan.cli", "train", "--preset", "srgan-mse", "--from-scratch", "--data", str(data),
           "--steps", "3", "--batch-size", "2", "--num-blocks", "1", "--channels", "8", "--crop-size", "32",
           "--out", str(out), "--device", "cpu"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ckpt = load_checkpoint(out / "last.pt")
    assert ckpt["step"] == 3
    assert not any(k.startswith("module.") for k in ckpt["generator"])  # saved from the unwrapped model


def test_periodic_validation_logs_psnr_and_samples(tmp_path, data, capsys):
    val = tmp_path / "val"
    (val / "HR").mkdir(parents=True)
    for p in sorted(data.glob("*.png"))[:2]:
        (val / "HR" / p.name).write_bytes(p.read_bytes())
    cfg = tiny_config(
        "srresnet-mse", tmp_path, data, steps=2, val_dir=str(val), val_every=1, tensorboard=True
    )
    train(cfg)
    assert capsys.readouterr().out.count("val PSNR") == 2
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(Path(cfg.out_dir) / "tb"), size_guidance={"images": 0})
    events.Reload()
    assert [e.step for e in events.Scalars("val/psnr")] == [1, 2]
    assert {"g/content", "learning_rate", "steps_per_second"} <= set(events.Tags()["scalars"])
    assert "samples/lr_sr_hr" in events.Tags()["images"]


def test_cli_resume_takes_the_checkpoints_config(tmp_path, data, capsys):
    from srgan.cli import main

    out = tmp_path / "g"
    args = ["--steps", "1", "--batch-size", "2", "--num-blocks", "1", "--channels", "8", "--crop-size", "32",
            "--vgg-source", "random"]  # fmt: skip
    assert main(["train", "--preset", "srgan-vgg54", "--from-scratch", "--data", str(data), "--out", str(out),
                 *args]) == 0  # fmt: skip
    # only --resume and --steps: preset, data, model size and out folder come from the checkpoint
    assert main(["train", "--resume", str(out / "last.pt"), "--steps", "2"]) == 0
    ckpt = load_checkpoint(out / "last.pt")
    assert (
        ckpt["step"] == 2 and ckpt["config"]["preset"] == "srgan-vgg54" and ckpt["discriminator"] is not None
    )
    assert main(["train", "--resume", str(out / "last.pt"), "--preset", "srresnet-mse", "--steps", "3"]) == 2
    assert "does not match" in capsys.readouterr().err


def test_time_limit_stops_early_and_saves(tmp_path, data):
    cfg = tiny_config("srresnet-mse", tmp_path, data, steps=100_000, ckpt_every=100_000, max_seconds=0.5)
    ckpt = load_checkpoint(train(cfg))
    assert 1 <= ckpt["step"] < 100_000  # stopped by the clock, and the step it reached is saved
    # the usual way on: resume with a learning-rate drop from the step reached
    later = dataclasses.replace(cfg, steps=ckpt["step"] + 2, lr_decay_step=ckpt["step"], max_seconds=None)
    again = load_checkpoint(train(later, resume=Path(cfg.out_dir) / "last.pt"))
    assert again["step"] == ckpt["step"] + 2
    assert again["opt_g"]["param_groups"][0]["lr"] == pytest.approx(cfg.learning_rate * 0.1)


def test_cli_max_minutes(tmp_path, data):
    from srgan.cli import main

    out = tmp_path / "m"
    assert main(["train", "--data", str(data), "--out", str(out), "--steps", "100000", "--batch-size", "2",
                 "--num-blocks", "1", "--channels", "8", "--crop-size", "32", "--ckpt-every", "100000",
                 "--max-minutes", "0.01"]) == 0  # fmt: skip
    ckpt = load_checkpoint(out / "last.pt")
    assert ckpt["config"]["max_seconds"] == pytest.approx(0.6) and 1 <= ckpt["step"] < 100_000


def test_ddp_time_limit_stops_every_rank_at_the_same_step(tmp_path, data):
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29518",
           "-m", "srgan.cli", "train", "--preset", "srresnet-mse", "--data", str(data), "--steps", "100000",
           "--batch-size", "2", "--num-blocks", "1", "--channels", "8", "--crop-size", "32",
           "--log-every", "2", "--ckpt-every", "100000", "--max-minutes", "0.01", "--out", str(out),
           "--device", "cpu"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]  # train checks the ranks' weights agree at the end
    step = load_checkpoint(out / "last.pt")["step"]
    assert 2 <= step < 100_000 and step % 2 == 0  # stopped on a logging step, where the ranks agree


def test_generator_ema_is_an_average_that_resumes_exactly_and_is_exported(tmp_path, data):
    from srgan.checkpoint import generator_from_checkpoint
    from srgan.train import update_ema

    g0, g1 = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    w0 = g0.weight.detach().clone()
    update_ema(g0, g1, 0.75)
    assert torch.allclose(g0.weight, 0.75 * w0 + 0.25 * g1.weight)

    straight = tiny_config("srgan-vgg54", tmp_path / "a", data, steps=4, ema_decay=0.5)
    half = dataclasses.replace(straight, out_dir=str(tmp_path / "b"), steps=2, snapshot_every=2)
    a = load_checkpoint(train(straight, from_scratch=True))
    train(half, from_scratch=True)
    b = load_checkpoint(train(dataclasses.replace(half, steps=4), resume=Path(half.out_dir) / "last.pt"))
    assert weights_equal(a["generator_ema"], b["generator_ema"])
    assert not weights_equal(a["generator_ema"], a["generator"])  # the average lags the trained weights
    assert sorted(p.name for p in (Path(half.out_dir) / "snapshots").iterdir()) == [
        "step0000002.safetensors", "step0000002_ema.safetensors",
        "step0000004.safetensors", "step0000004_ema.safetensors"]  # fmt: skip
    snaps = Path(half.out_dir) / "snapshots"  # what the curve scripts read
    assert list_snapshots(half.out_dir) == [(2, snaps / "step0000002.safetensors"),
                                            (4, snaps / "step0000004.safetensors")]  # fmt: skip
    assert [step for step, _ in list_snapshots(half.out_dir, ema=True)] == [2, 4]
    assert weights_equal(load_model(tmp_path / "b" / "last.pt").state_dict(), b["generator_ema"])
    raw = generator_from_checkpoint(b, ema=False).state_dict()
    assert weights_equal(raw, b["generator"])


def test_train_checks_what_the_cli_used_to(tmp_path, data):
    with pytest.raises(ValueError, match="--init-from"):
        train(tiny_config("srgan-mse", tmp_path, data, steps=1))
    with pytest.raises(ValueError, match="--data"):
        train(dataclasses.replace(tiny_config("srresnet-mse", tmp_path, data, steps=1), train_dirs=()))
    assert not (tmp_path / "srgan-mse").exists() and not (tmp_path / "srresnet-mse").exists()


def test_discriminator_warmup_keeps_g_fixed_and_lr_ratio_scales_d(tmp_path, data, srresnet_ckpt):
    init = load_checkpoint(srresnet_ckpt)["generator"]
    cfg = tiny_config("srgan-vgg54", tmp_path, data, steps=2, init_from=str(srresnet_ckpt), ema_decay=0.5,
                      d_warmup_steps=2, d_lr_ratio=3.0)  # fmt: skip
    ckpt = load_checkpoint(train(cfg))
    assert weights_equal(ckpt["generator"], init) and weights_equal(ckpt["generator_ema"], init)
    assert not weights_equal(ckpt["discriminator"], load_checkpoint(train(dataclasses.replace(
        cfg, out_dir=str(tmp_path / "other"), steps=1)))["discriminator"])  # fmt: skip
    assert ckpt["opt_d"]["param_groups"][0]["lr"] == pytest.approx(3 * ckpt["opt_g"]["param_groups"][0]["lr"])
    later = load_checkpoint(train(dataclasses.replace(cfg, steps=3), resume=Path(cfg.out_dir) / "last.pt"))
    assert not weights_equal(later["generator"], init)  # step 3 is past the warm-up: G trains
    with pytest.raises(ValueError, match="SRGAN preset"):
        make_config("srresnet-mse", d_warmup_steps=5)


def test_cli_cosine_schedule_and_beta2_reach_adam_and_a_resume_can_change_beta2(tmp_path, data):
    from srgan.cli import main

    out = tmp_path / "c"
    args = ["--batch-size", "2", "--num-blocks", "1", "--channels", "8", "--crop-size", "32", "--vgg-source",
            "random", "--out", str(out)]  # fmt: skip
    # an SRGAN preset's x0.1 step (1e5) is dropped for the cosine schedule
    assert main(["train", "--preset", "srgan-vgg54", "--from-scratch", "--data", str(data), "--steps", "4",
                 "--learning-rate", "2e-4", "--lr-schedule", "cosine", "--adam-beta2", "0.99",
                 *args]) == 0  # fmt: skip
    ckpt = load_checkpoint(out / "last.pt")
    assert ckpt["config"]["lr_schedule"] == "cosine" and ckpt["config"]["lr_decay_step"] is None
    group = ckpt["opt_g"]["param_groups"][0]
    assert group["betas"] == (0.9, 0.99) and ckpt["opt_d"]["param_groups"][0]["betas"] == (0.9, 0.99)
    assert group["lr"] == pytest.approx(2e-4 * 0.5 * (1 + math.cos(math.pi * 3 / 4)))  # set for the last step
    assert main(["train", "--resume", str(out / "last.pt"), "--steps", "5", "--adam-beta2", "0.999"]) == 0
    ckpt = load_checkpoint(out / "last.pt")
    assert ckpt["opt_g"]["param_groups"][0]["betas"] == (0.9, 0.999) and ckpt["config"]["beta2"] == 0.999
