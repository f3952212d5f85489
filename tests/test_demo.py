"""The Gradio demo: `upscale_image` directly (shipped models, realism, a model given at start, every refusal),
then the running app on 127.0.0.1 through gradio_client: one upscale through `/upscale`, bad input (not an
image, too big) gets a clear error, and the app keeps serving."""

from __future__ import annotations

import pytest
from gradio_client import Client, handle_file  # the demo extra, which scripts/setup.sh installs
from mos_util import free_port
from PIL import Image

from srgan.cli import main
from srgan.demo import build_demo, model_choices, model_getter, side_by_side, upscale_image
from srgan.zoo import TABLE1_VARIANTS


def tiny_png(path, size=(12, 10)) -> str:
    Image.effect_noise(size, 40).convert("RGB").save(path)
    return str(path)


def test_upscale_image_directly(tmp_path):
    from test_hub import tiny_folder

    folder, _ = tiny_folder(tmp_path)
    choices = model_choices([str(folder)])
    assert choices == {**{n: n for n in TABLE1_VARIANTS}, "tiny": str(folder)}
    get = model_getter(choices, "cpu")
    src = tiny_png(tmp_path / "in.png")
    out = upscale_image(src, "srgan", 0.5, get_model=get)
    assert out.size == (48, 40) and out.mode == "RGB"
    assert upscale_image(src, "tiny", 1, get_model=get).size == (48, 40)
    before, after = side_by_side(Image.open(src), out)
    assert before.size == after.size == (48, 40)
    (tmp_path / "note.txt").write_text("not an image")
    for args, message in [
        ((str(tmp_path / "note.txt"), "srgan", 1), "image"),
        ((src, "nope", 1), "unknown model"),
        ((src, "srgan", 1.5), "realism"),
        ((src, "tiny", 0.5), "realism 1"),  # another shape than srresnet's: no mix
        ((None, "srgan", 1), "no image"),
    ]:
        with pytest.raises(ValueError, match=message):
            upscale_image(*args, get_model=get)
    with pytest.raises(ValueError, match="at most 100"):
        upscale_image(src, "srgan", 1, get_model=get, max_pixels=100)


def test_demo_command_refuses_bad_options_in_one_line(tmp_path, capsys):
    assert main(["demo", "--max-pixels", "0"]) == 2
    assert main(["demo", "--model", str(tmp_path / "missing")]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(errors) == 2 and "max_pixels" in errors[0] and "no model" in errors[1], errors


@pytest.mark.slow
def test_running_app_through_gradio_client(tmp_path):
    port = free_port()
    demo = build_demo(max_pixels=400, device="cpu", examples=[])
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        client = Client(f"http://127.0.0.1:{port}/", verbose=False)
        src = tiny_png(tmp_path / "in.png")
        out = client.predict(handle_file(src), "srresnet", 1.0, api_name="/upscale")
        assert Image.open(out).size == (48, 40)
        (tmp_path / "note.png").write_text("not an image")
        big = tiny_png(tmp_path / "big.png", size=(30, 30))
        for bad, message in [(tmp_path / "note.png", "image"), (big, "at most 400")]:
            with pytest.raises(Exception, match=message):
                client.predict(handle_file(str(bad)), "srresnet", 1.0, api_name="/upscale")
        out = client.predict(handle_file(src), "srgan", 0.3, api_name="/upscale")  # still serving
        assert Image.open(out).size == (48, 40)
    finally:
        demo.close()
