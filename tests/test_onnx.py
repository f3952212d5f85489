import numpy as np
import pytest
import torch

from srgan.checkpoint import save_generator
from srgan.cli import main
from srgan.models import Generator
from srgan.onnx_export import OnnxGenerator, check_onnx, export_onnx
from srgan.upscale import upscale


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    torch.manual_seed(0)
    g = Generator(num_blocks=1, channels=8).eval()
    path = export_onnx(g, tmp_path_factory.mktemp("onnx") / "tiny.onnx")
    return g, path


def test_export_has_dynamic_shapes_and_matches_pytorch(tiny):
    g, path = tiny
    assert check_onnx(g, path) <= 1e-4
    session = OnnxGenerator(path, threads=1)
    assert session.scale == 4 and session.kwargs == g.kwargs
    assert session.receptive_radius() == g.receptive_radius()
    for shape in [(1, 3, 7, 9), (3, 3, 16, 5)]:  # batch, height and width all differ from the export's
        x = torch.rand(*shape)
        with torch.no_grad():
            assert (session(x) - g(x)).abs().max() < 1e-4


def test_upscale_runs_on_the_onnxruntime_backend_with_tiles(tiny):
    g, path = tiny
    img = torch.rand(3, 21, 18)
    ref = upscale(g, img)
    assert (upscale(OnnxGenerator(path), img, tile=8) - ref).abs().max() < 1e-4


def test_onnx_errors(tmp_path, tiny):
    with pytest.raises(FileNotFoundError, match="srgan export"):
        OnnxGenerator(tmp_path / "missing.onnx")
    with pytest.raises(ValueError, match="eval-mode"):
        export_onnx(Generator(num_blocks=1, channels=8).train(), tmp_path / "x.onnx")


def test_cli_export_onnx_and_upscale_with_onnxruntime(tmp_path, capsys):
    from PIL import Image

    g = Generator(num_blocks=1, channels=8).eval()
    save_generator(tmp_path / "g.safetensors", g)
    assert main(["export", str(tmp_path / "g.safetensors"), "-o", str(tmp_path / "g.onnx")]) == 0
    assert "max |onnxruntime - torch|" in capsys.readouterr().out
    Image.new("RGB", (12, 10), (200, 30, 90)).save(tmp_path / "in.png")
    for backend_args, out in [
        (["--backend", "onnxruntime", "--model", str(tmp_path / "g.onnx")], "a"),
        (["--model", str(tmp_path / "g.safetensors"), "--precision", "fp32"], "b"),
    ]:
        argv = [
            "upscale",
            str(tmp_path / "in.png"),
            "-o",
            str(tmp_path / out),
            "--device",
            "cpu",
            *backend_args,
        ]
        assert main(argv) == 0
    a, b = (torch.from_numpy(np.asarray(Image.open(tmp_path / d / "in.png"))).int() for d in "ab")
    assert a.shape == (40, 48, 3) and (a - b).abs().max() <= 1
    argv = [
        "upscale",
        str(tmp_path / "in.png"),
        "-o",
        str(tmp_path / "c"),
        "--model",
        str(tmp_path / "g.onnx"),
    ]
    assert main(argv) == 2 and "--backend onnxruntime" in capsys.readouterr().err
