"""scripts/stage_gpu.py and scripts/gpu_train.py: the staging helpers, and one dry run of the whole
time-boxed session on the CPU with a tiny generator."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open
from safetensors.torch import save_file

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))

from stage_gpu import INT8_NAME, dequantize_int8, pick_subset, quantize_int8, working_tree_bytes  # noqa: E402

from srgan.models import VGG19Features  # noqa: E402
from srgan.zoo import load_model  # noqa: E402


def test_int8_round_trip_is_within_half_a_step():
    state = VGG19Features(layers=("22",)).state_dict()
    packed = quantize_int8(state)
    back = dequantize_int8(packed)
    assert back.keys() == state.keys()
    for key, value in state.items():
        if value.dim() == 4:
            assert packed[key].dtype == torch.int8
            step = packed[key + ".scale"][:, None, None, None]
            assert ((back[key] - value).abs() <= step / 2 + 1e-7).all()
        else:
            assert torch.equal(back[key], value)


def test_subset_keeps_to_its_size_budget_and_seed(tmp_path, make_images):
    folder = make_images(tmp_path / "imgs")
    sizes = {p: p.stat().st_size for p in folder.iterdir()}
    budget_mb = sum(sizes.values()) / 2 / 1e6
    a = pick_subset([str(folder)], budget_mb, seed=1)
    assert a == pick_subset([str(folder)], budget_mb, seed=1)
    assert 0 < len(a) < len(sizes) and sum(sizes[p] for p in a) <= budget_mb * 1e6


def test_working_tree_size_counts_what_git_would_send():
    shipped = sum(p.stat().st_size for p in (REPO / "src" / "srgan" / "weights").glob("*.safetensors"))
    total = working_tree_bytes(exclude=REPO / ".stage")
    assert shipped < total < shipped + 20e6  # the weights plus code and docs; no .venv, no ignored files


@pytest.fixture
def stage(tmp_path):
    stage = tmp_path / "stage"
    (stage / "train").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(16):  # B and C train at the paper's batch of 16 distinct images
        Image.fromarray(rng.integers(0, 256, (100, 110, 3), dtype=np.uint8)).save(
            stage / "train" / f"{i}.png"
        )
    save_file(quantize_int8(VGG19Features(layers=("54",)).state_dict()), str(stage / INT8_NAME))
    return stage


def test_gpu_session_dry_run_returns_every_model(tmp_path, stage):
    out, work = tmp_path / "out", tmp_path / "work"
    cmd = [sys.executable, str(REPO / "scripts" / "gpu_train.py"), "--stage", str(stage), "--out", str(out),
           "--work", str(work), "--budget", "20", "--device", "cpu", "--tiny", "--batch-a", "4"]  # fmt: skip
    env = {"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1", "HOME": str(tmp_path)}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    names = ["srresnet_mse", "srgan_vgg54", "srresnet_vgg22", "srgan_mse", "srgan_vgg22"]
    for name in names:
        g = load_model(out / f"{name}.safetensors")
        assert g.kwargs["channels"] == 8 and summary[name]["steps"] >= 1
    # A and B: a first part, then a resume with the learning rate x0.1 from the step it reached
    for name in ("srresnet_mse", "srgan_vgg54"):
        (phase,) = summary[name]["phases"]
        assert 1 <= phase["lr_decay_step"] <= phase["step"]
    assert summary["srgan_vgg54"]["init_from"] == str(out / "srresnet_mse.safetensors")
    # the recipe travels in the weights file itself
    assert json.loads(_metadata(out / "srgan_vgg54.safetensors")["recipe"])[0]["phase"] == "B"
    assert "srresnet_mse.log" in (out / "log.txt").read_text()
    # running it again into the same work folder is refused, nothing is overwritten
    before = {f.name: f.read_bytes() for f in out.iterdir()}
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
    assert again.returncode == 2 and "earlier runs" in again.stderr
    assert {f.name: f.read_bytes() for f in out.iterdir()} == before


def _metadata(path):
    with safe_open(str(path), framework="pt") as f:
        return f.metadata()
