"""int8 CPU inference: the fast generator with int8 weights and uint8 activations (PyTorch eager quantization,
x86 engine), calibrated once per model and cached.

`quantize(generator)` returns an `Int8Generator`: the `srgan.fast.FastGenerator` of `generator` with every
convolution quantized (weights int8 per output channel, symmetric; activations uint8 per tensor) and the
residual adds done as quantized adds. What is not a convolution:
  - PReLU (one slope each) runs as quantized leaky_relu with the learnt slope: exact to one quantization step.
    (torch.ops.quantized.prelu gives wrong values in torch 2.13, max error ~3 on unit-variance inputs.)
  - The first sub-pixel shuffle runs on the uint8 map (`ShuffleX2`), its PReLU in float (dequantize,
    leaky_relu, quantize again: quantized leaky_relu there loses 0.01 dB on Set5); the
    5x5 tail conv that the fast form moves in front of the last shuffle is quantized; the last PixelShuffle
    and tanh run in float.

Calibration: the activations' scales and zero points come from a HistogramObserver over CALIB_CROPS LR crops
(CALIB_SIDE x CALIB_SIDE, made from training photos as training makes them: a random HR crop, bicubic x1/4),
never benchmark images. The result is a small JSON file (the qparams of each quantized output, the model's
weight digest, CALIBRATION_VERSION), looked up by digest: first the shipped calibrations beside the shipped
weights (srgan/weights/NAME.int8.json, made by scripts/int8_calibrate.py, which also records the measured
quality against fp32 and whether `--precision auto` may pick int8 for the model), then the cache
($SRGAN_CACHE/int8/DIGEST.json). A model without one needs `calibrate(...)` once (`srgan calibrate`).

int8 needs a CPU with VNNI or AMX int8 instructions and PyTorch's x86 quantized engine; `check_int8_support`
raises otherwise (no silent fall-back to another precision).
"""

from __future__ import annotations

import copy
import hashlib
import json
import random
import warnings
from pathlib import Path
from typing import Any

import torch
import torch.ao.nn.quantized as nnq
import torch.ao.quantization as tq
from torch import nn
from torch.nn import functional as F

from .fast import FastGenerator, ShuffleX2, prepare_for_inference
from .models import Generator

CALIBRATION_VERSION = 1
CALIB_CROPS = 32
CALIB_SIDE = 96  # LR pixels
ENGINE = "x86"
SHIPPED_DIR = Path(__file__).parent / "weights"
ROWS = 64  # the 2x stage runs in bands of ROWS rows (plus context rows), see Int8Generator.forward


class Int8Block(nn.Module):
    """A residual block of the fast generator (conv, PReLU, conv; BN folded), with a quantized skip add."""

    def __init__(self, block: nn.Module):
        super().__init__()
        conv1, _, prelu, conv2, _ = block.body  # BN layers are Identity after folding
        self.body = nn.Sequential(conv1, nn.LeakyReLU(float(prelu.weight.detach())), conv2)
        self.add = nnq.FloatFunctional()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.add.add(x, self.body(x))


class Int8Generator(nn.Module):
    """The float form before quantization (`quantize` converts it in place): a FastGenerator's function with
    quant / dequant stubs where int8 starts and stops. Has `scale`, `kwargs`, `receptive_radius()` and
    `digest` (of the float weights it came from), so `srgan.upscale` runs it at precision "int8".
    Float32 RGB NCHW in [0, 1] in, [-1, 1] out, like the Generator."""

    def __init__(self, fast: FastGenerator, digest: str):
        super().__init__()
        if not isinstance(fast, FastGenerator) or len(fast.upsample) != 1:
            raise ValueError("int8 needs an x4 SRResNet / SRGAN generator (two sub-pixel stages)")
        fast = copy.deepcopy(fast).cpu().float().to(memory_format=torch.contiguous_format)
        self.kwargs, self.scale, self._radius, self.digest = (
            dict(fast.kwargs),
            fast.scale,
            fast._radius,
            digest,
        )
        self.q_in, self.q_mid = tq.QuantStub(), tq.QuantStub()
        self.dq_mid, self.dq_out = tq.DeQuantStub(), tq.DeQuantStub()
        self.head = nn.Sequential(fast.head[0], nn.LeakyReLU(float(fast.head[1].weight.detach())))
        self.blocks = nn.Sequential(*[Int8Block(b) for b in fast.blocks])
        self.body_tail, self.skip = fast.body_tail[0], nnq.FloatFunctional()
        (up,) = fast.upsample
        self.up_conv, self.shuffle, self.up_slope = up[0], ShuffleX2(), up[2].slope
        self.last_conv, self.last_act = fast.last_conv, nn.LeakyReLU(fast.last_act.slope)
        self.tail = fast.tail
        # context rows a band needs: the 2x stage's 3x3 conv and the 5x5 tail (half kernel each)
        self.halo = self.last_conv.padding[0] + self.tail.padding[0]
        self.eval()

    def receptive_radius(self) -> int:
        return self._radius

    def forward(self, lr_img: torch.Tensor) -> torch.Tensor:
        x = self.head(self.q_in(lr_img.contiguous(memory_format=torch.channels_last)))
        x = self.skip.add(x, self.body_tail(self.blocks(x)))  # (B, 64, H, W), uint8
        x = self.shuffle(self.up_conv(x)).contiguous(memory_format=torch.channels_last)  # uint8, 2H x 2W
        # The 2H x 2W stage in bands of ROWS rows, each with `halo` rows of context per side (3x3 conv, then
        # 5x5 tail: 1 + 2 rows), cropped off after the tail: the same result as the whole map (zero padding
        # only at the image's own edges), without the full-size float map, int8 maps and fbgemm's buffers.
        rows, outs = x.shape[-2], []
        for y0 in range(0, rows, ROWS):
            y1 = min(y0 + ROWS, rows)
            a, b = max(0, y0 - self.halo), min(rows, y1 + self.halo)
            band = F.leaky_relu_(self.dq_mid(x[:, :, a:b]), self.up_slope)  # PReLU in float
            band = self.q_mid(band.contiguous(memory_format=torch.channels_last))
            band = self.last_act(self.last_conv(band))
            outs.append(self.dq_out(self.tail(band))[:, :, y0 - a : y1 - a])  # (B, 12, y1 - y0, 2W)
        x = torch.cat(outs, dim=2) if len(outs) > 1 else outs[0]  # last shuffle pending
        return torch.tanh(F.pixel_shuffle(x, 2))


def cpu_supports_int8() -> bool:
    """Whether int8 pays off here: PyTorch's x86 quantized engine and VNNI or AMX int8 instructions."""
    from .hardware import cpu_flags

    flags = cpu_flags()
    has_vnni = any(f in flags for f in ("avx512_vnni", "avx_vnni", "amx_int8"))
    return has_vnni and ENGINE in torch.backends.quantized.supported_engines


def check_int8_support(device: str | torch.device | None = "cpu") -> None:
    """Raise ValueError, saying why, unless int8 can run on `device` (a CPU with VNNI / AMX, x86 engine)."""
    device = torch.device("cpu" if device is None else device)
    if device.type != "cpu":
        raise ValueError(f"--precision int8 runs on the CPU only, not on {device}: use --device cpu, or "
                         "bf16 / fp16 on a GPU")  # fmt: skip
    if not cpu_supports_int8():
        raise ValueError("--precision int8 needs a CPU with VNNI or AMX int8 instructions (avx512_vnni, "
                           "avx_vnni or amx_int8) and PyTorch's x86 quantized engine; this machine has not "
                           "both: use --precision bf16 or fp32")  # fmt: skip


def weights_digest(generator: nn.Module) -> str:
    """SHA-256 (first 16 hex digits) of a fast generator's float weights (and its float PReLU slopes), the
    key of its calibration. Computed on the `FastGenerator` (BN folded), as `quantize` sees the model."""
    digest = hashlib.sha256()
    for key, value in sorted(generator.state_dict().items()):
        digest.update(key.encode())
        digest.update(value.detach().cpu().float().contiguous().numpy().tobytes())
    for name, module in generator.named_modules():  # the fast form keeps some PReLU slopes as floats
        if isinstance(getattr(module, "slope", None), float):
            digest.update(f"{name}.slope={module.slope!r}".encode())
    return digest.hexdigest()[:16]


def calibration_crops(
    dirs: list[str | Path] | tuple[str | Path, ...],
    count: int = CALIB_CROPS,
    side: int = CALIB_SIDE,
    seed: int = 0,
) -> list[torch.Tensor]:
    """`count` LR crops (1, 3, side, side) in [0, 1]: random (seeded) 4*side HR crops of photos spread evenly
    over the sorted image files of `dirs`, bicubic x1/4 (`srgan.imresize.bicubic_degrade`)."""
    from .data import find_images
    from .imresize import bicubic_degrade
    from .io import read_image

    if count < 1 or side < 16:
        raise ValueError(f"int8 calibration needs at least 1 crop of at least 16 px, got {count} of {side}")
    files = find_images([str(d) for d in dirs])
    if not files:
        raise FileNotFoundError(f"no images for int8 calibration in {', '.join(map(str, dirs))}")
    rng = random.Random(seed)
    crops = []
    for f in files[:: max(1, len(files) // count)][:count]:
        hr = read_image(f)
        h, w = hr.shape[-2:]
        s = min(4 * side, h // 4 * 4, w // 4 * 4)
        if s < 16:
            continue
        y, x = rng.randrange(h - s + 1), rng.randrange(w - s + 1)
        crops.append(bicubic_degrade(hr[:, y : y + s, x : x + s])[None])
    if not crops:
        raise ValueError(f"the images in {', '.join(map(str, dirs))} are too small for int8 calibration")
    return crops


_WEIGHT_OBSERVER = tq.PerChannelMinMaxObserver.with_args(
    dtype=torch.qint8, qscheme=torch.per_channel_symmetric
)


def _observed(model: nn.Module) -> dict[str, nn.Module]:
    return {name: m for name, m in model.named_modules() if hasattr(m, "activation_post_process")}


def _convert(model: Int8Generator, qconfig: tq.QConfig, qparams: dict[str, Any] | None, crops) -> dict:
    """Prepare, calibrate (crops) or fix (qparams), convert in place; the activation qparams used."""
    torch.backends.quantized.engine = ENGINE
    model.qconfig = qconfig
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization's deprecation notices
        if qparams is not None:
            for name, module in model.named_modules():
                if name in qparams:
                    s, z = qparams[name]
                    fixed = tq.FixedQParamsObserver.with_args(scale=s, zero_point=z, dtype=torch.quint8,
                                                              quant_min=0, quant_max=255)  # fmt: skip
                    module.qconfig = tq.QConfig(activation=fixed, weight=_WEIGHT_OBSERVER)
        tq.prepare(model, inplace=True)
        observed = _observed(model)
        if qparams is not None and set(observed) != set(qparams):
            raise ValueError("the int8 calibration does not match the model's layers: calibrate it again")
        with torch.no_grad():
            for x in crops or []:
                model(x)
        used = {}
        for name, module in observed.items():
            scale, zero_point = module.activation_post_process.calculate_qparams()
            used[name] = [float(scale), int(zero_point)]
        tq.convert(model, inplace=True)
    return used


def calibrate(generator: nn.Module, crops: list[torch.Tensor]) -> dict[str, Any]:
    """The int8 calibration of `generator` (Generator or FastGenerator, eval mode) on LR crops: a JSON-ready
    dict {"version", "digest", "crops", "qparams": {layer: [scale, zero_point]}}."""
    fast = generator if isinstance(generator, FastGenerator) else _fast(generator)
    model = Int8Generator(fast, weights_digest(fast))
    qconfig = tq.QConfig(activation=tq.HistogramObserver.with_args(dtype=torch.quint8, reduce_range=False),
                         weight=_WEIGHT_OBSERVER)  # fmt: skip
    qparams = _convert(model, qconfig, None, crops)
    return {"version": CALIBRATION_VERSION, "digest": model.digest, "crops": len(crops), "qparams": qparams}


def _fast(generator: nn.Module) -> FastGenerator:
    """The FastGenerator of a Generator, fp32 on the CPU; the caller's model is not moved or changed."""
    if not isinstance(generator, Generator):
        raise ValueError(f"int8 needs an SRResNet / SRGAN Generator, got {type(generator).__name__}")
    return prepare_for_inference(copy.deepcopy(generator).cpu().float().eval(), device="cpu")


def cache_path(digest: str) -> Path:
    from .pretrained import cache_dir

    return cache_dir() / "int8" / f"{digest}.json"


def find_calibration(digest: str, *, shipped_only: bool = False) -> tuple[dict[str, Any], Path] | None:
    """The stored calibration for a weight digest (shipped first, then the cache), with its file; else None.
    Files that are not a calibration of CALIBRATION_VERSION (unreadable, another format) are ignored."""
    paths = sorted(SHIPPED_DIR.glob("*.int8.json")) + ([] if shipped_only else [cache_path(digest)])
    for path in paths:
        if not path.is_file():
            continue
        try:
            calib = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if (
            isinstance(calib, dict)
            and calib.get("digest") == digest
            and calib.get("version") == CALIBRATION_VERSION
            and isinstance(calib.get("qparams"), dict)
        ):
            return calib, path
    return None


def calibration_tag(calib: dict[str, Any]) -> str:
    """A short hash of a calibration's qparams: what int8 outputs depend on besides the weights."""
    text = json.dumps(calib["qparams"], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def save_calibration(calib: dict[str, Any], path: str | Path | None = None) -> Path:
    """Write a calibration atomically, to `path` or the cache file of its digest."""
    from .checkpoint import atomic_write

    path = Path(path) if path is not None else cache_path(calib["digest"])
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(calib, indent=1) + "\n"
    atomic_write(path, lambda tmp: Path(tmp).write_text(text))
    return path


def quantize(
    generator: nn.Module,
    *,
    calibration: dict[str, Any] | None = None,
    calibration_dirs: list[str | Path] | None = None,
    check_support: bool = True,
) -> Int8Generator:
    """The int8 inference form of `generator` (a Generator or its FastGenerator, eval mode), on the CPU.

    calibration: a dict from `calibrate`; default: the stored one for these weights (`find_calibration`), or,
    when there is none and `calibration_dirs` is given, a new one from crops of those photos, saved in the
    cache so that it is done once. Raises when int8 cannot run here (`check_int8_support`) or when the model
    has no calibration and no photos were given.
    """
    if check_support:
        check_int8_support("cpu")
    fast = generator if isinstance(generator, FastGenerator) else _fast(generator)
    digest = weights_digest(fast)
    if calibration is None:
        found = find_calibration(digest)
        if found is not None:
            calibration = found[0]
        elif calibration_dirs:
            calibration = calibrate(fast, calibration_crops(calibration_dirs))
            save_calibration(calibration)
        else:
            raise ValueError(f"no int8 calibration for this model (weights {digest}): run `srgan calibrate "
                             "MODEL --data DIR` once with a folder of training photos (cached)")  # fmt: skip
    if calibration.get("digest") != digest:
        raise ValueError(f"the int8 calibration is for weights {calibration.get('digest')}, not {digest}")
    model = Int8Generator(fast, digest)
    _convert(model, tq.QConfig(activation=tq.MinMaxObserver, weight=_WEIGHT_OBSERVER), calibration["qparams"],
             None)  # fmt: skip
    return model.eval()


def auto_int8(generator: nn.Module) -> bool:
    """Whether `--precision auto` may pick int8 for this model: only a shipped calibration whose measured
    quality against fp32 met the bounds (scripts/int8_calibrate.py) says so, and only where int8 runs."""
    if not isinstance(generator, (Generator, FastGenerator)) or not cpu_supports_int8():
        return False
    fast = generator if isinstance(generator, FastGenerator) else _fast(generator)
    found = find_calibration(weights_digest(fast), shipped_only=True)
    return found is not None and bool(found[0].get("auto", False))
