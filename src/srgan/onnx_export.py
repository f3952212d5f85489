"""ONNX export of a generator, and an ONNX Runtime backend for `srgan.upscale` (CPU, no torch kernels).

`export_onnx(model, path)` writes the fast inference form of the generator (`srgan.fast.FastGenerator`: BN
folded, the tail conv before the last shuffle) with dynamic batch, height and width: input `lr_img`
(N, 3, H, W) float32 in [0, 1], output `sr_img` (N, 3, sH, sW) float32 in [-1, 1] (tanh), exactly the
Generator's contract. The generator kwargs, scale and receptive radius go into the file's metadata, so
`OnnxGenerator(path)` can stand in for a Generator in `srgan.upscale` (tiling included).
Needs the `onnx` extra: `pip install 'srgan[onnx]'` (onnx, onnxscript for the exporter, onnxruntime).
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .fast import prepare_for_inference
from .hardware import default_threads
from .models import Generator

INPUT, OUTPUT = "lr_img", "sr_img"
OPSET = 18


def _missing(what: str) -> ImportError:
    return ImportError(f"{what} is not installed: pip install 'srgan[onnx]' (onnx, onnxscript, onnxruntime)")


def export_onnx(model: Generator, path: str | Path, *, opset: int = OPSET) -> Path:
    """Write `model` (an eval-mode Generator) as ONNX with dynamic N, H, W; returns the path.

    The file holds the BN-folded `FastGenerator` (fp32) and metadata {"format": "srgan-generator-onnx",
    "kwargs", "scale", "receptive_radius"}. Check it with `check_onnx`.
    """
    try:
        import onnx
    except ImportError as e:
        raise _missing("onnx") from e
    if model.training:
        raise ValueError("export an eval-mode model: call .eval() (BN must use its running statistics)")
    if not isinstance(model, Generator):
        arch = getattr(model, "kwargs", {}).get("arch", type(model).__name__)
        raise ValueError(f"ONNX export is for the SRResNet generator; {arch} runs on the torch backend only")
    fast = prepare_for_inference(model, device="cpu", channels_last=False).float()
    example = torch.rand(2, 3, 32, 32)  # batch 2: a batch of 1 would be specialised to a constant
    dim = torch.export.Dim.DYNAMIC
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.redirect_stdout(io.StringIO()):  # the exporter prints its progress
        program = torch.onnx.export(
            fast, (example,), input_names=[INPUT], output_names=[OUTPUT], opset_version=opset, dynamo=True,
            dynamic_shapes={INPUT: {0: dim, 2: dim, 3: dim}}, verbose=False,
        )  # fmt: skip
    proto = program.model_proto
    meta = {
        "format": "srgan-generator-onnx",
        "kwargs": json.dumps(fast.kwargs),
        "scale": str(fast.scale),
        "receptive_radius": str(fast.receptive_radius()),
    }
    del proto.metadata_props[:]
    for key, value in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(proto)
    from .checkpoint import atomic_write

    atomic_write(path, lambda tmp: onnx.save(proto, tmp))
    return path


class OnnxGenerator(nn.Module):
    """An exported generator run by ONNX Runtime on CPU, usable wherever `srgan.upscale` takes a Generator.

    forward(lr_img (N, 3, H, W) float in [0, 1], CPU) -> sr_img in [-1, 1], float32 CPU tensor.
    threads: ONNX Runtime intra-op threads (default: the cores this process may use).
    """

    def __init__(self, path: str | Path, *, threads: int | None = None):
        super().__init__()
        try:
            import onnxruntime as ort
        except ImportError as e:
            raise _missing("onnxruntime") from e
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"no ONNX file {path}: make one with `srgan export CKPT -o {path.name}`")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or default_threads()
        options.enable_cpu_mem_arena = False  # tiles of changing sizes: free memory between them
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        meta = self.session.get_modelmeta().custom_metadata_map
        if meta.get("format") != "srgan-generator-onnx":
            raise ValueError(f"{path} is not an srgan generator export (no srgan metadata)")
        self.path = path
        self.kwargs = json.loads(meta["kwargs"])
        self.scale = int(meta["scale"])
        self._radius = int(meta["receptive_radius"])
        self.eval()

    def receptive_radius(self) -> int:
        return self._radius

    def forward(self, lr_img: torch.Tensor) -> torch.Tensor:
        if lr_img.device.type != "cpu":
            raise ValueError("the onnxruntime backend runs on CPU: use --device cpu (or the torch backend)")
        x = np.ascontiguousarray(lr_img.detach().float().numpy())
        return torch.from_numpy(self.session.run([OUTPUT], {INPUT: x})[0])


def check_onnx(
    model: Generator, path: str | Path, *, size: tuple[int, int] = (23, 31), atol: float = 1e-4
) -> float:
    """Max |ONNX Runtime - PyTorch| on a random (2, 3, *size) input; raises if it is above `atol`."""
    lr_img = torch.rand(2, 3, *size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        ref = model(lr_img)
    out = OnnxGenerator(path, threads=1)(lr_img)
    diff = float((out - ref).abs().max())
    if not diff <= atol:
        raise ValueError(f"ONNX export {path} differs from PyTorch by {diff:.3g} (> {atol:g})")
    return diff
