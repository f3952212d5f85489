"""srgan benchmark: tables, CSV / JSON, SR image re-use, figures (tiny data), and the baselines on the real
benchmark sets against the paper's Table 2."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from PIL import Image

from srgan import benchmark as bm
from srgan import zoo
from srgan.artefacts import ARTEFACT_KEYS
from srgan.artefacts import aggregate as aggregate_artefacts
from srgan.artefacts import measure as measure_artefacts
from srgan.baselines import bicubic_upscale
from srgan.checkpoint import save_generator
from srgan.cli import main
from srgan.imresize import bicubic_degrade
from srgan.io import read_image, write_image
from srgan.lpips import load_lpips
from srgan.metrics import psnr, ssim
from srgan.models import Generator
from srgan.paper import PAPER_TABLE2
from srgan.zoo import interpolate_generators


def _set(folder, n, *, with_lr, seed, gray_first=False):
    """A data set folder: n random HR images (40x48 .. ), LR_x4 made by MATLAB bicubic when with_lr."""
    rng = np.random.default_rng(seed)
    (folder / "HR").mkdir(parents=True)
    for i in range(n):
        arr = rng.integers(0, 256, (40 + 4 * i, 48, 3), dtype=np.uint8)
        img = Image.fromarray(arr)
        if gray_first and i == 0:
            img = img.convert("L")
        img.save(folder / "HR" / f"im{i}.png")
        if with_lr:
            (folder / "LR_x4").mkdir(exist_ok=True)
            lr = bicubic_degrade(read_image(folder / "HR" / f"im{i}.png"), 4)
            write_image(lr, folder / "LR_x4" / f"im{i}.png")
    return folder


@pytest.fixture
def tiny_sets(tmp_path):
    return [_set(tmp_path / "SetA", 2, with_lr=True, seed=1, gray_first=True),
            _set(tmp_path / "SetB", 3, with_lr=False, seed=2)]  # fmt: skip


@pytest.fixture
def tiny_model(tmp_path):
    path = tmp_path / "tiny.safetensors"
    save_generator(path, Generator(num_blocks=1, channels=8))
    return path


def test_benchmark_writes_images_tables_and_matches_the_metrics(tiny_sets, tiny_model, tmp_path):
    out = tmp_path / "out"
    results = bm.benchmark(["nearest", "bicubic", str(tiny_model)], tiny_sets, out,
                           protocols=["default", "paper"], lpips_nets=[], progress=False)  # fmt: skip
    assert list(results) == ["nearest", "bicubic", "tiny"]
    for label in ["nearest", "bicubic", "tiny", "HR"]:
        assert sorted(p.name for p in (out / "sr" / label / "SetA").iterdir()) == ["im0.png", "im1.png"]
        assert len(list((out / "sr" / label / "SetB").iterdir())) == 3
    # the figures equal srgan.metrics on the same images (default protocol), the means are the means
    hr = read_image(tiny_sets[0] / "HR" / "im1.png")
    lr = read_image(tiny_sets[0] / "LR_x4" / "im1.png")
    row = results["bicubic"]["SetA"]["images"]["im1"]
    sr = bicubic_upscale(lr[None])[0]
    assert row["psnr_default"] == pytest.approx(psnr(sr, hr), abs=1e-9)
    assert row["ssim_default"] == pytest.approx(ssim(sr, hr), abs=1e-9)
    assert set(row) == {"psnr_default", "ssim_default", "psnr_paper", "ssim_paper", *ARTEFACT_KEYS}
    assert row["grid"] == pytest.approx(measure_artefacts(sr, hr)["grid"], rel=1e-12)
    set_rows = list(results["tiny"]["SetB"]["images"].values())
    assert results["tiny"]["SetB"]["mean"]["grid"] == pytest.approx(aggregate_artefacts(set_rows)["grid"])
    per_image = [v["psnr_paper"] for v in results["tiny"]["SetB"]["images"].values()]
    assert results["tiny"]["SetB"]["mean"]["psnr_paper"] == pytest.approx(np.mean(per_image))
    # HR copies are the ground truth (grayscale stays usable as RGB)
    assert torch.equal(read_image(out / "sr" / "HR" / "SetA" / "im1.png"), hr)
    # CSV: one row per model x image, every metric; JSON round-trips the results
    with open(out / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 3 * 5
    metrics = ["psnr_default", "ssim_default", "psnr_paper", "ssim_paper", *ARTEFACT_KEYS]
    assert list(rows[0]) == ["model", "set", "image", *metrics]
    got = {(r["model"], r["set"], r["image"]): float(r["psnr_default"]) for r in rows}
    assert got[("bicubic", "SetA", "im1")] == pytest.approx(row["psnr_default"], abs=1e-6)
    assert json.loads((out / "results.json").read_text()) == results
    # Markdown: one table per protocol, methods as columns, PSNR and SSIM rows per set
    md = (out / "table.md").read_text()
    assert "### x4, protocol `default`" in md and "### x4, protocol `paper`" in md
    assert "| set | metric | nearest | bicubic | tiny |" in md
    expected = f"| SetA | PSNR (dB) | {results['nearest']['SetA']['mean']['psnr_default']:.2f} |"
    assert expected in md


def test_rerun_reuses_sr_images_unless_forced(tiny_sets, tiny_model, tmp_path, monkeypatch):
    out = tmp_path / "out"
    first = bm.benchmark(["bicubic", str(tiny_model)], tiny_sets, out, protocols=["default"], lpips_nets=[],
                         progress=False)  # fmt: skip
    sr_png = out / "sr" / "tiny" / "SetB" / "im2.png"
    stamp = sr_png.stat().st_mtime_ns

    def no_model(*args, **kwargs):
        raise AssertionError("a model was run although every SR image exists")

    monkeypatch.setattr(bm, "make_upscaler", no_model)
    again = bm.benchmark(["bicubic", str(tiny_model)], tiny_sets, out, protocols=["default"], lpips_nets=[],
                         progress=False)  # fmt: skip
    assert again == first and sr_png.stat().st_mtime_ns == stamp
    with pytest.raises(AssertionError, match="a model was run"):
        bm.benchmark(["bicubic"], tiny_sets, out, protocols=["default"], lpips_nets=[], force=True,
                     progress=False)  # fmt: skip


def test_changed_weights_are_not_scored_from_stale_images(tiny_sets, tiny_model, tmp_path, capsys):
    out = tmp_path / "out"
    kw = dict(protocols=["default"], lpips_nets=[], progress=False)
    first = bm.benchmark([str(tiny_model)], tiny_sets, out, **kw)
    assert (out / "sr" / "tiny" / "model.txt").read_text().startswith("file-")
    torch.manual_seed(1)
    save_generator(tiny_model, Generator(num_blocks=1, channels=8))  # new weights under the same name
    again = bm.benchmark([str(tiny_model)], tiny_sets, out, **kw)
    assert again["tiny"]["SetB"]["mean"] != first["tiny"]["SetB"]["mean"]
    assert "making its SR images again" in capsys.readouterr().err
    fresh = bm.benchmark([str(tiny_model)], tiny_sets, tmp_path / "fresh", **kw)
    assert again == fresh
    # (label, Generator) pairs are fingerprinted by their state dict
    g = Generator(num_blocks=1, channels=8)
    before = bm.model_fingerprint(("g", g))
    assert bm.model_fingerprint(("g", g)) == before
    with torch.no_grad():
        g.head[0].bias[0] += 1
    assert bm.model_fingerprint(("g", g)) != before


def test_bad_input_says_what_is_wrong(tiny_sets, tmp_path):
    with pytest.raises(ValueError, match="unknown protocol"):
        bm.benchmark(["bicubic"], tiny_sets, tmp_path / "o", protocols=["x"], lpips_nets=[], progress=False)
    with pytest.raises(ValueError, match="unknown LPIPS"):
        bm.benchmark(["bicubic"], tiny_sets, tmp_path / "o", lpips_nets=["squeeze"], progress=False)
    with pytest.raises(ValueError, match="distinct"):
        bm.benchmark(["bicubic", "bicubic"], tiny_sets, tmp_path / "o", lpips_nets=[], progress=False)
    with pytest.raises(FileNotFoundError, match="no HR/"):
        bm.benchmark(["bicubic"], [tmp_path], tmp_path / "o", lpips_nets=[], progress=False)
    with pytest.raises(ValueError, match="SET/IMAGE:X,Y,SIZE"):
        bm.parse_crop("Set14/comic")
    assert bm.parse_crop("Set14/comic:10,20,32") == ("Set14", "comic", (10, 20, 32))


def test_cli_benchmark_with_lpips_realism_models_and_figures(tiny_sets, tmp_path, monkeypatch):
    g0, g1 = Generator(num_blocks=1, channels=8), Generator(num_blocks=1, channels=8)
    models = {"srresnet": g0, "srgan": g1}
    real_load = zoo.load_model
    monkeypatch.setattr(zoo, "load_model", lambda name, device="cpu": models.get(name) or real_load(name))
    for name, g in models.items():
        save_generator(tmp_path / f"{name}.safetensors", g)
    out = tmp_path / "out"
    args = ["benchmark", "--models", "bicubic", str(tmp_path / "srresnet.safetensors"),
            str(tmp_path / "srgan.safetensors"), "--data", *map(str, tiny_sets), "--out", str(out),
            "--protocol", "default", "--lpips", "alex", "--realism", "0.5", "--crop", "SetB/im1:4,8,24",
            "--no-progress"]  # fmt: skip
    assert main(args) == 0
    results = json.loads((out / "results.json").read_text())
    assert list(results) == ["bicubic", "srresnet", "srgan", "realism-0.5"]
    sr = read_image(out / "sr" / "bicubic" / "SetA" / "im0.png")
    hr = read_image(tiny_sets[0] / "HR" / "im0.png")
    with torch.no_grad():
        expected = float(load_lpips("alex")(sr[None], hr[None])[0])
    assert results["bicubic"]["SetA"]["images"]["im0"]["lpips_alex"] == pytest.approx(expected, rel=1e-6)
    assert expected > 0
    # realism 0.5 is the weight midpoint of the two generators
    mid = interpolate_generators(g0, g1, 0.5)
    for (k, w0), w1, wm in zip(g0.state_dict().items(), g1.state_dict().values(), mid.state_dict().values(),
                               strict=True):  # fmt: skip
        if w0.is_floating_point():
            assert torch.allclose(wm, (w0 + w1) / 2, atol=1e-7), k
    crops = Image.open(out / "figures" / "crops_SetB_im1.png")
    assert crops.width > 4 * 256 and crops.getextrema() != ((255, 255),) * 3
    plane = Image.open(out / "figures" / "perception_distortion_SetB.png")
    assert plane.width > 300 and len(plane.getcolors(1 << 20)) > 10
    # a crop outside the image is an error, and nothing else is lost
    bad = ["benchmark", "--models", "bicubic", "--data", *map(str, tiny_sets), "--out", str(out),
           "--lpips", "none", "--crop", "SetB/im1:40,40,64", "--no-progress"]  # fmt: skip
    assert main(bad) == 2
    assert (out / "figures" / "crops_SetB_im1.png").exists()


def test_realism_endpoints_are_the_two_generators():
    g0, g1 = Generator(num_blocks=1, channels=8), Generator(num_blocks=1, channels=8)
    x = torch.rand(1, 3, 6, 5)
    with torch.no_grad():
        assert torch.equal(interpolate_generators(g0, g1, 0.0)(x), g0.eval()(x))
        assert torch.equal(interpolate_generators(g0, g1, 1.0)(x), g1.eval()(x))
    with pytest.raises(ValueError, match="in \\[0, 1\\]"):
        interpolate_generators(g0, g1, 1.5)
    with pytest.raises(ValueError, match="different shapes"):
        interpolate_generators(g0, Generator(num_blocks=2, channels=8), 0.5)


@pytest.mark.slow
def test_baselines_on_the_benchmark_sets_reproduce_table2(bench_dir, tmp_path):
    """nearest and bicubic on Set5 / Set14 / BSD100 through the benchmark command: the paper protocol gives
    the paper's Table 2 numbers to the printed precision."""
    sets = [bench_dir / s for s in ("Set5", "Set14", "BSD100")]
    results = bm.benchmark(["nearest", "bicubic"], sets, tmp_path / "out", protocols=["default", "paper"],
                           lpips_nets=["alex"], progress=False)  # fmt: skip
    for method in ("nearest", "bicubic"):
        for s in ("Set5", "Set14", "BSD100"):
            mean = results[method][s]["mean"]
            p_psnr, p_ssim = PAPER_TABLE2[s][method]
            assert round(mean["psnr_paper"], 2) == pytest.approx(p_psnr, abs=1e-9), (method, s)
            assert round(mean["ssim_paper"], 4) == pytest.approx(p_ssim, abs=1e-9), (method, s)
    assert results["bicubic"]["Set5"]["mean"]["psnr_default"] == pytest.approx(28.43, abs=0.005)
    # LPIPS-Alex of bicubic on BSD100: the scale of the published figure (0.524)
    assert 0.45 < results["bicubic"]["BSD100"]["mean"]["lpips_alex"] < 0.60
    md = (tmp_path / "out" / "table.md").read_text()
    assert "28.43 [28.43]" in md


def test_perception_distortion_labels_of_close_points_do_not_overlap():
    placed: list[tuple[float, float, float, float]] = []
    spots = [bm._free_label_spot((100.0, 100.0), name, placed, dpi=120) for name in ("srgan-vgg22",
             "srresnet-vgg22", "srgan-mse")]  # fmt: skip
    assert spots[0] == (5, 4, "left") and len(set(spots)) == 3
    for i, a in enumerate(placed):
        for b in placed[i + 1 :]:
            assert not (a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]), (a, b)
    far = bm._free_label_spot((400.0, 300.0), "bicubic", placed, dpi=120)
    assert far == (5, 4, "left")  # a point with room keeps the usual spot
