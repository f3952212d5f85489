"""`srgan demo`: a Gradio app to try the models in a browser, and the same function as an API endpoint.

The page: upload an image (or pick an example), choose the model (the five Table 1 variants and any model
given at start), set the realism, and see input and output in a before/after slider at the same display size
(the input enlarged with nearest neighbour), with the PNG to download. `upscale_image` is the function behind
both the page and the API endpoint `/upscale` (image, model, realism -> image) that `gradio_client` calls;
every check is in it. Inputs over `max_pixels` are refused before decoding; big ones are upscaled in tiles
with a progress bar; the queue runs one job at a time and holds at most QUEUE_SIZE.

Realism A mixes the chosen model's weights with the shipped srresnet's, (1 - A) srresnet + A model
(`srgan.zoo.interpolate_generators`): for `srgan` this is `srgan upscale --realism A`; 1 is the model as
trained. The four other variants were fine-tuned from the shipped srresnet too; a model of another shape
runs only at realism 1.

gradio (the `demo` extra) is imported only by `build_demo` and `launch_demo`.
"""

from __future__ import annotations

import functools
import math
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from PIL import Image

from .io import MAX_PIXELS, image_size, open_image, pil_to_rgb, save_png
from .upscale import SRModel, resolve_device, upscale
from .zoo import TABLE1_VARIANTS, interpolate_generators, load_model, model_name, resolve_precision

DEMO_MAX_PIXELS = 1_000_000  # input pixels: about a minute on a 2-core CPU with the paper's generator
QUEUE_SIZE = 16  # jobs waiting at most; one runs at a time
TILE = 256  # LR pixels per tile: progress for big inputs, bounded memory
MAX_FILE_SIZE = "64mb"  # uploads larger than this are refused by gradio itself
EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "examples"  # in a checkout: the quick start's image


def model_choices(extra: Sequence[str] = ()) -> dict[str, str]:
    """The models offered, name -> model spec: the five Table 1 variants, then the models given at start,
    named as `srgan.zoo.model_name` does (a folder's name, hf://ORG/REPO's REPO), or by their spec where
    that name is taken."""
    choices = {name: name for name in TABLE1_VARIANTS}
    for spec in map(str, extra):
        name = model_name(spec)
        choices[spec if name in choices and choices[name] != spec else name] = spec
    return choices


def model_getter(choices: dict[str, str], device: str = "auto") -> Callable[[str, float], SRModel]:
    """get(name, realism) -> the inference model to run: model `name` (of `choices`, name -> spec) with
    realism applied, in its fast inference form on `device`. Generators load on first use and stay; the last
    two mixes stay."""
    from .fast import prepare_for_inference

    run_device = resolve_device(device)

    @functools.cache
    def plain(name: str):
        return load_model(name)

    @functools.lru_cache(maxsize=2)
    def get(name: str, realism: float) -> SRModel:
        if name not in choices:
            raise ValueError(f"unknown model {name!r}: choose one of {', '.join(choices)}")
        if not (isinstance(realism, (int, float)) and math.isfinite(realism) and 0 <= realism <= 1):
            raise ValueError(f"realism must be a number in [0, 1], got {realism!r}")
        generator = plain(choices[name])
        if realism < 1 and choices[name] != "srresnet":
            base = plain("srresnet")
            if getattr(generator, "kwargs", None) != base.kwargs:
                raise ValueError(f"realism below 1 mixes {name} with srresnet, which needs a generator of "
                                 f"srresnet's shape {base.kwargs}; {name} has {generator.kwargs}: "
                                 "use realism 1")  # fmt: skip
            generator = interpolate_generators(base, generator, float(realism))
        return prepare_for_inference(generator, device=run_device)

    return get


def read_input(image: str | Path | None, max_pixels: int | None = DEMO_MAX_PIXELS) -> Image.Image:
    """The uploaded file `image`, opened (`srgan.io.open_image`) once it is known to be an image of at most
    `max_pixels` (its header is read first); ValueError with a message for the user otherwise."""
    if image is None or str(image) == "":
        raise ValueError("no image: upload one, or pick an example")
    w, h = image_size(image)  # ValueError: not an image
    if max_pixels is not None and w * h > max_pixels:
        raise ValueError(f"the image is {w}x{h} = {w * h:,} pixels; this demo takes at most {max_pixels:,} "
                         "(`srgan upscale` on your own machine takes any size)")  # fmt: skip
    return open_image(image, max_pixels=max_pixels)


def upscale_image(
    image: str | Path | Image.Image,
    model: str,
    realism: float,
    *,
    get_model: Callable[[str, float], SRModel],
    max_pixels: int | None = DEMO_MAX_PIXELS,
    on_tile: Callable[[int, int], None] | None = None,
) -> Image.Image:
    """Upscale `image` (an image file, or an image `read_input` returned) with `model` at `realism`
    (`model_getter`): what the demo page and its `/upscale` endpoint run. ValueError with a message for the
    user: no image, not an image, over `max_pixels` (checked before decoding), an unknown model or a bad
    realism; MemoryError when the result cannot fit in memory."""
    if isinstance(image, Image.Image):
        if max_pixels is not None and image.width * image.height > max_pixels:
            raise ValueError(f"the image has {image.width * image.height:,} pixels; at most {max_pixels:,}")
        img = image
    else:
        img = read_input(image, max_pixels)
    generator = get_model(model, realism)
    precision = resolve_precision("auto", _device_of(generator))
    return upscale(generator, img, tile=TILE, precision=precision, on_tile=on_tile)


def _device_of(model: SRModel):
    import torch

    for tensor in getattr(model, "parameters", lambda: iter(()))():
        return tensor.device
    return torch.device("cpu")


def side_by_side(lr_img: Image.Image, sr_img: Image.Image) -> tuple[Image.Image, Image.Image]:
    """(input enlarged to the output's size with nearest neighbour, output), both RGB(A) 8-bit for display."""
    def show(img: Image.Image) -> Image.Image:
        keep_alpha = img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info)
        return img.convert("RGBA") if keep_alpha else pil_to_rgb(img)

    return show(lr_img).resize(sr_img.size, Image.Resampling.NEAREST), show(sr_img)


def build_demo(
    models: Sequence[str] = (),
    *,
    max_pixels: int | None = DEMO_MAX_PIXELS,
    device: str = "auto",
    examples: Sequence[str | Path] | None = None,
):
    """The Gradio Blocks of the demo (not launched). `models`: model specs offered besides the five
    variants (checked now: each loads); the first is preselected, else srgan."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import gradio as gr

    if max_pixels is not None and max_pixels < 1:
        raise ValueError("max_pixels must be a positive number of input pixels")
    for spec in models:  # fail at start, not on a visitor's first click
        load_model(spec)
    choices = model_choices(models)
    get_model = model_getter(choices, device)
    if examples is None:
        examples = sorted(EXAMPLES_DIR.glob("*.png")) if EXAMPLES_DIR.is_dir() else []
    workdir = Path(tempfile.mkdtemp(prefix="srgan-demo-"))
    limit = f"at most {max_pixels:,} pixels" if max_pixels else "any size"

    def run(image, model, realism):
        try:
            return upscale_image(image, model, realism, get_model=get_model, max_pixels=max_pixels)
        except (ValueError, OSError, MemoryError) as e:  # OSError: a truncated or unreadable file
            raise gr.Error(str(e)) from None

    def run_page(image, model, realism, progress=gr.Progress()):  # noqa: B008 (gradio's way)
        t0 = time.monotonic()
        try:
            lr_img = read_input(image, max_pixels)
            sr_img = upscale_image(lr_img, model, realism, get_model=get_model, max_pixels=max_pixels,
                                   on_tile=lambda done, n: progress((done, n), desc="tiles"))  # fmt: skip
        except (ValueError, OSError, MemoryError) as e:
            raise gr.Error(str(e)) from None
        out = Path(tempfile.mkdtemp(dir=workdir)) / f"{Path(image).stem}_x{sr_img.width // lr_img.width}.png"
        save_png(sr_img, out)
        _prune(workdir, keep=QUEUE_SIZE)
        note = (f"{lr_img.width}x{lr_img.height} -> {sr_img.width}x{sr_img.height} with `{model}` at realism "
                f"{realism:g} in {time.monotonic() - t0:.1f} s")  # fmt: skip
        return side_by_side(lr_img, sr_img), gr.DownloadButton(value=str(out), interactive=True), note

    with gr.Blocks(title="srgan demo", delete_cache=(3600, 3600)) as demo:
        gr.Markdown(
            "# srgan: SRResNet / SRGAN x4 super-resolution\n"
            "Ledig et al., *Photo-Realistic Single Image Super-Resolution Using a Generative Adversarial "
            f"Network* (CVPR 2017). Upload an image ({limit}); it is upscaled 4x. Realism mixes the model's "
            "weights with the PSNR-oriented `srresnet`'s: 0 is `srresnet`, 1 the chosen model as trained."
        )
        with gr.Row():
            with gr.Column():
                image = gr.Image(type="filepath", image_mode=None, sources=["upload", "clipboard"],
                                 label="input image", elem_id="input-image", height=280)  # fmt: skip
                names = list(choices)
                model = gr.Dropdown(names, value=names[len(TABLE1_VARIANTS)] if models else "srgan",
                                    label="model", elem_id="model")  # fmt: skip
                realism = gr.Slider(0, 1, value=1, step=0.05, label="realism", elem_id="realism",
                                    info="0: srresnet; 1: the chosen model as trained")  # fmt: skip
                button = gr.Button("Upscale x4", variant="primary", elem_id="upscale")
                if examples:
                    gr.Examples([[str(p)] for p in examples], inputs=[image], label="examples")
            with gr.Column():
                compare = gr.ImageSlider(label="input (nearest neighbour) | output", type="pil", format="png",
                                         interactive=False, elem_id="compare", height=560)  # fmt: skip
                download = gr.DownloadButton("Download PNG", interactive=False, elem_id="download")
                status = gr.Markdown(elem_id="status")
        button.click(run_page, [image, model, realism], [compare, download, status], api_visibility="private")
        # the API endpoint: the same function, a file in and the image out (hidden on the page)
        api_image = gr.File(type="filepath", visible=False, label="image")
        api_out = gr.Image(type="pil", format="png", visible=False, label="upscaled")
        api_button = gr.Button(visible=False)
        api_button.click(run, [api_image, model, realism], api_out, api_name="upscale")
    return demo.queue(max_size=QUEUE_SIZE, default_concurrency_limit=1)


def _prune(folder: Path, keep: int) -> None:
    """Delete all but the `keep` newest result folders (gradio has copied the older ones to its cache)."""
    import shutil

    done = sorted((p for p in folder.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime)
    for old in done[:-keep]:
        shutil.rmtree(old, ignore_errors=True)


def launch_demo(
    models: Sequence[str] = (),
    *,
    host: str = "127.0.0.1",
    port: int = 7860,
    max_pixels: int | None = DEMO_MAX_PIXELS,
    device: str = "auto",
) -> None:
    """Build the demo and serve it on host:port until Ctrl-C (what `srgan demo` runs)."""
    demo = build_demo(models, max_pixels=max_pixels, device=device)
    demo.launch(server_name=host, server_port=port, max_file_size=MAX_FILE_SIZE, show_error=True)


__all__ = ["DEMO_MAX_PIXELS", "MAX_PIXELS", "build_demo", "launch_demo", "model_choices", "model_getter",
           "side_by_side", "upscale_image"]  # fmt: skip
