"""Shared fixtures. Real data comes from $SRGAN_DATA (default: ../shared/data beside the repo); a test that
needs it fails, never skips, when it is missing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

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


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
