"""Issue 22, first measurements: can int8 make CPU upscaling faster than bf16 at the same quality?

    python bench/int8_probe.py [--model srresnet] [--calib 16] [--sets Set5 Set14] [--threads 2]

The first probe of PyTorch's eager quantization stack (x86 engine) on the BN-folded FastGenerator, kept for
the figures of docs/speed.md; the feature itself is `srgan.int8` (`--precision int8`), which differs in its
calibration crops (LR crops made like training's), the uint8 shuffle and the banded 2x stage.
Weights int8 per output channel (symmetric), activations uint8 per tensor from a HistogramObserver over
--calib 96x96 training photos (every 50th file of $SRGAN_DATA/train, resized, never a benchmark image).
The LR trunk (head, 16 blocks, long skip) and the sub-pixel convs are quantized, with the residual adds as
quantized adds. Found on the way:
  - torch.ops.quantized.prelu gives wrong values here (max error ~3 on a unit-variance input, for slopes of
    either sign), so the single-slope PReLUs run as quantized leaky_relu (exact to one quantization step);
  - the first sub-pixel shuffle runs on float (dequantize, ShuffleX2 order, leaky_relu_, quantize again);
  - the 5x5 tail conv before the last shuffle is quantized too; pixel_shuffle and tanh in float.
Prints the Y PSNR (paper protocol: 4-px border, MATLAB Y) against HR for fp32 and int8 of the same model on
each set, and the speed at 480x320 and 960x540 LR input against srgan.upscale in bf16 (the default here),
one process, fastest of --reps.
"""

from __future__ import annotations

import argparse
import copy
import os
import time
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.ao.nn.quantized as nnq
import torch.ao.quantization as tq
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

from srgan.fast import FastGenerator, ShuffleX2
from srgan.io import read_image, signed_to_unit
from srgan.metrics import psnr, quantize_uint8
from srgan.upscale import upscale_tensor
from srgan.zoo import load_model

DATA = Path(os.environ.get("SRGAN_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


class QBlock(nn.Module):
    def __init__(self, block: nn.Module):
        super().__init__()
        conv1, _, prelu, conv2, _ = block.body
        self.body = nn.Sequential(conv1, nn.LeakyReLU(float(prelu.weight.detach())), conv2)
        self.add = nnq.FloatFunctional()

    def forward(self, x):
        return self.add.add(x, self.body(x))


class Int8Generator(nn.Module):
    def __init__(self, fast: FastGenerator, float_tail: bool = False):
        super().__init__()
        fast = copy.deepcopy(fast).float()
        self.float_tail = float_tail
        self.q_in, self.q_mid = tq.QuantStub(), tq.QuantStub()
        self.dq_mid, self.dq_out = tq.DeQuantStub(), tq.DeQuantStub()
        self.head = nn.Sequential(fast.head[0], nn.LeakyReLU(float(fast.head[1].weight.detach())))
        self.blocks = nn.Sequential(*[QBlock(b) for b in fast.blocks])
        self.body_tail, self.add = fast.body_tail[0], nnq.FloatFunctional()
        (up,) = fast.upsample
        self.up_conv, self.shuffle, self.up_slope = up[0], ShuffleX2(), up[2].slope
        self.last_conv, self.last_act = fast.last_conv, nn.LeakyReLU(fast.last_act.slope)
        self.tail = fast.tail

    def forward(self, lr_img):
        x = self.head(self.q_in(lr_img))
        x = self.add.add(x, self.body_tail(self.blocks(x)))
        x = F.leaky_relu_(self.shuffle(self.dq_mid(self.up_conv(x))), self.up_slope)
        x = self.last_act(self.last_conv(self.q_mid(x.contiguous(memory_format=torch.channels_last))))
        x = self.tail(self.dq_out(x)) if self.float_tail else self.dq_out(self.tail(x))
        return torch.tanh(F.pixel_shuffle(x, 2))


def calibration_crops(count: int) -> list[torch.Tensor]:
    files = sorted(p for p in (DATA / "train").rglob("*") if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
    if not files:
        raise SystemExit(f"no training photos under {DATA / 'train'} (set SRGAN_DATA)")
    crops = []
    for f in files[::50][:count]:
        a = np.asarray(Image.open(f).convert("RGB").resize((96, 96), Image.BICUBIC), dtype=np.float32) / 255
        crops.append(torch.from_numpy(a).permute(2, 0, 1)[None].contiguous(memory_format=torch.channels_last))
    return crops


def quantize(fast: FastGenerator, crops: list[torch.Tensor], float_tail: bool = False) -> Int8Generator:
    torch.backends.quantized.engine = "x86"
    q = Int8Generator(fast, float_tail).eval()
    q.qconfig = tq.QConfig(
        activation=tq.HistogramObserver.with_args(dtype=torch.quint8, reduce_range=False),
        weight=tq.PerChannelMinMaxObserver.with_args(dtype=torch.qint8, qscheme=torch.per_channel_symmetric),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization's deprecation notices
        if float_tail:
            q.tail.qconfig = None
        tq.prepare(q, inplace=True)
        with torch.no_grad():
            for x in crops:
                q(x)
        tq.convert(q, inplace=True)
    return q


def best_time(fn, reps: int) -> float:
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="srresnet")
    ap.add_argument("--calib", type=int, default=16)
    ap.add_argument("--sets", nargs="*", default=["Set5", "Set14"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--float-tail", action="store_true", help="keep the 5x5 tail conv in fp32")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    fast = load_model(args.model, fast=True).float().eval()
    t = time.perf_counter()
    q = quantize(fast, calibration_crops(args.calib), args.float_tail)
    print(f"calibration on {args.calib} crops: {time.perf_counter() - t:.1f} s")
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in args.sets:
            folder = DATA / "bench" / name
            rows = []
            for lr_path in sorted((folder / "LR_x4").iterdir()):
                lr = read_image(lr_path)[None].contiguous(memory_format=torch.channels_last)
                hr = read_image(folder / "HR" / lr_path.name)[None]
                hr = hr[..., : 4 * lr.shape[-2], : 4 * lr.shape[-1]]  # HR cropped to a multiple of 4
                fp, i8 = (quantize_uint8(signed_to_unit(m(lr)).clamp(0, 1)) for m in (fast, q))
                rows.append([float(psnr(a, b)) for a, b in ((fp, hr), (i8, hr), (i8, fp))])
            fp, i8, vs = np.mean(rows, axis=0)
            print(f"{name}: Y PSNR fp32 {fp:.3f} dB, int8 {i8:.3f} dB ({i8 - fp:+.3f}); to fp32 {vs:.1f} dB")
        for w, h in [(480, 320), (960, 540)]:
            x = torch.rand(1, 3, h, w).contiguous(memory_format=torch.channels_last)
            q(x[..., :32, :32])
            upscale_tensor(fast, x[..., :32, :32], precision="bf16")
            t_q = best_time(lambda x=x: q(x), args.reps)
            t_b = best_time(lambda x=x: upscale_tensor(fast, x, precision="bf16", tile="auto"), args.reps)
            mp = 16 * w * h / 1e6
            print(f"{w}x{h}: int8 {t_q:.2f} s ({mp / t_q:.2f} MP/s), bf16 {t_b:.2f} s ({mp / t_b:.2f} MP/s): "
                  f"{t_b / t_q:.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
