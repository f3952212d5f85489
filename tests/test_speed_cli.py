"""CLI wiring of the speed options: eval --fast / --precision, upscale --tile / --precision, train flags."""

import json

import numpy as np
import torch
from PIL import Image

from srgan.checkpoint import load_checkpoint, save_generator
from srgan.cli import main
from srgan.hardware import cpu_supports_bf16
from srgan.models import Generator
from srgan.zoo import resolve_precision


def test_resolve_precision():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert resolve_precision("auto", cpu) == ("bf16" if cpu_supports_bf16() else "fp32")
    assert resolve_precision("auto", cpu, backend="onnxruntime") == "fp32"
    assert resolve_precision("auto", cuda) == "fp32"  # GPU fp16/bf16 quality not measured yet
    assert resolve_precision("fp16", cuda) == "fp16" and resolve_precision("fp32", cpu) == "fp32"


def test_eval_fast_and_bf16_agree_with_plain(tmp_path, capsys):
    hr = (np.random.default_rng(0).random((32, 40, 3)) * 255).astype(np.uint8)
    (tmp_path / "toy" / "HR").mkdir(parents=True)
    Image.fromarray(hr).save(tmp_path / "toy" / "HR" / "a.png")
    weights = tmp_path / "g.safetensors"
    save_generator(weights, Generator(num_blocks=1, channels=8))
    psnr = {}
    for name, flags in {"plain": [], "fast": ["--fast"], "bf16": ["--fast", "--precision", "bf16"]}.items():
        out = tmp_path / f"{name}.json"
        argv = ["eval", "--model", str(weights), "--data", str(tmp_path / "toy"), "--no-progress"]
        assert main([*argv, "--json", str(out), *flags]) == 0
        psnr[name] = json.loads(out.read_text())["toy"]["psnr"]
    assert abs(psnr["fast"] - psnr["plain"]) < 1e-3 and abs(psnr["bf16"] - psnr["plain"]) < 0.1


def test_upscale_tile_flag(tmp_path, capsys):
    weights = tmp_path / "g.safetensors"
    save_generator(weights, Generator(num_blocks=1, channels=8))
    Image.new("RGB", (20, 14), (10, 200, 30)).save(tmp_path / "in.png")
    outs = []
    for tile, plain in [("auto", []), ("0", []), ("8", ["--plain"])]:
        out = tmp_path / f"t{tile}"
        argv = ["upscale", str(tmp_path / "in.png"), "-o", str(out), "--model", str(weights)]
        assert main([*argv, "--device", "cpu", "--tile", tile, "--precision", "fp32", *plain]) == 0
        outs.append(np.asarray(Image.open(out / "in.png")).astype(int))
    assert outs[0].shape == (56, 80, 3) and all(np.abs(o - outs[0]).max() <= 1 for o in outs)
    argv = ["upscale", str(tmp_path / "in.png"), "-o", str(tmp_path / "x"), "--model", str(weights)]
    assert main([*argv, "--tile", "big"]) == 2 and "--tile must be auto" in capsys.readouterr().err


def test_train_speed_flags_reach_the_config(tmp_path, make_images):
    data = make_images(tmp_path / "train")
    out = tmp_path / "run"
    argv = ["train", "--data", str(data), "--out", str(out), "--steps", "1", "--batch-size", "2",
            "--num-blocks", "1", "--channels", "8", "--crop-size", "32", "--data-on-device", "--fused-adam",
            "--compile", "none", "--fast-crops"]  # fmt: skip
    assert main(argv) == 0
    cfg = load_checkpoint(out / "last.pt")["config"]
    assert cfg["data_on_device"] and cfg["fused_adam"] and cfg["compile_mode"] == "none"
    assert not cfg["exact_crops"]
