"""Hostile and careless input, as one battery on files made here (issue 16).

Each case checks the exit code, that the verb says what went wrong in one `error:` line (no traceback), and
that no output or partial file exists where none should. Most cases call `srgan.cli.main` in this process (a
tiny generator, so the battery stays in the fast lane); Ctrl-C needs a real process.
"""

from __future__ import annotations

import os
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from srgan.checkpoint import save_checkpoint, save_generator
from srgan.cli import main
from srgan.config import make_config
from srgan.models import Generator
from srgan.upscale import upscale
from srgan.zoo import load_model

TINY_TRAIN = ["--num-blocks", "1", "--channels", "8", "--crop-size", "32", "--batch-size", "2",
              "--log-every", "1", "--ckpt-every", "1"]  # fmt: skip


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny convolutions: extra threads only contend


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    """A tiny generator as a release file."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    save_generator(path, Generator(num_blocks=1, channels=8).eval())
    return path


def rgb(path: Path, h: int = 12, w: int = 10, seed: int = 0, **save) -> Path:
    arr = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    Image.fromarray(arr).save(path, **save)
    return path


def error_lines(err: str) -> list[str]:
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err, err
    return [line for line in lines if line.startswith("error:")]


def one_error(capsys, *needles: str) -> str:
    """The single `error:` line the verb printed, which must contain each needle."""
    errors = error_lines(capsys.readouterr().err)
    assert len(errors) == 1, errors
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*")) if folder.exists() else []


@pytest.fixture
def bench_set(tmp_path) -> Path:
    """A benchmark-layout set: HR/ with two images whose sides are multiples of 4."""
    hr = tmp_path / "Mini" / "HR"
    hr.mkdir(parents=True)
    rgb(hr / "a.png", 48, 40)
    rgb(hr / "b.png", 40, 48, seed=1)
    return hr.parent


@pytest.fixture
def train_dir(tmp_path) -> Path:
    d = tmp_path / "train"
    d.mkdir()
    for i in range(6):
        rgb(d / f"{i}.png", 40, 36, seed=i)
    return d


# --- 1. no code runs from a file ------------------------------------------------------------------------


class Planted:
    """Pickles as a call of os.system: what a hostile checkpoint would hold."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture
def planted(tmp_path) -> tuple[Path, Path]:
    """(a .pt whose pickle runs `touch MARKER` when unpickled without restrictions, MARKER)."""
    marker = tmp_path / "PWNED"
    g = Generator(num_blocks=1, channels=8)
    state = {"format": "srgan-train-checkpoint", "step": 1, "generator": g.state_dict(),
             "generator_kwargs": g.kwargs, "config": {"preset": "srresnet-mse"},
             "payload": Planted(marker)}  # fmt: skip
    path = tmp_path / "evil.pt"
    torch.save(state, path)
    return path, marker


def test_planted_checkpoint_runs_nothing_under_any_verb(tmp_path, planted, bench_set, train_dir, capsys):
    evil, marker = planted
    img = rgb(tmp_path / "in.png")
    verbs = {
        "export": ["export", str(evil), "-o", str(tmp_path / "out.safetensors")],
        "upscale --model": ["upscale", str(img), "-o", str(tmp_path / "up"), "--model", str(evil)],
        "eval --model": ["eval", "--model", str(evil), "--data", str(bench_set)],
        "benchmark --models": ["benchmark", "--models", str(evil), "--data", str(bench_set), "--out",
                               str(tmp_path / "bench"), "--lpips", "none", "--no-progress"],  # fmt: skip
        "train --resume": ["train", "--resume", str(evil), "--data", str(train_dir)],
        "train --init-from": ["train", "--preset", "srgan-mse", "--init-from", str(evil), "--data",
                              str(train_dir), "--out", str(tmp_path / "run"), *TINY_TRAIN],  # fmt: skip
    }
    for verb, argv in verbs.items():
        assert main(argv) == 2, verb
        one_error(capsys, "refused to load", "evil.pt")
        assert not marker.exists(), f"{verb} ran the planted command"
    assert files_in(tmp_path / "up") == [] and not (tmp_path / "out.safetensors").exists()
    assert not (tmp_path / "run").exists()


# --- 2. no NaN model ------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["inf", "nan", "-1e-4", "2"])
def test_learning_rate_must_be_finite_and_in_range(tmp_path, train_dir, value, capsys):
    out = tmp_path / "run"
    argv = ["train", "--data", str(train_dir), "--out", str(out), "--steps", "2", f"--learning-rate={value}"]
    assert main([*argv, *TINY_TRAIN]) == 2
    one_error(capsys, "learning_rate")
    assert not out.exists()


def test_realism_must_be_finite(tmp_path, capsys):
    img = rgb(tmp_path / "in.png")
    assert main(["upscale", str(img), "-o", str(tmp_path / "up"), "--realism", "nan"]) == 2
    one_error(capsys, "realism")
    assert not (tmp_path / "up").exists()


def test_a_diverging_run_stops_keeps_the_last_finite_checkpoint_and_fails(tmp_path, train_dir, monkeypatch,
                                                                          capsys):  # fmt: skip
    from srgan import losses

    calls = {"n": 0}
    real = losses.mse_loss

    def diverging(sr_img, hr_img):
        calls["n"] += 1
        return real(sr_img, hr_img) * (float("nan") if calls["n"] >= 3 else 1.0)

    monkeypatch.setattr(losses, "mse_loss", diverging)
    out = tmp_path / "run"
    argv = ["train", "--data", str(train_dir), "--out", str(out), "--steps", "6", *TINY_TRAIN]
    assert main(argv) == 1
    one_error(capsys, "NaN or infinite at step 3", "step 2) is kept")
    g = load_model(out / "last.pt")  # refuses non-finite weights, so this also checks they are finite
    assert torch.load(out / "last.pt", weights_only=True)["step"] == 2 and not g.training


def test_weights_with_nan_are_refused(tmp_path, capsys):
    g = Generator(num_blocks=1, channels=8)
    state = {k: v.clone() for k, v in g.state_dict().items()}
    state["tail.weight"][0, 0, 0, 0] = float("nan")
    path = tmp_path / "nan.safetensors"
    g.load_state_dict(state)
    save_generator(path, g)
    img = rgb(tmp_path / "in.png")
    assert main(["upscale", str(img), "-o", str(tmp_path / "up"), "--model", str(path)]) == 2
    one_error(capsys, "NaN or infinity", "tail.weight")
    assert not (tmp_path / "up").exists()


# --- 3. bad inputs to training are found before step 1 ----------------------------------------------------


def test_mistyped_val_folder_fails_before_step_one(tmp_path, train_dir, capsys):
    out = tmp_path / "run"
    argv = ["train", "--data", str(train_dir), "--out", str(out), "--val", str(tmp_path / "Set5_typo")]
    assert main([*argv, "--steps", "2", *TINY_TRAIN]) == 2
    one_error(capsys, "Set5_typo")
    assert not out.exists()


def truncate(path: Path, keep: float = 0.5) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def test_truncated_training_image_is_skipped_by_name_at_start(tmp_path, train_dir, capsys, caplog):
    rgb(train_dir / "broken.jpg", 64, 64, seed=9, quality=95)
    truncate(train_dir / "broken.jpg", 0.6)  # a valid header, then the data stops
    for i in range(6, 30):  # enough images that one broken file is under the 5 % rule
        rgb(train_dir / f"{i}.png", 40, 36, seed=i)
    out = tmp_path / "run"
    assert main(["train", "--data", str(train_dir), "--out", str(out), "--steps", "2", *TINY_TRAIN]) == 0
    assert "broken.jpg" in caplog.text and "unreadable" in caplog.text
    assert torch.load(out / "last.pt", weights_only=True)["step"] == 2


def test_many_unreadable_training_images_stop_before_step_one(tmp_path, train_dir, capsys):
    for i in range(2):
        (train_dir / f"junk{i}.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    out = tmp_path / "run"
    assert main(["train", "--data", str(train_dir), "--out", str(out), "--steps", "2", *TINY_TRAIN]) == 2
    one_error(capsys, "cannot be decoded", "junk")
    assert not out.exists()


# --- 4. one error line, nothing written --------------------------------------------------------------------


@pytest.fixture
def truncated_pt(tmp_path) -> Path:
    g = Generator(num_blocks=1, channels=8)
    path = tmp_path / "cut.pt"
    save_checkpoint(path, {"format": "srgan-train-checkpoint", "step": 1, "generator": g.state_dict(),
                           "generator_kwargs": g.kwargs, "config": {"preset": "srresnet-mse"}})  # fmt: skip
    return truncate(path)


def test_truncated_checkpoint_is_one_error_line(tmp_path, truncated_pt, bench_set, train_dir, capsys):
    for argv in (["export", str(truncated_pt), "-o", str(tmp_path / "x.safetensors")],
                 ["eval", "--model", str(truncated_pt), "--data", str(bench_set)],
                 ["train", "--resume", str(truncated_pt), "--data", str(train_dir)]):  # fmt: skip
        assert main(argv) == 2, argv
        one_error(capsys, "cut.pt", "not a readable srgan checkpoint")
    assert not (tmp_path / "x.safetensors").exists()


def test_garbage_safetensors_and_non_model_files(tmp_path, capsys):
    img = rgb(tmp_path / "in.png")
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(os.urandom(4096))
    wrong = tmp_path / "wrong.safetensors"  # a real safetensors file, but not a generator
    save_file({"x": torch.zeros(2)}, str(wrong))
    misfit = tmp_path / "misfit.safetensors"  # a generator file whose weights do not fit its kwargs
    save_file({"x": torch.zeros(2)}, str(misfit), metadata={"kwargs": '{"num_blocks": 1, "channels": 8}'})
    notes = tmp_path / "notes.txt"
    notes.write_text("not a model")
    cases = {garbage: "not a readable safetensors", wrong: "no 'kwargs' metadata", misfit: "do not fit",
             img: "not a model file", notes: "not a model file", tmp_path: "is a folder"}  # fmt: skip
    for model, needle in cases.items():
        assert main(["upscale", str(img), "-o", str(tmp_path / "up"), "--model", str(model)]) == 2, model
        one_error(capsys, needle)
    assert main(["export", str(garbage), "-o", str(tmp_path / "x.safetensors")]) == 2
    one_error(capsys, "not a readable safetensors")
    assert not (tmp_path / "up").exists() and not (tmp_path / "x.safetensors").exists()


def test_truncated_image_in_eval_hr_is_one_error_line(bench_set, capsys):
    truncate(bench_set / "HR" / "b.png")
    assert main(["eval", "--model", "bicubic", "--data", str(bench_set), "--no-progress"]) == 2
    one_error(capsys, "b.png", "cannot read the image")


def wait_for(predicate, timeout: float = 60.0) -> None:
    t0 = time.monotonic()
    while not predicate():
        if time.monotonic() - t0 > timeout:
            raise TimeoutError("the process never got there")
        time.sleep(0.02)


def interrupt(argv: list[str], ready) -> subprocess.CompletedProcess:
    """Run `srgan ARGV`, send SIGINT (Ctrl-C) once ready() is true, return the finished process."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    # default SIGINT: a suite started in the background (`cmd &`) ignores SIGINT, and children inherit it
    proc = subprocess.Popen([sys.executable, "-m", "srgan.cli", *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # fmt: skip
    try:
        wait_for(lambda: ready() or proc.poll() is not None)
        assert proc.poll() is None, f"finished before it could be interrupted: {proc.communicate()}"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def test_ctrl_c_during_upscale_keeps_finished_outputs_and_no_partial_file(tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    for i in range(40):
        rgb(inputs / f"{i:02d}.png", 96, 96, seed=i)
    out = tmp_path / "out"
    done = interrupt(["upscale", str(inputs), "-o", str(out), "--model", "srresnet", "--device", "cpu"],
                     lambda: any(out.glob("*.png")))  # fmt: skip
    assert done.returncode == 130, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert "Traceback" not in done.stderr and len(lines) == 1, lines
    written = sorted(p.name for p in out.iterdir())
    assert lines[0] == f"interrupted: {len(written)} of 40 written to {out}"
    assert 1 <= len(written) < 40 and all(n.endswith(".png") and not n.startswith(".") for n in written)
    for name in written:  # every finished output is whole
        with Image.open(out / name) as img:
            img.load()
            assert img.size == (384, 384)


@pytest.mark.parametrize("verb", ["eval", "benchmark"])
def test_ctrl_c_during_eval_and_benchmark_is_one_line(tmp_path, verb):
    hr = tmp_path / "Big" / "HR"
    hr.mkdir(parents=True)
    for i in range(30):
        rgb(hr / f"{i:02d}.png", 192, 192, seed=i)
    started = time.monotonic()
    argv = ["eval", "--model", "srresnet", "--data", str(hr.parent), "--json", str(tmp_path / "r.json")]
    if verb == "benchmark":
        argv = ["benchmark", "--models", "srresnet", "--data", str(hr.parent), "--out", str(tmp_path / "b"),
                "--lpips", "none", "--protocol", "default"]  # fmt: skip
    done = interrupt(argv, lambda: time.monotonic() - started > 4)  # well into the first images
    assert done.returncode == 130, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip() and "%|" not in line]
    assert "Traceback" not in done.stderr and len(lines) == 1 and lines[0].startswith("interrupted:"), lines
    assert not (tmp_path / "r.json").exists()
    leftovers = [p for p in tmp_path.rglob("*.tmp")]
    assert leftovers == []


# --- 5. decompression bombs --------------------------------------------------------------------------------


def png_declaring(path: Path, width: int, height: int) -> Path:
    """A tiny PNG file whose header declares width x height 8-bit gray pixels (its data is one short row)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))  # fmt: skip
    return path


@pytest.mark.parametrize("side", [10_000, 30_000])
def test_decompression_bomb_is_refused_before_decoding(tmp_path, tiny, side, capsys):
    bomb = png_declaring(tmp_path / "bomb.png", side, side)
    assert bomb.stat().st_size < 200
    t0 = time.monotonic()
    assert main(["upscale", str(bomb), "-o", str(tmp_path / "up"), "--model", str(tiny)]) == 1
    line = one_error(capsys, "bomb.png")
    assert ("--max-pixels" in line) if side == 10_000 else ("refused before decoding" in line)
    assert time.monotonic() - t0 < 10 and files_in(tmp_path / "up") == []


def test_max_pixels_is_a_flag(tmp_path, tiny, capsys):
    img = rgb(tmp_path / "in.png", 12, 10)
    argv = ["upscale", str(img), "-o", str(tmp_path / "up"), "--model", str(tiny), "--max-pixels"]
    assert main([*argv, "100"]) == 1
    one_error(capsys, "10x12 is 0.0 megapixels, over the limit of 0.0001")
    assert main([*argv, "120"]) == 0


def test_output_larger_than_free_memory_is_refused_with_the_figures(tiny, monkeypatch):
    monkeypatch.setattr(sys.modules["srgan.upscale"], "available_memory", lambda device: 10 * 2**20)
    with pytest.raises(MemoryError, match=r"needs about 0\.0 GiB .* only 0\.0 GiB"):
        upscale(load_model(tiny), torch.rand(3, 200, 200))


# --- 6. tiny images keep their colour ---------------------------------------------------------------------


@pytest.mark.parametrize("size", [(1, 1), (2, 2), (7, 5), (64, 64)])
def test_constant_images_keep_their_colour(size):
    model = load_model("srresnet", fast=True)
    colour = torch.tensor([200.0, 10.0, 10.0]) / 255
    # colour="none": the colour fix alone would correct the mean; this checks the edge padding
    sr_img = upscale(model, colour.view(3, 1, 1).expand(3, *size).contiguous(), colour="none")
    assert sr_img.shape == (3, 4 * size[0], 4 * size[1])
    mean = sr_img.mean((1, 2)) * 255
    assert (mean - colour * 255).abs().max() <= 3, mean  # zero padding gave (80, 72, 72) for 1x1
    if min(size) < 16:  # replicated edges: every pixel, not only the mean
        assert (sr_img * 255 - colour.view(3, 1, 1) * 255).abs().max() <= 4


# --- 7. outputs stay in -o ---------------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", ["/../../escaped", "a/b", "..\\x", ".."])
def test_suffix_with_a_path_separator_is_refused(tmp_path, tiny, suffix, capsys):
    img = rgb(tmp_path / "in.png")
    argv = ["upscale", str(img), "-o", str(tmp_path / "o" / "p"), "--model", str(tiny), "--suffix", suffix]
    assert main(argv) == 2
    one_error(capsys, "--suffix")
    assert files_in(tmp_path) == ["in.png"]


# --- 9. animations ---------------------------------------------------------------------------------------


def test_animated_gif_comes_out_as_an_animated_gif(tmp_path, tiny, capsys):
    frames = [Image.new("RGB", (8, 6), c) for c in ("red", "green", "blue")]
    gif = tmp_path / "anim.gif"
    frames[0].save(gif, save_all=True, append_images=frames[1:], duration=100, loop=0)
    assert main(["upscale", str(gif), "-o", str(tmp_path / "up"), "--model", str(tiny)]) == 0
    assert "warning:" not in capsys.readouterr().err
    assert files_in(tmp_path / "up") == ["anim.gif"]  # every frame: tests/test_video.py


# --- what already held: files, modes, outputs ------------------------------------------------------------


def test_zero_byte_truncated_and_renamed_files(tmp_path, tiny, capsys):
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    cut = truncate(rgb(tmp_path / "cut.png", 64, 64))
    renamed = rgb(tmp_path / "really_jpeg.png", format="JPEG")  # a JPEG named .png: read by content
    text = tmp_path / "text.jpg"
    text.write_text("hello")
    out = tmp_path / "up"
    assert main(["upscale", str(empty), str(cut), str(renamed), str(text), "-o", str(out), "--model",
                 str(tiny)]) == 1  # fmt: skip
    errors = error_lines(capsys.readouterr().err)
    assert [e.split(":")[1].strip() for e in errors] == [str(empty), str(cut), str(text)]
    assert files_in(out) == ["really_jpeg.png"]


@pytest.mark.parametrize("mode,out_mode", [("L", "L"), ("LA", "LA"), ("RGBA", "RGBA"), ("P", "RGB"),
                                           ("I;16", "I;16"), ("CMYK", "RGB")])  # fmt: skip
def test_every_mode_comes_out_x4(tmp_path, tiny, mode, out_mode):
    img = Image.open(rgb(tmp_path / "base.png", 6, 5))
    src = img.convert(mode) if mode != "I;16" else Image.fromarray(np.full((6, 5), 40000, np.uint16))
    path = tmp_path / ("in.tif" if mode == "CMYK" else "in.png")
    src.save(path)
    assert main(["upscale", str(path), "-o", str(tmp_path / "up"), "--model", str(tiny)]) == 0
    with Image.open(tmp_path / "up" / "in.png") as out:
        assert out.size == (20, 24) and out.mode == out_mode


def test_exif_rotated_input_comes_out_upright(tmp_path, tiny):
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    rgb(tmp_path / "rot.jpg", 6, 10, exif=exif.tobytes())
    assert main(["upscale", str(tmp_path / "rot.jpg"), "-o", str(tmp_path / "up"), "--model", str(tiny)]) == 0
    with Image.open(tmp_path / "up" / "rot.png") as out:
        assert out.size == (24, 40)


def test_existing_outputs_and_same_stem_twice(tmp_path, tiny, capsys):
    a = rgb(tmp_path / "a.png")
    out = tmp_path / "up"
    out.mkdir()
    (out / "a.png").write_bytes(b"precious")
    assert main(["upscale", str(a), "-o", str(out), "--model", str(tiny)]) == 1
    one_error(capsys, "output exists", "--force")
    assert (out / "a.png").read_bytes() == b"precious"
    assert main(["upscale", str(a), "-o", str(out), "--model", str(tiny), "--force"]) == 0
    assert (out / "a.png").read_bytes() != b"precious" and files_in(out) == ["a.png"]
    rgb(tmp_path / "a.jpg")
    assert main(["upscale", str(a), str(tmp_path / "a.jpg"), "-o", str(tmp_path / "new"), "--model",
                 str(tiny)]) == 2  # fmt: skip
    one_error(capsys, "would all be written to")
    assert not (tmp_path / "new").exists()


def test_output_folder_that_is_a_file_or_read_only(tmp_path, tiny, capsys):
    a = rgb(tmp_path / "a.png")
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the output folder should be")
    assert main(["upscale", str(a), "-o", str(blocker), "--model", str(tiny)]) == 1
    one_error(capsys, str(a))
    assert blocker.read_text().startswith("a file")
    if os.geteuid() == 0:
        return  # root writes into read-only folders; the case above covers an unwritable output
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        assert main(["upscale", str(a), "-o", str(locked), "--model", str(tiny)]) == 1
        one_error(capsys, str(a))
        assert files_in(locked) == []
    finally:
        locked.chmod(0o755)


def test_config_numbers_are_checked_in_the_python_api_too(tmp_path):
    with pytest.raises(ValueError, match="learning_rate"):
        make_config("srresnet-mse", learning_rate=float("inf"))
    with pytest.raises(ValueError, match="steps = 2.5: must be an integer"):
        make_config("srresnet-mse", steps=2.5)
    with pytest.raises(ValueError, match="ema_decay"):
        make_config("srresnet-mse", ema_decay=1.0)


def test_planted_checkpoint_in_the_python_api(planted):
    evil, marker = planted
    with pytest.raises(ValueError, match="refused to load"):
        load_model(evil)
    assert not marker.exists()


def test_crafted_generator_sizes_are_refused_before_anything_is_built(tmp_path, capsys):
    img = rgb(tmp_path / "in.png")
    for kwargs, needle in (('{"num_blocks": 1, "channels": 200000}', "channels=200000"),
                           ('{"num_blocks": 10000000}', "num_blocks=10000000"),
                           ('{"num_blocks": 1, "evil": 1}', "unknown generator kwargs")):  # fmt: skip
        path = tmp_path / "crafted.safetensors"
        save_file({"x": torch.zeros(1)}, str(path), metadata={"kwargs": kwargs})
        t0 = time.monotonic()
        assert main(["upscale", str(img), "-o", str(tmp_path / "up"), "--model", str(path)]) == 2
        assert main(["export", str(path), "-o", str(tmp_path / "x.safetensors")]) == 2
        assert time.monotonic() - t0 < 10
        errors = error_lines(capsys.readouterr().err)
        assert len(errors) == 2 and all(needle in e for e in errors), errors
    assert not (tmp_path / "up").exists() and not (tmp_path / "x.safetensors").exists()


def test_a_state_dict_is_not_a_resumable_checkpoint(tmp_path, train_dir, capsys):
    path = tmp_path / "sd.pt"
    torch.save({"generator": Generator(num_blocks=1, channels=8).state_dict()}, path)
    assert main(["train", "--resume", str(path), "--data", str(train_dir)]) == 2
    one_error(capsys, "cannot be resumed", "config")


def test_preset_names_of_shipped_models_export(tmp_path, capsys):
    assert main(["export", "srgan-vgg54", "-o", str(tmp_path / "g.safetensors")]) == 0
    a, b = load_model(tmp_path / "g.safetensors").state_dict(), load_model("srgan").state_dict()
    assert all(torch.equal(a[k], b[k].float()) for k in a)


def test_the_python_api_refuses_a_state_dict_as_resume_too(tmp_path, train_dir):
    from srgan.train import train

    path = tmp_path / "sd.pt"
    torch.save({"generator": Generator(num_blocks=1, channels=8).state_dict()}, path)
    cfg = make_config("srresnet-mse", train_dirs=(str(train_dir),), out_dir=str(tmp_path / "run"), steps=2,
                      num_blocks=1, channels=8, crop_size=32, batch_size=2, tensorboard=False)  # fmt: skip
    with pytest.raises(ValueError, match="cannot be resumed: it lacks config"):
        train(cfg, resume=path)
