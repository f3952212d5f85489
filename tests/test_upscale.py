"""upscale(): tiling, precision, errors; io round trips of image modes; the `srgan upscale` command."""

from __future__ import annotations

import io as _io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageCms

from srgan import upscale
from srgan.checkpoint import save_generator
from srgan.cli import main
from srgan.imresize import imresize
from srgan.io import open_image, pil_to_planes, to_uint8
from srgan.models import Generator


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # Tiny convolutions are ~10x slower when two threads fight another job for two cores.
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def model() -> Generator:
    torch.manual_seed(0)
    g = Generator(num_blocks=2, channels=16)
    for m in g.modules():  # non-trivial BatchNorm statistics, so eval mode is really exercised
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    return g.eval()


@pytest.fixture(scope="module")
def model_path(model, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    save_generator(path, model)
    return path


def srgb_icc() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def rand_u8(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def run(model_path: Path, *args: str) -> int:
    return main(["upscale", *map(str, args), "--model", str(model_path), "--device", "cpu", "--tile", "8"])


# --- upscale() on tensors ------------------------------------------------------------------------------


@pytest.mark.parametrize(("shape", "tile"), [((3, 37, 29), 8), ((2, 3, 23, 41), 16), ((3, 19, 19), 7)])
def test_tiled_equals_untiled(model, shape, tile):
    img = torch.rand(shape)
    whole = upscale(model, img)
    tiled = upscale(model, img, tile=tile)
    assert whole.shape == (*shape[:-2], shape[-2] * 4, shape[-1] * 4)
    assert whole.dtype == torch.float32 and 0 <= whole.min() and whole.max() <= 1
    assert (tiled - whole).abs().max() <= 1 / 255
    assert (tiled - whole).abs().max() < 1e-5  # in fact equal up to float rounding


def test_tile_pad_matters(model):
    # The test above would be vacuous if context did not matter: without it, seams appear.
    img = torch.rand(3, 24, 24)
    assert (upscale(model, img, tile=8, tile_pad=0) - upscale(model, img)).abs().max() > 1e-3


def test_tile_larger_than_image(model):
    img = torch.rand(3, 9, 13)
    assert torch.equal(upscale(model, img, tile=64), upscale(model, img))


def test_bf16_close_to_fp32(model):
    img = torch.rand(3, 17, 15)
    out = upscale(model, img, precision="bf16", tile=8)
    assert out.dtype == torch.float32
    assert (out - upscale(model, img)).abs().max() < 0.02


def test_fp16_on_cpu_is_a_clear_error(model):
    with pytest.raises(ValueError, match="fp16 needs a CUDA device"):
        upscale(model, torch.rand(3, 8, 8), precision="fp16", device="cpu")


def test_out_of_memory_suggests_smaller_tiles(model):
    class OOMGenerator(Generator):
        def forward(self, lr_img):
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    g = OOMGenerator(num_blocks=1, channels=8).eval()
    with pytest.raises(torch.OutOfMemoryError, match=r"--tile 32"):
        upscale(g, torch.rand(3, 64, 64), tile=64)
    with pytest.raises(torch.OutOfMemoryError, match=r"no tiling.*--tile 256"):
        upscale(g, torch.rand(3, 64, 64))


@pytest.mark.parametrize(
    ("image", "error", "match"),
    [
        (torch.zeros(3, 8, 8, dtype=torch.uint8), TypeError, "divide uint8 by 255"),
        (torch.full((3, 8, 8), 200.0), ValueError, r"\[0, 1\]"),
        (torch.rand(4, 8, 8), ValueError, "RGB"),
        (torch.rand(8, 8), ValueError, "RGB"),
    ],
)
def test_bad_images_raise(model, image, error, match):
    with pytest.raises(error, match=match):
        upscale(model, image)


def test_bad_arguments_raise(model):
    img = torch.rand(3, 8, 8)
    with pytest.raises(ValueError, match="precision"):
        upscale(model, img, precision="int8")
    with pytest.raises(ValueError, match="tile"):
        upscale(model, img, tile=0)
    with pytest.raises(ValueError, match="training mode"):
        upscale(Generator(num_blocks=1, channels=8), img)


def test_pil_in_pil_out(model):
    pil = Image.fromarray(rand_u8(7, 5, 4), "RGBA")
    out = upscale(model, pil, tile=4)
    assert isinstance(out, Image.Image) and out.mode == "RGBA" and out.size == (20, 28)


# --- io: what a file carries ----------------------------------------------------------------------------


def test_exif_orientation_is_applied(tmp_path, model_path):
    raw = Image.fromarray(rand_u8(6, 10, 3), "RGB")  # stored 10 wide, 6 high
    exif = raw.getexif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    path = tmp_path / "rotated.jpg"
    raw.save(path, exif=exif, quality=95)

    rgb, alpha, meta = pil_to_planes(open_image(path))
    with Image.open(path) as stored:
        upright = np.asarray(stored.convert("RGB").transpose(Image.Transpose.ROTATE_270))
    assert rgb.shape == (3, 10, 6) and alpha is None and meta.out_mode == "RGB"
    assert torch.equal(to_uint8(rgb).permute(1, 2, 0), torch.from_numpy(upright.copy()))

    assert run(model_path, path, "-o", tmp_path / "out") == 0
    with Image.open(tmp_path / "out" / "rotated.png") as out:
        assert out.size == (24, 40)  # (W, H) upright, x4
        assert out.getexif().get(0x0112) in (None, 1)


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_icc_profile_is_kept(tmp_path, model_path, suffix):
    icc = srgb_icc()
    path = tmp_path / f"tagged{suffix}"
    Image.fromarray(rand_u8(9, 11, 3), "RGB").save(path, icc_profile=icc)
    assert run(model_path, path, "-o", tmp_path / "out") == 0
    with Image.open(tmp_path / "out" / "tagged.png") as out:
        assert out.info.get("icc_profile") == icc


def test_cmyk_profile_is_not_put_on_rgb_output(tmp_path, model_path):
    fake_cmyk_icc = bytearray(srgb_icc())
    fake_cmyk_icc[16:20] = b"CMYK"
    path = tmp_path / "print.jpg"
    Image.fromarray(rand_u8(8, 8, 4), "CMYK").save(path, icc_profile=bytes(fake_cmyk_icc))
    assert run(model_path, path, "-o", tmp_path / "out") == 0
    with Image.open(tmp_path / "out" / "print.png") as out:
        assert out.mode == "RGB" and "icc_profile" not in out.info


def _alpha_u8(h: int, w: int) -> np.ndarray:
    return (np.add.outer(np.arange(h) * 255 // (h - 1), np.arange(w) * 0)).astype(np.uint8)  # vertical ramp


def make_image(kind: str, h: int = 9, w: int = 7) -> Image.Image:
    if kind == "RGB":
        return Image.fromarray(rand_u8(h, w, 3), "RGB")
    if kind == "L":
        return Image.fromarray(rand_u8(h, w), "L")
    if kind == "1":
        return Image.fromarray(rand_u8(h, w) > 127)
    if kind == "LA":
        return Image.fromarray(np.dstack([rand_u8(h, w), _alpha_u8(h, w)]), "LA")
    if kind == "RGBA":
        return Image.fromarray(np.dstack([rand_u8(h, w, 3), _alpha_u8(h, w)]), "RGBA")
    if kind == "P":
        return Image.fromarray(rand_u8(h, w, 3), "RGB").quantize(16)
    if kind == "P+transparency":
        img = Image.fromarray(rand_u8(h, w, 3), "RGB").quantize(16)
        img.info["transparency"] = 0
        return img
    if kind == "I;16":
        return Image.fromarray(rand_u8(h, w).astype(np.uint16) * 257 + 3)  # uint16 -> I;16
    raise ValueError(kind)


@pytest.mark.parametrize(
    ("kind", "out_mode"),
    [
        ("RGB", "RGB"),
        ("L", "L"),
        ("1", "L"),
        ("LA", "LA"),
        ("RGBA", "RGBA"),
        ("P", "RGB"),
        ("P+transparency", "RGBA"),
        ("I;16", "I;16"),
    ],
)
def test_modes_round_trip(tmp_path, model_path, kind, out_mode):
    src = make_image(kind)
    src.save(tmp_path / "in.png", **({"transparency": 0} if kind == "P+transparency" else {}))
    with Image.open(tmp_path / "in.png") as reread:
        in_mode = reread.mode
        expected_alpha = np.asarray(reread.convert("RGBA"))[:, :, 3] if out_mode in ("RGBA", "LA") else None
    assert in_mode == kind.split("+")[0]  # the file really has the mode under test

    assert run(model_path, tmp_path / "in.png", "-o", tmp_path / "out") == 0
    with Image.open(tmp_path / "out" / "in.png") as out:
        out.load()
    assert out.mode == out_mode and out.size == (7 * 4, 9 * 4)
    arr = np.asarray(out)
    if expected_alpha is not None:  # alpha is upscaled on its own with bicubic imresize
        want = to_uint8(imresize(torch.from_numpy(expected_alpha.copy()).float() / 255, scale=4)).numpy()
        got = arr[:, :, -1]
        assert np.abs(got.astype(int) - want.astype(int)).max() <= 1
    if out_mode == "I;16":
        assert arr.dtype == np.uint16 and (arr % 257 != 0).any()  # really 16 bits, not 8 bits scaled


def test_16bit_gray_read_with_16_bits(tmp_path):
    values = np.array([[0, 1, 2, 65535]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "deep.png")
    rgb, alpha, meta = pil_to_planes(open_image(tmp_path / "deep.png"))
    assert meta.bit_depth == 16 and meta.out_mode == "I;16" and alpha is None
    assert torch.allclose(rgb[0, 0] * 65535, torch.tensor([0.0, 1, 2, 65535]), atol=1e-2)


# --- the command ------------------------------------------------------------------------------------------


def write_rgb(path: Path, h: int = 6, w: int = 5, seed: int = 0) -> Path:
    Image.fromarray(rand_u8(h, w, 3, seed=seed), "RGB").save(path)
    return path


def test_existing_output_untouched_without_force(tmp_path, model_path, capsys):
    src = write_rgb(tmp_path / "a.png")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    (out_dir / "a.png").write_bytes(b"precious")

    assert run(model_path, src, "-o", out_dir) == 1
    assert (out_dir / "a.png").read_bytes() == b"precious"
    err = capsys.readouterr().err
    assert f"error: {src}: output exists" in err and "--force" in err

    assert run(model_path, src, "-o", out_dir, "--force") == 0
    with Image.open(out_dir / "a.png") as out:
        assert out.size == (20, 24)


def test_corrupt_file_reported_others_written(tmp_path, model_path, capsys):
    good = write_rgb(tmp_path / "good.png")
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"this is not a png")
    truncated = tmp_path / "truncated.png"
    buf = _io.BytesIO()
    Image.fromarray(rand_u8(64, 64, 3), "RGB").save(buf, format="PNG")
    truncated.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    out_dir = tmp_path / "out"

    assert run(model_path, bad, truncated, good, "-o", out_dir) == 1
    err_lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(err_lines) == 2
    assert err_lines[0].startswith(f"error: {bad}: ") and err_lines[1].startswith(f"error: {truncated}: ")
    assert sorted(p.name for p in out_dir.iterdir()) == ["good.png"]  # no partial or temporary files


def test_folder_and_glob_inputs(tmp_path, model_path, capsys):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i, name in enumerate(["x.png", "y.jpg"]):
        write_rgb(folder / name, seed=i)
    (folder / "notes.txt").write_text("not an image")
    other = tmp_path / "more"
    other.mkdir()
    for i, name in enumerate(["p1.png", "p2.png", "q.bmp"]):
        write_rgb(other / name, seed=i)

    out_dir = tmp_path / "out"
    assert run(model_path, folder, str(other / "p*.png"), "-o", out_dir, "--suffix", "_x4") == 0
    assert sorted(p.name for p in out_dir.iterdir()) == ["p1_x4.png", "p2_x4.png", "x_x4.png", "y_x4.png"]

    capsys.readouterr()
    assert run(model_path, str(tmp_path / "none*.png"), str(other / "q.bmp"), "-o", out_dir) == 1
    assert f"error: {tmp_path / 'none*.png'}: no file matches this pattern" in capsys.readouterr().err
    assert (out_dir / "q.png").exists()  # the other input still ran
    assert run(model_path, str(tmp_path / "none*.png"), "-o", out_dir) == 2  # nothing at all to do
    assert "error: no input images" in capsys.readouterr().err


def test_same_output_name_is_refused_upfront(tmp_path, model_path, capsys):
    a = write_rgb(tmp_path / "a.png")
    b = write_rgb(tmp_path / "a.jpg")
    out_dir = tmp_path / "out"
    assert run(model_path, a, b, "-o", out_dir) == 2
    assert "would all be written to" in capsys.readouterr().err
    assert not out_dir.exists()


def test_output_never_overwrites_its_input(tmp_path, model_path, capsys):
    src = write_rgb(tmp_path / "a.png")
    before = src.read_bytes()
    assert run(model_path, src, "-o", tmp_path, "--force") == 2
    assert "overwrite an input" in capsys.readouterr().err
    assert src.read_bytes() == before


def test_missing_model_is_one_clear_error(tmp_path, capsys):
    src = write_rgb(tmp_path / "a.png")
    rc = main(["upscale", str(src), "-o", str(tmp_path / "out"), "--model", str(tmp_path / "no.safetensors")])
    assert rc == 2
    assert "error: cannot load model" in capsys.readouterr().err


def test_fp16_on_cpu_cli(tmp_path, model_path, capsys):
    src = write_rgb(tmp_path / "a.png")
    assert run(model_path, src, "-o", tmp_path / "out", "--precision", "fp16") == 2
    assert "fp16 needs a CUDA device" in capsys.readouterr().err


def test_bf16_cli(tmp_path, model_path):
    src = write_rgb(tmp_path / "a.png")
    assert run(model_path, src, "-o", tmp_path / "out", "--precision", "bf16") == 0
    assert (tmp_path / "out" / "a.png").exists()


def test_colour_fix_gives_the_output_the_inputs_low_frequencies(model):
    from srgan.upscale import colour_fix, upscale_tensor

    lr_img = torch.rand(3, 10, 12, generator=torch.Generator().manual_seed(3)) * 0.6 + 0.2
    raw = upscale_tensor(model, lr_img)
    shifted = (raw + torch.tensor([0.05, -0.03, 0.02]).view(3, 1, 1)).clamp(0, 1)
    fixed = colour_fix(shifted, lr_img, 4, "rgb")
    # back-projection: what survives the x1/4 bicubic moves towards the input, and the mean colour is the
    # input's again (the random tiny model's own output is far from it; one step does not make it equal)
    def residual(img):
        return (imresize(img.double(), 0.25) - lr_img.double()).abs().mean()

    assert residual(fixed) < 0.6 * residual(shifted)
    mean_error = (fixed.mean((1, 2)) - lr_img.mean((1, 2))).abs().max()
    assert mean_error < 0.005 < (shifted.mean((1, 2)) - lr_img.mean((1, 2))).abs().max()
    chroma = colour_fix(shifted, lr_img, 4, "chroma")  # luma of the shifted image kept
    y = torch.tensor([65.481, 128.553, 24.966]).view(3, 1, 1) / 255
    assert ((chroma - shifted) * y).sum(0).abs().mean() < 2e-3
    assert torch.equal(colour_fix(shifted, lr_img, 4, "none"), shifted)
    # upscale() applies "rgb" unless told otherwise; "none" is the network's output as eval scores it
    assert torch.equal(upscale(model, lr_img, colour="none"), raw)
    assert torch.allclose(upscale(model, lr_img), colour_fix(raw, lr_img, 4, "rgb"))
    with pytest.raises(ValueError, match="colour"):
        upscale(model, lr_img, colour="sepia")
