"""Fast inference: batch-norm folding, a restructured generator, channels_last, tiles sized from free memory.

`fold_batchnorm(model)` returns a copy of an eval-mode Generator in which every BatchNorm2d that follows a
Conv2d is folded into it (w' = w g / sqrt(var + eps), b' = (b - mean) g / sqrt(var + eps) + beta) and
replaced by an Identity. `prepare_for_inference(model)` builds a `FastGenerator` from that: the same function
(outputs equal within 1e-5 in fp32, tested) with the sub-pixel shuffles made cheap on channels_last tensors
and the 9x9 tail conv moved in front of the last PixelShuffle (a 5x5 conv 256 -> 12 at half the output
resolution), so the 4H x 4W x 64 map is never made. Both return new modules; the caller's model is unchanged.

Memory model for tile sizing (`auto_tile`): one forward pass over an (N, 3, h, w) input, h and w including
the tile's context (`tile_pad` per side), needs about `bytes_per_pixel(model, precision) * N * h * w` bytes
beyond the model. The biggest maps are the last upsampling conv's output (4 C planes at (s/2)h x (s/2)w,
i.e. C s^2 values per LR pixel) and its input; so the peak is `PEAK_PLANES` x C s^2 values per LR pixel, times
4 bytes (fp32) or 2 (bf16 / fp16). The constants come from peak-RSS slopes measured on this machine and are
checked against peak RSS by `bench/upscale.py`. The budget is half of the available memory (CUDA: free device
memory; CPU: MemAvailable, or the cgroup limit), capped at DEFAULT_CPU_BUDGET on CPU.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.fusion import fuse_conv_bn_eval

from .hardware import available_memory
from .models import Generator

# Peak live activation volume in units of (channels * scale^2) values per LR pixel; see the module docstring.
# Measured peak-RSS slopes on this CPU (srresnet, 128..192 px inputs): FastGenerator 1.1 (fp32) and 1.3 (bf16)
# planes, the plain Generator 2.0-2.6; these constants leave a margin.
PEAK_PLANES = {"fast": 2.0, "plain": 3.5}
# CPU budget cap: bigger tiles than this buy little speed on a CPU and push peak RSS up.
DEFAULT_CPU_BUDGET = 768 * 2**20
MIN_TILE = 32


def fold_batchnorm(model: Generator) -> Generator:
    """A copy of `model` (eval mode) with each Conv2d -> BatchNorm2d pair folded into one Conv2d.

    Only for inference: the copy has no BatchNorm parameters, so its state_dict does not load into a plain
    Generator (release the original model, fold after loading). Raises if `model` is in training mode.
    """
    if model.training:
        raise ValueError("fold_batchnorm needs an eval-mode model (BN folding uses the running statistics)")
    folded = copy.deepcopy(model)
    for module in folded.modules():
        if not isinstance(module, nn.Sequential):
            continue
        children = list(module.named_children())
        for (_, conv), (bn_name, bn) in zip(children, children[1:], strict=False):
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                fused = fuse_conv_bn_eval(conv, bn)
                conv.weight, conv.bias = fused.weight, fused.bias
                setattr(module, bn_name, nn.Identity())
    if any(isinstance(m, nn.BatchNorm2d) for m in folded.modules()):
        raise ValueError("some BatchNorm2d layers do not follow a Conv2d in a Sequential: cannot fold them")
    folded.bn_folded = True
    return folded.eval()


def is_channels_last(model: nn.Module) -> bool:
    """True when the model's first 4-d weight is stored channels_last."""
    for p in model.parameters():
        if p.dim() == 4:
            return p.is_contiguous(memory_format=torch.channels_last) and not p.is_contiguous()
    return False


class InplacePReLU(nn.Module):
    """A single-parameter PReLU applied in place (leaky_relu_ with the learnt slope): one activation map
    less at the peak of the forward pass. Inference only (the input is overwritten)."""

    def __init__(self, prelu: nn.PReLU):
        super().__init__()
        if not isinstance(prelu, nn.PReLU) or prelu.weight.numel() != 1:
            raise ValueError(
                "the fast generator needs single-parameter PReLUs after the sub-pixel convolutions"
            )
        self.slope = float(prelu.weight.detach())  # a constant: no device sync per call, exports as LeakyRelu

    def extra_repr(self) -> str:
        return f"slope={self.slope:.6g}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu_(x, self.slope)


class ShuffleX2(nn.Module):
    """PixelShuffle(2) for inputs whose channels are ordered (i, j, c) instead of PyTorch's (c, i, j).

    With channels_last tensors this is one copy of contiguous runs of C values (PyTorch's pixel_shuffle on
    channels_last gathers single elements and was 10-15% of a CPU forward pass).
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c4, h, w = x.shape
        c = c4 // 4
        x = x.permute(0, 2, 3, 1).reshape(n, h, w, 2, 2, c)  # (N, 4C, H, W) -> (N, H, W, i, j, C)
        x = x.permute(0, 1, 3, 2, 4, 5).reshape(n, 2 * h, 2 * w, c)  # -> (N, 2H, 2W, C), channels last
        return x.permute(0, 3, 1, 2)  # (N, C, 2H, 2W) in channels_last memory


def _shuffle_order_conv(conv: nn.Conv2d) -> nn.Conv2d:
    """A copy of `conv` (4C outputs, PyTorch order c*4 + i*2 + j) with outputs in order (i*2 + j)*C + c."""
    out = copy.deepcopy(conv)
    c = conv.out_channels // 4
    new = torch.arange(4 * c)
    old = (new % c) * 4 + new // c  # new index (ij)*C + c  <-  old index c*4 + ij
    with torch.no_grad():
        out.weight.copy_(conv.weight[old])
        out.bias.copy_(conv.bias[old])
    return out


def _tail_before_shuffle(tail: nn.Conv2d) -> nn.Conv2d:
    """The k x k conv at 2x resolution, rewritten to act on the (4C)-channel map *before* PixelShuffle(2).

    out[o, 2p + r, 2q + s] = sum_{c, dy, dx} W[o, c, dy, dx] y[c, 2p + r + dy - pad, 2q + s + dx - pad], and
    y[c, 2u + i, 2v + j] = z[c*4 + i*2 + j, u, v] (z: the map before the shuffle). With r + dy - pad = 2m + i
    this is a conv over z with kernel K[o*4 + r*2 + s, c*4 + i*2 + j, m - m0, n - m0] = W[o, c, dy, dx],
    followed by PixelShuffle(2) of its 4 * out_channels outputs. For the paper's 9x9 tail it is a 5x5 conv
    256 -> 12 at 2H x 2W instead of 9x9 64 -> 3 at 4H x 4W: 3x faster on oneDNN (3 output channels vectorise
    badly), and the 4H x 4W x 64 map is never made. Zero padding matches: z outside its frame is y outside.
    """
    k, pad = tail.kernel_size[0], tail.padding[0]
    if (
        tail.kernel_size != (k, k)
        or tail.padding != (pad, pad)
        or tail.stride != (1, 1)
        or tail.dilation != (1, 1)
    ):
        raise ValueError("the tail must be a square, stride-1 convolution with symmetric padding")
    m0, m1 = (-pad) // 2, (1 + k - 1 - pad) // 2
    size = m1 - m0 + 1
    w = tail.weight.detach()
    o_ch, c_ch = w.shape[:2]
    kernel = torch.zeros(o_ch * 4, c_ch * 4, size, size, dtype=w.dtype, device=w.device)
    outs, ins = torch.arange(o_ch) * 4, torch.arange(c_ch) * 4
    for r in range(2):
        for s in range(2):
            for dy in range(k):
                m, i = divmod(r + dy - pad, 2)
                for dx in range(k):
                    n, j = divmod(s + dx - pad, 2)
                    kernel[(outs + r * 2 + s)[:, None], (ins + i * 2 + j)[None, :], m - m0, n - m0] = w[
                        :, :, dy, dx
                    ]
    conv = nn.Conv2d(c_ch * 4, o_ch * 4, size, padding=-m0, device=w.device, dtype=w.dtype)
    if -m0 != m1:
        raise ValueError(
            f"tail kernel {k} with padding {pad} does not give a centred kernel before the shuffle"
        )
    with torch.no_grad():
        conv.weight.copy_(kernel)
        conv.bias.copy_(tail.bias.detach().repeat_interleave(4))
    return conv


class FastGenerator(nn.Module):
    """The inference form of a Generator: the same function, computed faster (see `prepare_for_inference`).

    BN folded into the convolutions; sub-pixel convolutions' outputs reordered for `ShuffleX2`; the last
    upsampling stage's shuffle moved behind the tail conv (`_tail_before_shuffle`). Has `scale`, `kwargs`
    and `receptive_radius()` like the Generator it came from, so `srgan.upscale` takes it as it is.
    """

    def __init__(self, generator: Generator):
        super().__init__()
        folded = fold_batchnorm(generator)
        self.kwargs = dict(folded.kwargs)
        self.scale = folded.scale
        self._radius = folded.receptive_radius()
        self.head, self.blocks, self.body_tail = folded.head, folded.blocks, folded.body_tail
        *first, last = folded.upsample
        self.upsample = nn.Sequential(
            *[nn.Sequential(_shuffle_order_conv(b.conv), ShuffleX2(), InplacePReLU(b.act)) for b in first]
        )
        self.last_conv, self.last_act = last.conv, InplacePReLU(last.act)
        self.tail = _tail_before_shuffle(folded.tail)
        self.eval()

    def receptive_radius(self) -> int:
        return self._radius

    def forward(self, lr_img: torch.Tensor) -> torch.Tensor:
        x = self.head(lr_img)  # (B, 3, H, W) -> (B, 64, H, W)
        x = x + self.body_tail(self.blocks(x))
        x = self.upsample(x)  # (B, 64, H, W) -> (B, 64, s/2 H, s/2 W)
        x = self.last_act(self.last_conv(x))  # -> (B, 256, s/2 H, s/2 W), PixelShuffle(2) still pending
        x = F.pixel_shuffle(self.tail(x), 2)  # (B, 12, s/2 H, s/2 W) -> (B, 3, sH, sW)
        return torch.tanh(x)


def prepare_for_inference(
    model: Generator, *, device: str | torch.device | None = None, channels_last: bool = True
) -> FastGenerator:
    """The fast inference copy of an eval-mode Generator: a `FastGenerator`, on `device`, channels_last.

    Same outputs as `model` up to float rounding (tested within 1e-5 in fp32). The caller's model is left
    untouched; `srgan.upscale` converts its tiles to channels_last when the model is.
    """
    if not isinstance(model, Generator):  # a Table 2 baseline (srgan.models.LumaSR): nothing to fold
        fast = copy.deepcopy(model).eval()
    else:
        fast = FastGenerator(model)
    if device is not None:
        fast = fast.to(device)
    if channels_last:
        fast = fast.to(memory_format=torch.channels_last)
    return fast


def bytes_per_pixel(model: Generator, precision: str = "fp32") -> float:
    """Peak extra bytes of one forward pass per LR input pixel (the memory model of the module docstring)."""
    kwargs = getattr(model, "kwargs", None) or {"channels": 64, "scale": model.scale}
    from .int8 import Int8Generator

    # bytes per value: fp32 4, bf16 / fp16 2; int8 (uint8 maps, its 2x stage in bands) 0.5: measured 0.72 KiB
    # of forward pass per LR pixel (srresnet, 960x540 whole image), under the 1 KiB this gives
    elem = {"fp32": 4, "int8": 0.5}.get(precision, 2)
    if "channels" not in kwargs:  # SRCNN: 64 channels at HR size, the same s^2 C values per LR pixel
        kwargs = {**kwargs, "channels": 64}
    planes = PEAK_PLANES["fast" if isinstance(model, (FastGenerator, Int8Generator)) else "plain"]
    return planes * kwargs["channels"] * model.scale**2 * elem


def auto_tile(
    model: Generator,
    image_hw: tuple[int, int],
    *,
    batch: int = 1,
    precision: str = "fp32",
    device: str | torch.device = "cpu",
    budget: int | None = None,
    tile_pad: int | None = None,
) -> int | None:
    """The largest square tile (LR pixels) whose padded forward fits in `budget` bytes; None if the whole
    image fits (no tiling needed).

    budget: bytes for activations; default half of the device's available memory (`available_memory`),
        capped at DEFAULT_CPU_BUDGET on CPU. Raises when even a MIN_TILE tile does not fit.
    """
    device = torch.device(device)
    if tile_pad is None:
        tile_pad = model.receptive_radius()
    if budget is None:
        budget = available_memory(device) // 2
        if device.type == "cpu":
            budget = min(budget, DEFAULT_CPU_BUDGET)
    per_pixel = bytes_per_pixel(model, precision) * batch
    h, w = image_hw
    if per_pixel * h * w <= budget:
        return None
    side = int(math.isqrt(int(budget // per_pixel)))  # padded tile side that fits
    tile = side - 2 * tile_pad
    if tile >= MIN_TILE:  # same number of tiles, but as even as possible (no thin last row / column)
        tile = max(math.ceil(h / math.ceil(h / tile)), math.ceil(w / math.ceil(w / tile)))
    if tile < MIN_TILE:
        need = per_pixel * (MIN_TILE + 2 * tile_pad) ** 2 / 2**20
        raise MemoryError(
            f"only {budget / 2**20:.0f} MiB available for upscaling: not enough for a {MIN_TILE}x{MIN_TILE} "
            f"tile with {tile_pad} pixels of context ({need:.0f} MiB); free memory, use --device cpu, "
            "or pass a small --tile with --tile-pad 0"
        )
    return tile
