"""Helpers for the MOS tests: tiny image folders, a study built from them, a real server in a subprocess."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]


def write_images(folder: Path, names: list[str], size=(24, 16), seed=0) -> Path:
    """Random RGB PNGs named `names` in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for name in names:
        Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(
            folder / f"{name}.png"
        )
    return folder


def make_folders(root: Path, methods=("bicubic", "SRGAN"), sets=("Set5",), images=("baby", "bird"),
                 calibration=("cal0",)) -> dict:  # fmt: skip
    """root/sr/<method>/<set>/<image>.png, root/hr/<set>/HR/<image>.png (the benchmark layout), root/cal."""
    for i, m in enumerate(methods):
        for s in sets:
            write_images(root / "sr" / m / s, list(images), seed=i + 1)
    for s in sets:
        write_images(root / "hr" / s / "HR", list(images), seed=99)
    cal = write_images(root / "cal", list(calibration), seed=7) if calibration else None
    return {"methods": {m: root / "sr" / m for m in methods}, "reference": root / "hr", "calibration": cal}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(study: Path, port: int, log: Path) -> subprocess.Popen:
    """`srgan mos serve STUDY` in a subprocess on 127.0.0.1:port; returns once it answers."""
    import httpx

    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "srgan.cli", "mos", "serve", str(study), "--port", str(port)]
    proc = subprocess.Popen(cmd, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
            return proc
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"server did not answer within 30 s: {log.read_text()[-2000:]}")
