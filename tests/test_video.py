"""Video and animation upscaling (srgan.video) on small clips made here with PyAV: 64x48, 24 frames, a sine
audio track; variable frame rate; rotated; animated GIF / WebP / APNG."""

from __future__ import annotations

import hashlib
import sys
from fractions import Fraction

import numpy as np
import pytest
import torch
from PIL import Image

import srgan
from srgan import video
from srgan.checkpoint import save_generator
from srgan.cli import main
from srgan.models import Generator

av = pytest.importorskip("av")


def make_clip(path, frames=24, size=(64, 48), rate=24, audio=True, vfr=False, rotation=0, hflip=False,
              codec="libx264", colorspace=None, color_range=None):
    """A clip of `frames` frames (a moving noise block on a changing grey), with an 8 kHz mono sine in AAC;
    colorspace / color_range: tags (AVColorSpace / AVColorRange numbers), the pixels converted to match."""
    w, h = size
    with av.open(str(path), "w") as c:
        v = c.add_stream(codec, rate=rate)
        v.width, v.height, v.pix_fmt = w, h, "yuv420p"
        tb = Fraction(1, 1000) if vfr else Fraction(1, rate)
        v.codec_context.time_base = tb
        if rotation or hflip:
            v.set_display_rotation(rotation, hflip=hflip)
        tags = {k: x for k, x in (("colorspace", colorspace), ("color_range", color_range)) if x is not None}
        for k, x in tags.items():
            setattr(v.codec_context, k, x)
        a = c.add_stream("aac", rate=8000, layout="mono") if audio else None
        rng = np.random.default_rng(0)
        t = 0
        for i in range(frames):
            arr = np.empty((h, w, 3), np.uint8)
            arr[:] = ((i * 10) % 256, 180, 40)  # a saturated colour: a wrong YUV matrix shifts it
            arr[: h // 2, : w // 2] = rng.integers(0, 256, (h // 2, w // 2, 3))
            frame = av.VideoFrame.from_ndarray(arr, format="rgb24")
            if tags:
                frame = frame.reformat(format="yuv420p", dst_colorspace=colorspace,
                                       dst_color_range=color_range)  # fmt: skip
                for k, x in tags.items():
                    setattr(frame, k, x)
            frame.pts, frame.time_base = t, tb
            t += (30 if i % 2 else 50) if vfr else 1  # vfr: 50 ms and 30 ms frames in turn
            c.mux(v.encode(frame))
        c.mux(v.encode(None))
        if a is not None:
            n = int(8000 * frames / rate)
            sine = (0.3 * np.sin(2 * np.pi * 440 * np.arange(n) / 8000)).astype(np.float32)[None]
            for i in range(0, n, 1024):
                af = av.AudioFrame.from_ndarray(sine[:, i : i + 1024].copy(), format="fltp", layout="mono")
                af.sample_rate, af.pts, af.time_base = 8000, i, Fraction(1, 8000)
                c.mux(a.encode(af))
            c.mux(a.encode(None))
    return path


def frames_of(path):
    with av.open(str(path)) as c:
        return list(c.decode(video=0))


def audio_packets(path):
    with av.open(str(path)) as c:
        return [bytes(p) for p in c.demux(audio=0) if p.size]


def seconds(frames):
    return [float(f.pts * f.time_base) for f in frames]


def duration(path):
    with av.open(str(path)) as c:
        return c.duration / 1e6


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)  # module fixtures are made before the per-test seed: fix the weights here
    return Generator(num_blocks=1, channels=8).eval()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    save_generator(path, Generator(num_blocks=1, channels=8).eval())
    return path


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_clip(tmp_path_factory.mktemp("clips") / "clip.mp4")


def check_same_timing(src, dst, scale=4, shifted=False):
    """shifted: the container moved every stream by the same offset (matroska stores no negative times, and
    the AAC track starts at -1024 samples)."""
    fi, fo = frames_of(src), frames_of(dst)
    assert (fo[0].width, fo[0].height) == (fi[0].width * scale, fi[0].height * scale)
    assert len(fo) == len(fi)
    offset = seconds(fo)[0] - seconds(fi)[0] if shifted else 0
    tick = float(fo[0].time_base)  # matroska counts milliseconds
    assert [t - offset for t in seconds(fo)] == pytest.approx(seconds(fi), abs=tick / 2 + 1e-9)
    one_frame = max(b - a for a, b in zip(seconds(fi), seconds(fi)[1:], strict=False))
    assert abs(duration(dst) - offset - duration(src)) <= one_frame + 1e-6
    return fi, fo


def test_cli_upscales_a_clip_with_its_sound(tmp_path, clip, tiny, capsys):
    before = digest(clip)
    assert main(["upscale", str(clip), "-o", str(tmp_path / "out"), "--model", str(tiny)]) == 0
    out = tmp_path / "out" / "clip.mp4"
    check_same_timing(clip, out)
    assert audio_packets(out) == audio_packets(clip) and len(audio_packets(clip)) > 3
    with av.open(str(out)) as c, av.open(str(clip)) as i:
        v = c.streams.video[0]
        assert v.codec_context.name == "h264" and v.average_rate == 24
        assert v.time_base == i.streams.video[0].time_base
    assert digest(clip) == before
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["clip.mp4"]  # no temporary file left


def test_a_folder_mixes_images_videos_and_animations_and_suffix_applies(tmp_path, clip, tiny):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "clip.mov").write_bytes(clip.read_bytes())
    Image.new("RGB", (8, 6), "red").save(folder / "still.png")
    frames = [Image.new("RGB", (8, 6), c) for c in ("red", "blue")]
    frames[0].save(folder / "anim.gif", save_all=True, append_images=frames[1:], duration=50, loop=0)
    out = tmp_path / "out"
    assert main(["upscale", str(folder), "-o", str(out), "--model", str(tiny), "--suffix", "_x4"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["anim_x4.gif", "clip_x4.mov", "still_x4.png"]
    assert len(frames_of(tmp_path / "out" / "clip_x4.mov")) == 24


def test_variable_frame_rate_keeps_every_timestamp(tmp_path, model):
    src = make_clip(tmp_path / "vfr.mp4", vfr=True)
    fi, _ = check_same_timing(src, srgan.upscale_video(model, src, tmp_path / "vfr_x4.mp4", progress=False))
    steps = {round(b - a, 3) for a, b in zip(seconds(fi), seconds(fi)[1:], strict=False)}
    assert steps == {0.05, 0.03}  # really variable


def display_matrix(frame):
    return [bytes(sd) for sd in frame.side_data if sd.type.name == "DISPLAYMATRIX"]


def mean_rgb(frame):
    return frame.to_ndarray(format="rgb24").reshape(-1, 3).mean(0)  # read with the frame's own tags


@pytest.mark.parametrize("colorspace,color_range", [(1, 2), (5, 1)])  # bt709 full range; bt470bg limited
def test_rotation_flip_and_colour_tags_are_kept(tmp_path, model, colorspace, color_range):
    src = make_clip(tmp_path / "rot.mov", rotation=90, hflip=True, audio=False, colorspace=colorspace,
                    color_range=color_range)  # fmt: skip
    dst = srgan.upscale_video(model, src, tmp_path / "rot_x4.mov", progress=False)
    fi, fo = check_same_timing(src, dst)
    assert fi[0].rotation == fo[0].rotation == 90 and display_matrix(fo[0]) == display_matrix(fi[0]) != []
    assert (fo[0].color_range, fo[0].colorspace) == (fi[0].color_range, fi[0].colorspace) == (
        color_range, colorspace)  # fmt: skip
    # the colour fix gives the output the input's low frequencies: read through the tags, the means agree
    assert np.abs(mean_rgb(fo[5]) - mean_rgb(fi[5])).max() < 3


def test_an_untagged_clip_is_tagged_with_the_matrix_it_was_read_with(tmp_path, model, clip):
    assert frames_of(clip)[0].colorspace == 2  # unspecified: players take a 48-line clip for BT.601
    assert video.colour_matrix(2, 48) == (5, video.SMPTE170M)
    assert video.colour_matrix(2, 720)[1] == video.BT709
    fi, fo = check_same_timing(clip, srgan.upscale_video(model, clip, tmp_path / "o.mp4", progress=False))
    assert fo[0].colorspace == video.SMPTE170M  # not left for a player to guess BT.709 from 256x192
    assert np.abs(mean_rgb(fo[5]) - mean_rgb(fi[5])).max() < 3


def test_lossless_ffv1_in_matroska_and_the_frames_are_the_model_output(tmp_path, model, clip):
    dst = srgan.upscale_video(model, clip, tmp_path / "clip.mkv", codec="ffv1", colour="none", progress=False)
    fi, fo = check_same_timing(clip, dst, shifted=True)
    assert audio_packets(dst) == audio_packets(clip)
    lr_img = torch.from_numpy(fi[3].to_ndarray(format="rgb24")).permute(2, 0, 1).float() / 255
    expect = srgan.io.to_uint8(srgan.upscale(model, lr_img, colour="none")).permute(1, 2, 0).numpy()
    # ffv1 stores the yuv420p frame exactly: the output is the model's frame after one yuv420p round trip
    expect = av.VideoFrame.from_ndarray(np.ascontiguousarray(expect), format="rgb24").reformat(
        format="yuv420p").to_ndarray(format="rgb24")  # fmt: skip
    got = fo[3].to_ndarray(format="rgb24")
    assert np.abs(got.astype(int) - expect.astype(int)).mean() < 1


def test_subtitles_are_copied_packet_for_packet(tmp_path, model, capsys):
    video_only = make_clip(tmp_path / "v.mkv")
    srt = tmp_path / "s.srt"
    srt.write_text("1\n00:00:00,100 --> 00:00:00,600\nhello\n\n2\n00:00:00,700 --> 00:00:00,900\nworld\n")
    src = tmp_path / "subs.mkv"
    with av.open(str(video_only)) as iv, av.open(str(srt)) as isub, av.open(str(src), "w") as out:
        streams = {st: out.add_stream_from_template(st) for st in (*iv.streams, *isub.streams)}
        for container in (iv, isub):
            for packet in container.demux():
                if packet.size:
                    packet.stream = streams[packet.stream]
                    out.mux(packet)
    dst = srgan.upscale_video(model, src, tmp_path / "out.mkv", progress=False)
    with av.open(str(src)) as a, av.open(str(dst)) as b:
        assert [st.type for st in b.streams] == ["video", "audio", "subtitle"]
        subs = [(bytes(p), p.pts) for p in a.demux(subtitles=0) if p.size]
        assert [(bytes(p), p.pts) for p in b.demux(subtitles=0) if p.size] == subs
    assert subs[0][0] == b"hello" and "warning" not in capsys.readouterr().err


def test_frames_go_through_the_model_in_batches(tmp_path, clip):
    g = Generator(num_blocks=1, channels=8).eval()
    sizes = []
    g.register_forward_hook(lambda m, args, out: sizes.append(args[0].shape[0]))
    assert video.frame_batch(g, (48, 64), "fp32", torch.device("cpu")) == video.MAX_BATCH
    srgan.upscale_video(g, clip, tmp_path / "o.mp4", progress=False)
    assert sum(sizes) == 24 and max(sizes) == video.MAX_BATCH


def test_frame_batch_follows_free_memory(monkeypatch, model):
    monkeypatch.setattr(video, "available_memory", lambda device: 2**20)
    assert video.frame_batch(model, (480, 640), "fp32", torch.device("cpu")) == 1


@pytest.mark.parametrize("name,fmt", [("anim.gif", "GIF"), ("anim.webp", "WEBP"), ("anim.png", "PNG")])
def test_animations_keep_every_frame_duration_and_loop(tmp_path, tiny, name, fmt):
    frames = [Image.new("RGB", (8, 6), c) for c in ("red", "green", "blue")]
    src = tmp_path / name
    frames[0].save(src, format=fmt, save_all=True, append_images=frames[1:], duration=[100, 200, 300], loop=2)
    assert main(["upscale", str(src), "-o", str(tmp_path / "up"), "--model", str(tiny)]) == 0
    with Image.open(tmp_path / "up" / name) as out:
        assert out.format == fmt and out.size == (32, 24) and out.n_frames == 3
        durations = []
        for i in range(out.n_frames):
            out.seek(i)
            out.load()
            durations.append(out.info["duration"])
        assert durations == [100, 200, 300] and out.info["loop"] == 2


def test_a_gif_played_once_stays_played_once(tmp_path, model):
    frames = [Image.new("RGB", (8, 6), c) for c in ("red", "blue")]
    frames[0].save(tmp_path / "once.gif", save_all=True, append_images=frames[1:], duration=80)
    dst = video.upscale_animation(model, tmp_path / "once.gif", tmp_path / "out.gif", progress=False)
    with Image.open(dst) as out:
        assert out.n_frames == 2 and "loop" not in out.info


def test_an_animation_that_cannot_fit_in_memory_is_refused_first(tmp_path, model, monkeypatch):
    frames = [Image.new("RGB", (80, 60), c) for c in ("red", "blue")]
    frames[0].save(tmp_path / "a.webp", save_all=True, append_images=frames[1:], duration=80)
    monkeypatch.setattr(video, "available_memory", lambda device: 2**20)
    monkeypatch.setattr(video, "upscale", lambda *a, **k: pytest.fail("upscaled a frame"))
    with pytest.raises(MemoryError, match=r"2 frames of 320x240 need about 0\.0 GiB"):
        video.upscale_animation(model, tmp_path / "a.webp", tmp_path / "out.webp", progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.webp"]


def test_existing_output_is_refused_without_force(tmp_path, clip, tiny, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "clip.mp4").write_bytes(b"keep")
    assert main(["upscale", str(clip), "-o", str(out), "--model", str(tiny)]) == 1
    assert "--force" in capsys.readouterr().err and (out / "clip.mp4").read_bytes() == b"keep"
    assert main(["upscale", str(clip), "-o", str(out), "--model", str(tiny), "--force"]) == 0
    assert len(frames_of(out / "clip.mp4")) == 24


def one_error(capsys, *words):
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(err) == 1, err
    for word in words:
        assert word in err[0]


def test_bad_inputs_give_one_error_line_each(tmp_path, tiny, capsys):
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    sound = tmp_path / "sound.mka"
    with av.open(str(sound), "w", format="matroska") as c:
        a = c.add_stream("aac", rate=8000, layout="mono")
        af = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
        af.sample_rate, af.pts = 8000, 0
        c.mux(a.encode(af))
        c.mux(a.encode(None))
    sound_mp4 = sound.rename(tmp_path / "sound.mp4")
    empty = tmp_path / "empty.mkv"  # a video track without a frame (and one audio frame)
    with av.open(str(empty), "w") as c:
        v = c.add_stream("libx264", rate=24)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        a = c.add_stream("aac", rate=8000, layout="mono")
        c.mux(a.encode(af))
        c.mux(a.encode(None))
    unknown = make_clip(tmp_path / "unknown.mkv", frames=4)  # codec ID renamed to one FFmpeg lacks
    unknown.write_bytes(unknown.read_bytes().replace(b"V_MPEG4/ISO/AVC", b"V_MPEG4/ISO/XYZ"))
    cases = [(junk, ["junk.mp4", "cannot read the video"]), (sound_mp4, ["no video stream", "audio"]),
             (empty, ["no frame"]), (unknown, ["unknown video codec"])]  # fmt: skip
    for path, words in cases:
        assert main(["upscale", str(path), "-o", str(tmp_path / "out"), "--model", str(tiny)]) == 1
        one_error(capsys, *words)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_truncated_video_writes_what_decodes_with_a_warning(tmp_path, tiny, capsys):
    src = make_clip(tmp_path / "cut.mkv", audio=False)  # matroska: frames stored in order, index not needed
    data = src.read_bytes()
    src.write_bytes(data[: len(data) * 6 // 10])
    assert main(["upscale", str(src), "-o", str(tmp_path / "out"), "--model", str(tiny)]) == 0
    assert "warning:" in capsys.readouterr().err
    assert 0 < len(frames_of(tmp_path / "out" / "cut.mkv")) < 24


def test_frame_pixel_limit_and_codec_checks(tmp_path, clip, model):
    with pytest.raises(ValueError, match="max-frame-pixels"):
        srgan.upscale_video(model, clip, tmp_path / "o.mp4", max_frame_pixels=64 * 48 * 16 - 1)
    with pytest.raises(ValueError, match="webm"):
        srgan.upscale_video(model, clip, tmp_path / "o.webm", codec="h264")
    with pytest.raises(ValueError, match="crf"):
        srgan.upscale_video(model, clip, tmp_path / "o.mp4", crf=99)
    assert list(tmp_path.iterdir()) == []


def test_ctrl_c_leaves_no_output_and_the_input_untouched(tmp_path, clip, model, tiny, monkeypatch, capsys):
    before = digest(clip)
    calls = []
    real = video._upscale_frames

    def interrupt(frames, job):  # Ctrl-C arrives in the main thread, between model calls
        calls.append(1)
        if len(calls) % 2 == 0:
            raise KeyboardInterrupt
        return real(frames, job)

    monkeypatch.setattr(video, "_upscale_frames", interrupt)
    with pytest.raises(KeyboardInterrupt):
        srgan.upscale_video(model, clip, tmp_path / "o.mp4", batch=4, progress=False)
    assert list(tmp_path.iterdir()) == [] and digest(clip) == before
    out = tmp_path / "out"
    assert main(["upscale", str(clip), "-o", str(out), "--model", str(tiny)]) == 130
    assert capsys.readouterr().err.strip().splitlines()[-1] == f"interrupted: 0 of 1 written to {out}"
    assert list(out.iterdir()) == [] and digest(clip) == before  # no temporary file either


def test_without_pyav_the_error_names_the_extra(tmp_path, clip, model, monkeypatch):
    monkeypatch.setitem(sys.modules, "av", None)
    with pytest.raises(ImportError, match=r"srgan\[video\]"):
        srgan.upscale_video(model, clip, tmp_path / "o.mp4")


def test_a_stream_the_container_cannot_hold_is_left_out_with_a_warning(tmp_path, model):
    src = make_clip(tmp_path / "a.mkv", frames=6).rename(tmp_path / "a.webm")  # AAC in a file named .webm
    warnings = []
    dst = srgan.upscale_video(model, src, tmp_path / "out.webm", progress=False, on_warning=warnings.append)
    assert len(warnings) == 1 and "audio stream" in warnings[0] and "left out" in warnings[0]
    with av.open(str(dst)) as c:
        assert [(st.type, st.codec_context.name) for st in c.streams] == [("video", "vp9")]
    assert len(frames_of(dst)) == 6


def test_a_second_video_stream_is_left_out_with_a_warning(tmp_path, model):
    one = make_clip(tmp_path / "one.mkv", frames=4, audio=False)
    src = tmp_path / "two.mkv"
    with av.open(str(one)) as a, av.open(str(one)) as b, av.open(str(src), "w") as out:
        streams = {a: out.add_stream_from_template(a.streams.video[0]),
                   b: out.add_stream_from_template(b.streams.video[0])}  # fmt: skip
        for container, stream in streams.items():
            for packet in container.demux(video=0):
                if packet.size:
                    packet.stream = stream
                    out.mux(packet)
    warnings = []
    dst = srgan.upscale_video(model, src, tmp_path / "out.mkv", progress=False, on_warning=warnings.append)
    assert len(warnings) == 1 and warnings[0].startswith("video stream 1 is not copied")
    with av.open(str(dst)) as c:
        assert len(c.streams) == 1 and len(list(c.decode(video=0))) == 4
