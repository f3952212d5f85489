"""Upscaling files: inputs (files, folders, glob patterns) in, OUTDIR/<stem><suffix>.png out (videos and
animated GIF / WebP / APNG keep their extension, see `srgan.video`).

`upscale_files` is what `srgan upscale` runs, with every check in it so the Python API gets them too:
outputs are planned before anything is written (two inputs sharing an output, or an output that would
overwrite an input, stop the run), options are checked before the model loads, each file is read with the
`max_pixels` limit checked before decoding, and each output is written atomically (no partial file, also on
Ctrl-C). One bad file does not stop the others: it is reported through `on_error` and counted.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm

from .io import MAX_PIXELS, atomic_write, expand_inputs, open_image, save_png
from .upscale import COLOUR_FIXES, check_tiling, resolve_device, upscale
from .video import MAX_FRAME_PIXELS, check_codec, is_animation, is_video, upscale_animation, upscale_video
from .zoo import DEFAULT_MODEL, load_inference_model, resolve_precision


class PlanError(ValueError):
    """The outputs cannot be planned: `problems` holds one message per problem (nothing was written)."""

    def __init__(self, problems: list[str]):
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass
class BatchResult:
    """What `upscale_files` did: outputs written, and (input, reason) for each input that failed."""

    total: int = 0
    written: list[Path] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during `upscale_files`: `result` says what was finished (those outputs are complete)."""

    def __init__(self, result: BatchResult):
        super().__init__()
        self.result = result


def check_suffix(suffix: str) -> None:
    if any(sep in suffix for sep in ("/", "\\", os.sep, "\0")) or suffix in (".", ".."):
        raise ValueError(f"--suffix {suffix!r} must not contain a path separator: outputs stay in -o")


def output_suffix(path: Path) -> str:
    """.png for a still image; a video or an animation keeps its own extension."""
    return path.suffix if is_video(path) or is_animation(path) else ".png"


def plan_outputs(files: list[Path], outdir: Path, suffix: str = "") -> list[tuple[Path, Path]]:
    """(input, output) pairs, OUTDIR/<stem><suffix>.png (a video or animation: its own extension);
    PlanError when two inputs would share an output or an output would overwrite an input (compared
    case-insensitively, as macOS and Windows file systems do)."""
    check_suffix(suffix)
    jobs = [(path, outdir / f"{path.stem}{suffix}{output_suffix(path)}") for path in files]
    by_name: dict[str, list[Path]] = {}
    for path, out in jobs:
        by_name.setdefault(str(out.resolve()).casefold(), []).append(path)
    problems = [
        f"{', '.join(str(p) for p in paths)} would all be written to "
        f"{outdir / (paths[0].stem + suffix + output_suffix(paths[0]))}: rename them or run them "
        "separately with different -o or --suffix"
        for paths in by_name.values()
        if len(paths) > 1
    ]
    inputs = {path.resolve() for path in files}
    problems += [
        f"{path}: its output would overwrite an input: choose another -o or a --suffix"
        for path, out in jobs
        if out.resolve() in inputs
    ]
    if problems:
        raise PlanError(problems)
    return jobs


def check_run_options(backend: str, device: str, precision: str) -> tuple[torch.device, str]:
    """(device, precision) resolved from "auto" and checked together; ValueError / RuntimeError if they
    cannot run. precision "auto" for torch on a CPU stays "auto": whether it is int8 depends on the model
    (`srgan.zoo.load_inference_model` decides)."""
    device = resolve_device("cpu" if backend == "onnxruntime" and device == "auto" else device)
    if precision == "auto" and backend == "torch" and device.type == "cpu":
        return device, precision
    precision = resolve_precision(precision, device, backend=backend)
    if precision == "int8":
        if backend != "torch":
            raise ValueError("--precision int8 runs with --backend torch")
        from .int8 import check_int8_support

        check_int8_support(device)
    if precision == "fp16" and device.type != "cuda":
        raise ValueError("--precision fp16 needs a CUDA device; on CPU use bf16 or fp32")
    if backend == "onnxruntime" and (device.type != "cpu" or precision != "fp32"):
        raise ValueError("--backend onnxruntime runs fp32 on CPU: use --device cpu --precision fp32")
    return device, precision


def _say(kind: str, path: object, message: str) -> None:
    tqdm.write(f"{kind}: {path}: {message}", file=sys.stderr)


def upscale_files(
    inputs: list[str],
    outdir: str | Path,
    *,
    model: str | None = None,
    realism: float | None = None,
    backend: str = "torch",
    device: str = "auto",
    precision: str = "auto",
    plain: bool = False,
    tile: int | str | None = "auto",
    tile_pad: int | None = None,
    suffix: str = "",
    force: bool = False,
    max_pixels: int | None = MAX_PIXELS,
    colour: str = "rgb",
    codec: str = "auto",
    crf: int | None = None,
    max_frame_pixels: int | None = MAX_FRAME_PIXELS,
    progress: bool | None = None,
    on_error: Callable[[object, str], None] = lambda path, why: _say("error", path, why),
    on_warning: Callable[[object, str], None] = lambda path, why: _say("warning", path, why),
) -> BatchResult:
    """Upscale every image of `inputs` (files, folders, glob patterns) into OUTDIR/<stem><suffix>.png; videos
    (`srgan.video.upscale_video`, with `codec`, `crf` and `max_frame_pixels`) and animations keep their
    extension.

    Raises before anything is written: PlanError (clashing outputs), ValueError / RuntimeError (no inputs,
    bad options, a model that cannot load: the message says which). Then each input that fails (unreadable,
    over `max_pixels`, an existing output without `force`) is passed to `on_error` and counted in the
    result, and the others still run. Ctrl-C raises `Interrupted` with the result so far.
    """
    outdir = Path(outdir)
    if colour not in COLOUR_FIXES:
        raise ValueError(f"--colour must be one of {', '.join(COLOUR_FIXES)}, got {colour!r}")
    check_tiling(tile, tile_pad)  # before the model loads, not once per file
    if max_pixels is not None and max_pixels < 1:
        raise ValueError("--max-pixels must be a positive number of input pixels")
    files, input_errors = expand_inputs(inputs)
    result = BatchResult(failed=list(input_errors))
    for spec, reason in input_errors:
        on_error(spec, reason)
    jobs = plan_outputs(files, outdir, suffix)
    if not jobs:
        raise ValueError("no input images")
    for _, out in jobs:
        if is_video(out):
            check_codec(codec, out, crf)  # before the model loads
    result.total = len(jobs)
    run_device, run_precision = check_run_options(backend, device, precision)
    try:
        generator, run_precision = load_inference_model(
            model, backend=backend, device=run_device, plain=plain, realism=realism, precision=run_precision
        )
    except (ImportError, ValueError, OSError, RuntimeError) as e:
        what = f"realism {realism}" if realism is not None else repr(model or DEFAULT_MODEL)
        raise ValueError(f"cannot load model {what}: {e}") from None
    try:
        bar = tqdm(jobs, desc="upscale", unit="img", disable=None if progress is None else not progress)
        for path, out in bar:
            if out.exists() and not force:
                on_error(path, f"output exists, left untouched: {out} (--force to overwrite)")
                result.failed.append((str(path), "output exists"))
                continue
            options = dict(tile=tile, tile_pad=tile_pad, precision=run_precision, device=run_device,
                           colour=colour)  # fmt: skip
            try:
                if is_video(path):
                    upscale_video(generator, path, out, codec=codec, crf=crf, force=force,
                                  max_frame_pixels=max_frame_pixels, progress=progress,
                                  on_warning=lambda why, p=path: on_warning(p, why), **options)  # fmt: skip
                elif is_animation(path):
                    upscale_animation(generator, path, out, force=force, max_pixels=max_pixels,
                                      progress=False, **options)  # fmt: skip
                else:
                    image = open_image(path, max_pixels=max_pixels)
                    sr_img = upscale(generator, image, **options)
                    atomic_write(out, lambda tmp, img=sr_img: save_png(img, tmp))
            except Exception as e:  # one bad file must not stop the others; it is reported and counted
                known = isinstance(e, (OSError, ValueError, MemoryError, ImportError))
                reason = str(e) if known else f"{type(e).__name__}: {e}"
                reason = reason.splitlines()[0] if reason else type(e).__name__
                on_error(path, reason)
                result.failed.append((str(path), reason))
            else:
                result.written.append(out)
    except KeyboardInterrupt:  # atomic_write leaves no partial file; finished outputs stay
        raise Interrupted(result) from None
    return result
