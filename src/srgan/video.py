"""Video and animation upscaling: every frame x scale, streamed in bounded memory, sound and timing kept.

`upscale_video(model, src, dst)` decodes `src` with PyAV (the `[video]` extra), upscales its frames in
batches sized from free memory (`frame_batch`) and encodes them into `dst`, whose container follows its
extension (.mp4, .mkv, .webm, .mov). Decoding and encoding run in their own threads, overlapping the model,
with bounded queues between them, so memory does not grow with the clip's length. Kept: each frame's
timestamp and duration (variable frame rate too), the frame rate and time base, the rotation (display
matrix), colour range, space, primaries and transfer; audio and subtitle streams are copied packet for
packet. A truncated file is written as far as it decodes, with a warning (a corrupt file that gives no frame
is an error). `upscale_animation` does GIF, WebP and APNG with PIL: every frame, its duration and the loop
count.
"""

from __future__ import annotations

import queue
import threading
import warnings
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageSequence
from tqdm import tqdm

from .fast import DEFAULT_CPU_BUDGET, bytes_per_pixel
from .hardware import available_memory
from .io import atomic_write, frames_to_tensor, tensor_to_frames
from .upscale import SRModel, _model_device, resolve_device, upscale

# container by output extension (FFmpeg muxer names)
CONTAINERS = {".mp4": "mp4", ".mkv": "matroska", ".webm": "webm", ".mov": "mov"}
VIDEO_EXTENSIONS = tuple(CONTAINERS)
# --codec -> (FFmpeg encoder, pixel format); ffv1 keeps the input's pixel format when it can (lossless)
CODECS = {"h264": ("libx264", "yuv420p"), "h265": ("libx265", "yuv420p"), "vp9": ("libvpx-vp9", "yuv420p"),
          "ffv1": ("ffv1", None)}  # fmt: skip
WEBM_CODECS = ("vp9",)
# The largest output frame by default: 8K UHD (7680x4320), the x4 of a 1080p clip; above it x264 and most
# players give up.
MAX_FRAME_PIXELS = 7680 * 4320
MAX_BATCH = 8
# int8 (CPU) gains nothing from bigger batches and loses at 8: 320x240 srgan, 2 cores, 1.27 / 1.28 / 0.94
# frames/s at 1 / 2 / 8 frames per call
MAX_BATCH_INT8 = 2
ANIMATION_FORMATS = ("GIF", "PNG", "WEBP")
# Bytes per output pixel of an animation held for its encoder: the RGBA frame and the encoder's own copy
ANIMATION_BYTES_PER_PIXEL = 2 * 4
# Bytes per output pixel of one frame in flight beyond the network: the float32 result, its colour-fixed copy,
# the uint8 frame and its YUV copy in the encoder queue.
FRAME_BYTES_PER_PIXEL = 2 * 12 + 3 + 2
# YUV <-> RGB matrices swscale has, by a stream's colour-space tag (AVColorSpace: bt709, fcc, bt470bg,
# smpte170m, smpte240m, bt2020 ncl / cl) -> swscale's own number (av.video.reformatter.Colorspace)
SWS_MATRIX = {1: 1, 4: 4, 5: 5, 6: 5, 7: 7, 9: 9, 10: 9}
BT709, SMPTE170M = 1, 6


def _import_av():
    try:
        import av
    except ImportError:
        raise ImportError(
            "video needs PyAV, which is not installed: pip install 'srgan[video]' (or pip install av)"
        ) from None
    return av


def is_video(path: str | Path) -> bool:
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def is_animation(path: str | Path) -> bool:
    """Whether `path` is an animated GIF, WebP or APNG (more than one frame); False for anything PIL cannot
    open."""
    try:
        with warnings.catch_warnings():  # a huge declared size is refused later, by `open_image`
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                return bool(getattr(img, "is_animated", False)) and img.format in ANIMATION_FORMATS
    except Exception:
        return False


def check_codec(codec: str, dst: str | Path, crf: int | None) -> str:
    """The codec for `dst` ("auto": h264, vp9 for .webm); ValueError for an unknown codec or container, a
    codec the container cannot hold, or a CRF out of range."""
    ext = Path(dst).suffix.lower()
    if ext not in CONTAINERS:
        raise ValueError(f"unknown video container {ext!r}: use one of {', '.join(VIDEO_EXTENSIONS)}")
    if codec == "auto":
        codec = "vp9" if ext == ".webm" else "h264"
    if codec not in CODECS:
        raise ValueError(f"--codec must be one of auto, {', '.join(CODECS)}, got {codec!r}")
    if ext == ".webm" and codec not in WEBM_CODECS:
        raise ValueError(f"a .webm file holds vp9, not {codec}: use --codec vp9 or another container")
    if crf is not None:
        top = 63 if codec == "vp9" else 51
        if codec == "ffv1":
            raise ValueError("--crf does not apply to ffv1 (lossless)")
        if not (isinstance(crf, int) and 0 <= crf <= top):
            raise ValueError(f"--crf for {codec} must be 0..{top}, got {crf!r}")
    return codec


def colour_matrix(colorspace: int, height: int) -> tuple[int, int]:
    """(swscale matrix to convert with, colour-space tag to write) for frames tagged `colorspace`, `height`
    lines high: their own matrix when swscale has it; else (untagged, or a matrix swscale lacks) the one
    players assume for that size, BT.601 up to 576 lines and BT.709 above. That one is then written as a tag:
    untagged, the x4 output would be taken for BT.709 by its size, and an SD clip's colours would shift."""
    if colorspace in SWS_MATRIX:
        return SWS_MATRIX[colorspace], int(colorspace)
    tag = SMPTE170M if height <= 576 else BT709
    return SWS_MATRIX[tag], tag


def frame_batch(model: SRModel, hw: tuple[int, int], precision: str, device: torch.device) -> int:
    """Frames per model call: as many (up to MAX_BATCH; MAX_BATCH_INT8 for int8) as fit whole in half the
    free memory of `device` (capped as for tiles on CPU), counting the network's activations and each
    frame's results; at least 1 (then `upscale` tiles the frame)."""
    budget = available_memory(device) // 2
    if device.type == "cpu":
        budget = min(budget, DEFAULT_CPU_BUDGET)
    h, w = hw
    per_frame = h * w * (bytes_per_pixel(model, precision) + model.scale**2 * FRAME_BYTES_PER_PIXEL)
    most = MAX_BATCH_INT8 if precision == "int8" else MAX_BATCH
    return int(max(1, min(most, budget // max(1, per_frame))))


class _Stop(Exception):
    """Another stage of the pipeline stopped (its error, or Ctrl-C, is raised by the caller)."""


def _put(q: queue.Queue, item, stop: threading.Event) -> None:
    while True:
        if stop.is_set():
            raise _Stop
        try:
            q.put(item, timeout=0.1)
            return
        except queue.Full:
            continue


def _get(q: queue.Queue, stop: threading.Event):
    while True:
        if stop.is_set():
            raise _Stop
        try:
            return q.get(timeout=0.1)
        except queue.Empty:
            continue


_DONE = object()


def _open_input(av, src: Path):
    """(container, video stream, streams to copy) or ValueError with one line saying why."""
    try:
        inp = av.open(str(src))
    except av.error.FileNotFoundError:
        raise FileNotFoundError(f"no such file: {src}") from None
    except (av.error.FFmpegError, UnicodeDecodeError) as e:
        raise ValueError(f"cannot read the video (corrupt, truncated or not a video: {_reason(e)})") from None
    if not inp.streams.video:
        kinds = sorted({s.type for s in inp.streams})
        inp.close()
        what = f"{', '.join(kinds)} only" if kinds else "no streams"
        raise ValueError(f"no video stream in the file ({what})")
    stream = inp.streams.video[0]
    if stream.codec_context is None or stream.codec_context.name is None:
        inp.close()
        raise ValueError("unknown video codec: FFmpeg has no decoder for it")
    return inp, stream


def _reason(e: BaseException) -> str:
    text = str(e).splitlines()[0] if str(e) else type(e).__name__
    return text


def upscale_video(
    model: SRModel,
    src: str | Path,
    dst: str | Path,
    *,
    tile: int | str | None = "auto",
    tile_pad: int | None = None,
    precision: str = "fp32",
    device: str | torch.device | None = None,
    edge: str = "auto",
    colour: str = "rgb",
    codec: str = "auto",
    crf: int | None = None,
    batch: int | None = None,
    force: bool = False,
    max_frame_pixels: int | None = MAX_FRAME_PIXELS,
    progress: bool | None = None,
    on_warning: Callable[[str], None] | None = None,
) -> Path:
    """Upscale every frame of the video `src` with `model` into `dst` (container from its extension); the
    options as for `srgan.upscale`, plus:

    codec: "auto" (h264, or vp9 for .webm), "h264", "h265", "vp9" or "ffv1" (lossless).
    crf: quality for h264 / h265 (0..51, default the encoder's: 23 / 28) and vp9 (0..63, default 32).
    batch: frames per model call (default `frame_batch`: from free memory).
    force: overwrite an existing `dst` (else FileExistsError).
    max_frame_pixels: refuse inputs whose output frame would have more pixels (None: no limit).
    on_warning: called with a message when the file is truncated (what decoded is written) or a stream
        cannot be copied.

    The output is written to a temporary file beside `dst` and renamed at the end: an error or Ctrl-C leaves
    no partial `dst`, and `src` is only read. Raises ImportError (PyAV missing: names the extra),
    FileExistsError, ValueError (one line: corrupt, no video stream, zero frames, unknown codec, over the
    pixel limit, bad options). Returns `dst`.
    """
    av = _import_av()
    src, dst = Path(src), Path(dst)
    codec = check_codec(codec, dst, crf)
    if batch is not None and not (isinstance(batch, int) and batch >= 1):
        raise ValueError(f"batch must be a positive number of frames, got {batch!r}")
    if dst.exists() and not force:
        raise FileExistsError(f"output exists, left untouched: {dst} (--force to overwrite)")
    if src.resolve() == dst.resolve():
        raise ValueError(f"{dst}: the output would overwrite the input: choose another -o or a --suffix")
    warn = on_warning or (lambda message: tqdm.write(f"warning: {src}: {message}"))
    run_device = resolve_device(device) or _model_device(model)
    inp, in_v = _open_input(av, src)
    try:
        ctx = in_v.codec_context
        h, w = ctx.height, ctx.width
        s = model.scale
        if not h or not w:
            raise ValueError("the video stream has no frame size (corrupt or unknown codec)")
        if max_frame_pixels is not None and h * w * s * s > max_frame_pixels:
            raise ValueError(
                f"{w}x{h} frames give {w * s}x{h * s}, {w * h * s * s / 1e6:.1f} megapixels per frame, over "
                f"the limit of {max_frame_pixels / 1e6:g} (raise it with --max-frame-pixels)"
            )
        n_batch = batch or frame_batch(model, (h, w), precision, run_device)
        job = dict(model=model, tile=tile, tile_pad=tile_pad, precision=precision, device=device, edge=edge,
                   colour=colour)  # fmt: skip
        atomic_write(dst, lambda tmp: _transcode(av, inp, in_v, tmp, dst, codec, crf, n_batch, job, progress,
                                                 warn))  # fmt: skip
    finally:
        inp.close()
    return dst


def _add_video_stream(out, in_v, first, codec: str, crf: int | None, scale: int):
    ctx = in_v.codec_context
    encoder, pix_fmt = CODECS[codec]
    rate = in_v.average_rate or in_v.guessed_rate or in_v.base_rate or Fraction(25)
    options = {}
    if crf is not None:
        options["crf"] = str(crf)
    if codec == "vp9":
        options.setdefault("crf", "32")
        options["b"] = "0"  # constant quality
    if codec == "h265":
        options["x265-params"] = "log-level=error"
    stream = out.add_stream(encoder, rate=rate, options=options)
    stream.width, stream.height = ctx.width * scale, ctx.height * scale
    in_fmt = first.format.name
    stream.pix_fmt = pix_fmt or (in_fmt if in_fmt in ("yuv420p", "yuv422p", "yuv444p", "gray") else "yuv444p")
    stream.time_base = in_v.time_base
    stream.codec_context.time_base = in_v.time_base
    for attr in ("color_range", "color_primaries", "color_trc"):
        value = getattr(first, attr, None)
        if value is not None:
            setattr(stream.codec_context, attr, value)
    stream.codec_context.colorspace = colour_matrix(first.colorspace, first.height)[1]
    matrix = _display_matrix(first)
    if matrix is not None:
        stream.set_display_matrix(matrix)  # rotation and flips, as the input's
    return stream


def _display_matrix(frame) -> list[int] | None:
    """The frame's display matrix (rotation, flips) as FFmpeg's 9 int32, or None."""
    for side_data in frame.side_data:
        if side_data.type.name == "DISPLAYMATRIX":
            return [int(v) for v in np.frombuffer(bytes(side_data), "=i4")]
    return None


def _transcode(av, inp, in_v, tmp: str, dst: Path, codec, crf, n_batch, job, progress, warn) -> None:
    out = av.open(tmp, "w", format=CONTAINERS[dst.suffix.lower()])
    stop = threading.Event()
    decoded: queue.Queue = queue.Queue(maxsize=2)  # batches of frames and the packets to copy, in order
    upscaled: queue.Queue = queue.Queue(maxsize=2)
    errors: list[BaseException] = []
    copy_streams = [st for st in inp.streams if st.type in ("audio", "subtitle")]
    for st in inp.streams:
        if st is not in_v and st not in copy_streams:  # a second video (cover art), data, attachments
            warn(f"{st.type} stream {st.index} is not copied (only the first video stream is upscaled, and "
                 "audio and subtitles copied)")  # fmt: skip
    total = in_v.frames or _frames_from_duration(inp, in_v)
    state = {"frames": 0, "truncated": None}

    def decode_worker():
        try:
            batch = []
            try:
                for packet in inp.demux(in_v, *copy_streams):
                    if packet.stream is in_v:
                        for frame in packet.decode():
                            batch.append(frame)
                            if len(batch) == n_batch:
                                _put(decoded, ("frames", batch), stop)
                                batch = []
                    elif packet.dts is not None:
                        _put(decoded, ("packet", packet), stop)
            except av.error.FFmpegError as e:  # truncated or damaged: keep what decoded
                state["truncated"] = _reason(e)
            if batch:
                _put(decoded, ("frames", batch), stop)
            _put(decoded, _DONE, stop)
        except _Stop:
            pass
        except BaseException as e:
            errors.append(e)
            stop.set()

    def encode_worker():
        out_v = None
        mapping = {}
        try:
            while (item := _get(upscaled, stop)) is not _DONE:
                kind, payload = item
                if out_v is None:  # streams are added once the first frame shows the input's properties
                    if kind == "packet":
                        pending.append(payload)
                        continue
                    out_v = _add_video_stream(out, in_v, payload[0][0], codec, crf, job["model"].scale)
                    for st in copy_streams:
                        try:
                            mapping[st.index] = out.add_stream_from_template(st)
                        except (ValueError, av.error.FFmpegError) as e:
                            warn(f"{st.type} stream {st.index} cannot go into {dst.suffix}: left out ({e})")
                    for packet in pending:
                        _mux_copy(out, packet, mapping)
                    pending.clear()
                if kind == "packet":
                    _mux_copy(out, payload, mapping)
                    continue
                frames, arrays = payload
                for src_frame, arr in zip(frames, arrays, strict=True):
                    matrix, tag = colour_matrix(src_frame.colorspace, src_frame.height)
                    frame = av.VideoFrame.from_ndarray(arr, format="rgb24")
                    frame = frame.reformat(format=out_v.pix_fmt, dst_colorspace=matrix,
                                           dst_color_range=src_frame.color_range)  # fmt: skip
                    frame.pts, frame.time_base = src_frame.pts, src_frame.time_base
                    frame.duration = src_frame.duration
                    for attr in ("color_range", "color_primaries", "color_trc"):
                        setattr(frame, attr, getattr(src_frame, attr))
                    frame.colorspace = tag
                    out.mux(out_v.encode(frame))
            if out_v is not None:
                out.mux(out_v.encode(None))
        except _Stop:
            pass
        except BaseException as e:
            errors.append(e)
            stop.set()

    pending: list = []
    threads = [threading.Thread(target=decode_worker, daemon=True, name="srgan-decode"),
               threading.Thread(target=encode_worker, daemon=True, name="srgan-encode")]  # fmt: skip
    bar = tqdm(total=total, desc=f"upscale {Path(inp.name).name}", unit="frame",
               disable=None if progress is None else not progress)  # fmt: skip
    try:
        for t in threads:
            t.start()
        while (item := _get(decoded, stop)) is not _DONE:
            kind, payload = item
            if kind == "frames":
                arrays = _upscale_frames(payload, job)
                state["frames"] += len(payload)
                bar.update(len(payload))
                item = (kind, (payload, arrays))
            _put(upscaled, item, stop)
        _put(upscaled, _DONE, stop)
        threads[1].join()
        if errors:
            raise errors[0]
    except _Stop:
        raise errors[0] from None
    finally:
        stop.set()
        for t in threads:
            t.join()
        bar.close()
        out.close()
    if errors:
        raise errors[0]
    if state["frames"] == 0:
        why = f": {state['truncated']}" if state["truncated"] else ""
        raise ValueError(f"the video has no frame that decodes (zero frames, corrupt or truncated{why})")
    if state["truncated"]:
        warn(f"decoding stopped after {state['frames']} frames ({state['truncated']}): truncated or damaged, "
             "those frames were written")  # fmt: skip
    elif total and state["frames"] < (total if in_v.frames else total - 1):  # from the duration: +-1 frame
        warn(f"only {state['frames']} of the {total} frames the file declares decoded (truncated?): those "
             "frames were written")  # fmt: skip


def _frames_from_duration(inp, in_v) -> int | None:
    """Frames the stream's (or else the file's) duration implies at its average rate, for a container that
    does not count them (matroska, webm)."""
    if not in_v.average_rate:
        return None
    tag = in_v.metadata.get("DURATION", "")  # matroska's per-track tag, HH:MM:SS.nnnnnnnnn
    if in_v.duration:
        seconds = float(in_v.duration * in_v.time_base)
    elif tag.count(":") == 2 and tag.replace(":", "").replace(".", "").isdigit():
        hours, minutes, secs = tag.split(":")
        seconds = int(hours) * 3600 + int(minutes) * 60 + float(secs)
    elif inp.duration:  # the longest stream's
        seconds = inp.duration / 1e6  # microseconds (AV_TIME_BASE)
    else:
        return None
    return round(seconds * in_v.average_rate)


def _mux_copy(out, packet, mapping) -> None:
    stream = mapping.get(packet.stream.index)
    if stream is None:
        return
    packet.stream = stream
    out.mux(packet)


def _upscale_frames(frames, job) -> list[np.ndarray]:
    """Decoded frames -> upscaled uint8 RGB (H, W, 3) arrays, through the model as one batch. Read with the
    matrix and range the encoder writes back (`colour_matrix`)."""
    rgb = np.stack([f.reformat(format="rgb24", src_colorspace=colour_matrix(f.colorspace, f.height)[0],
                               src_color_range=f.color_range).to_ndarray() for f in frames])  # fmt: skip
    model = job["model"]
    sr_img = upscale(model, frames_to_tensor(rgb), **{k: v for k, v in job.items() if k != "model"})
    return list(tensor_to_frames(sr_img))  # (B, sH, sW, 3) uint8


# --- animations (PIL) -------------------------------------------------------------------------------------


def upscale_animation(
    model: SRModel,
    src: str | Path,
    dst: str | Path,
    *,
    force: bool = False,
    max_pixels: int | None = None,
    progress: bool | None = None,
    **options,
) -> Path:
    """Upscale every frame of an animated GIF, WebP or APNG into `dst` (the same format), keeping each frame's
    duration and the loop count; `options` as for `srgan.upscale`. Frames are upscaled one at a time (alpha
    kept, as for still images); the encoders need every frame before they write, so memory grows with the
    frame count: an animation whose upscaled frames cannot fit in free memory is refused (MemoryError) before
    the first frame. max_pixels: refuse a frame size over this many input pixels. A GIF without a loop count
    (played once) stays without one. Written atomically."""
    src, dst = Path(src), Path(dst)
    if dst.exists() and not force:
        raise FileExistsError(f"output exists, left untouched: {dst} (--force to overwrite)")
    with Image.open(src) as img:
        fmt = img.format
        if fmt not in ANIMATION_FORMATS:
            raise ValueError(f"not an animation PIL writes back (GIF, WebP, APNG): {fmt}")
        w, h = img.size
        if max_pixels is not None and w * h > max_pixels:
            raise ValueError(f"{w}x{h} frames are over the limit of {max_pixels / 1e6:g} megapixels")
        loop = img.info.get("loop")  # None: a GIF played once
        n = getattr(img, "n_frames", 1)
        s = model.scale
        need = n * w * h * s * s * ANIMATION_BYTES_PER_PIXEL
        free = available_memory(torch.device("cpu"))
        if need > free:
            raise MemoryError(
                f"{n} frames of {w * s}x{h * s} need about {need / 2**30:.1f} GiB held together (the "
                f"{fmt} encoder takes every frame at once), but only {free / 2**30:.1f} GiB is free"
            )
        frames, durations = [], []
        for frame in tqdm(ImageSequence.Iterator(img), total=n, desc=f"upscale {src.name}", unit="frame",
                          disable=None if progress is None else not progress):  # fmt: skip
            frame.load()  # WebP sets a frame's duration when it is decoded
            durations.append(frame.info.get("duration", 100))
            frame = frame.convert("RGBA" if _has_alpha(frame) else "RGB")
            frames.append(upscale(model, frame, **options))
    save = dict(save_all=True, append_images=frames[1:], duration=durations)
    if loop is not None:
        save["loop"] = loop
    if fmt == "GIF":
        save["disposal"] = 2
    elif fmt == "WEBP":
        save["lossless"] = True
    atomic_write(dst, lambda tmp: frames[0].save(tmp, format=fmt, **save))
    return dst


def _has_alpha(frame: Image.Image) -> bool:
    return "A" in frame.getbands() or (frame.mode == "P" and "transparency" in frame.info)
