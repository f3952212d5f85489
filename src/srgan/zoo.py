"""The model zoo: shipped generator names, loading any model by name or file, the realism control, and
the model `srgan upscale` runs.

Names: the five variants of the paper's Table 1 are shipped as `srresnet` (SRResNet-MSE), `srresnet-vgg22`,
`srgan-mse`, `srgan-vgg22` and `srgan` (SRGAN-VGG54, the default of `srgan upscale`); two of Table 2's
baselines as `srcnn` and `espcn`. The preset names
`srresnet-mse` and `srgan-vgg54` are accepted for the first and the last everywhere (`canonical_name`); the
shipped name is what is printed.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import torch

from .checkpoint import generator_from_state, load_generator_file
from .hub import is_hf, load_hub_folder, resolve_hf
from .models import Generator

WEIGHTS_DIR = Path(__file__).parent / "weights"

# Shipped generators: name -> file in srgan/weights/ (model cards beside them): "srresnet" is the
# PSNR-oriented SRResNet-MSE, "srgan" the SRGAN-VGG54 fine-tuned from it, the default of `srgan upscale`;
# the other three are the remaining variants of the paper's Table 1 (stored as float16, loaded as float32).
SHIPPED = {
    "srresnet": "srresnet.safetensors",
    "srgan": "srgan.safetensors",
    "srresnet-vgg22": "srresnet-vgg22.safetensors",
    "srgan-mse": "srgan-mse.safetensors",
    "srgan-vgg22": "srgan-vgg22.safetensors",
    # the paper's Table 2 baselines that fit a CPU (srgan.models.SRCNN / ESPCN; docs/baselines.md)
    "srcnn": "srcnn.safetensors",
    "espcn": "espcn.safetensors",
}
TABLE1_VARIANTS = ("srresnet", "srresnet-vgg22", "srgan-mse", "srgan-vgg22", "srgan")
TABLE2_BASELINES = ("srcnn", "espcn")
ALIASES = {"srresnet-mse": "srresnet", "srgan-vgg54": "srgan"}  # the paper's variant names of two of them
DEFAULT_MODEL = "srgan"
AUTO_PRECISION_HELP = (
    "int8 on CPUs with VNNI / AMX for models whose int8 form met the quality bounds, "
    "else bf16 on CPUs with native bf16 (AVX512-BF16 / AMX), else fp32"
)


def canonical_name(name: str) -> str:
    """A shipped model's name as printed: preset names (srresnet-mse, srgan-vgg54) map to the shipped ones;
    anything else (a file path) is returned as it is."""
    return ALIASES.get(name, name)


def shipped_path(name: str) -> Path | None:
    """The weights file of a shipped name (or alias), None for anything else."""
    name = canonical_name(name)
    return WEIGHTS_DIR / SHIPPED[name] if name in SHIPPED else None


def load_model(
    name_or_path: str | Path, device: str | torch.device = "cpu", *, fast: bool = False
) -> torch.nn.Module:
    """A generator in eval mode from a shipped name (see SHIPPED and ALIASES), a .safetensors release file,
    a training checkpoint (.pt) written by `srgan train`, a model folder (`srgan.hub`: model.safetensors,
    config.json, README.md), or `hf://ORG/REPO[@REVISION]`, a model folder on the Hugging Face Hub (fetched
    into huggingface_hub's cache; HF_HUB_OFFLINE=1 honoured). With `fast=True`, its inference form
    (`srgan.fast.prepare_for_inference`: BN folded, channels_last; same outputs within 1e-5), for upscaling
    only (it cannot be trained or saved as a release file)."""
    path = model_path(name_or_path)
    model = load_hub_folder(path) if path.is_dir() else load_generator_file(path)
    if fast:
        from .fast import prepare_for_inference

        return prepare_for_inference(model, device=device)
    return model.to(device)


def model_path(name_or_path: str | Path) -> Path:
    """The local file or folder of a model spec: a shipped name's weights file, an hf:// model's folder in
    the Hugging Face cache (fetched if needed), or the path itself; FileNotFoundError when there is none."""
    name = str(name_or_path)
    path = shipped_path(name)
    if path is not None:
        if not path.exists():
            raise FileNotFoundError(f"shipped weights for {name!r} are missing: {path}")
        return path
    if is_hf(name):
        return resolve_hf(name)
    path = Path(name)
    if not path.exists():
        names = ", ".join([*SHIPPED, *ALIASES])
        raise FileNotFoundError(
            f"no model {name!r}: not a shipped name ({names}), an existing file or model folder, nor "
            "hf://ORG/REPO"
        )
    return path


def weights_file(name_or_path: str | Path) -> Path:
    """The file holding a model's weights: `model_path`, or a model folder's model.safetensors."""
    from .hub import WEIGHTS_FILE

    path = model_path(name_or_path)
    return path / WEIGHTS_FILE if path.is_dir() else path


def model_name(name_or_path: str | Path) -> str:
    """What a model is called: a shipped name as printed, hf://ORG/REPO's REPO, a folder's or file's stem."""
    name = str(name_or_path)
    if shipped_path(name) is not None:
        return canonical_name(name)
    if is_hf(name):
        return name.split("@")[0].rstrip("/").split("/")[-1]
    path = Path(name)
    return path.stem if path.suffix in (".pt", ".pth", ".ckpt", ".safetensors") else path.name


def release_source(name_or_path: str | Path, *, ema: bool = True) -> tuple[torch.nn.Module, dict[str, str]]:
    """What `srgan export` writes out: the generator of any model spec `load_model` takes, and the metadata
    to release it with. A training checkpoint gives its step and preset (and its EMA's decay, which is the
    generator written when it kept one and `ema`); a release file or model folder keeps its own metadata
    (step, preset, source, dtype); a checkpoint also gets "source": its file name."""
    import zipfile

    from .checkpoint import generator_from_checkpoint, load_checkpoint, read_release

    path = model_path(name_or_path)
    if path.is_file() and (path.suffix in (".pt", ".pth", ".ckpt") or zipfile.is_zipfile(path)):
        ckpt = load_checkpoint(path)  # read once: an SRGAN last.pt is 300 MB
        generator = generator_from_checkpoint(ckpt, where=str(path), ema=ema)
        meta = {"source": path.name, "step": str(ckpt["step"]), "preset": str(ckpt["config"]["preset"])}
        if ckpt.get("generator_ema") is not None and ema:
            meta["ema_decay"] = str(ckpt["config"].get("ema_decay"))
        return generator, meta
    generator = load_model(path)  # every check first; then its metadata, without what save_generator writes
    _, meta = read_release(weights_file(path))
    return generator, {k: v for k, v in meta.items() if k not in ("format", "kwargs")}


def export_hub_folder(
    name_or_path: str | Path,
    out_dir: str | Path,
    *,
    results: str | Path | dict | None = None,
    half: bool = False,
    ema: bool = True,
    force: bool = False,
) -> Path:
    """`srgan export MODEL --hub-dir DIR`: a model folder for the Hugging Face Hub (`srgan.hub`) of any model
    spec. Its README.md is the model card (a shipped model's card in srgan/weights/, else a NAME.md beside a
    model file, else a stub) under the Hub's front matter, with model-index figures from `results` (a
    results.json of `srgan benchmark`, or its parsed dict; the entry named like the model). Weights stored
    as float16 stay float16, others too with `half`."""
    import json

    from .hub import CARD_FILE, SHIPPED_DATASETS, is_hub_folder, write_hub_folder

    source = model_path(name_or_path)  # an hf:// model is resolved once
    generator, meta = release_source(source, ema=ema)
    name = model_name(name_or_path)
    figures = None
    if results is not None:
        try:
            table = results if isinstance(results, dict) else json.loads(Path(results).read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ValueError(f"{results}: not a readable results.json of `srgan benchmark` ({e})") from None
        if name not in table:
            raise ValueError(f"{results}: no results for {name!r} (it has {', '.join(table) or 'none'})")
        figures = table[name]
    shipped = shipped_path(str(name_or_path))
    if shipped is not None:
        card = shipped.with_suffix(".md")
    elif is_hub_folder(source):
        card = source / CARD_FILE
    else:
        card = source.with_suffix(".md")
    body = card.read_text() if card.is_file() else None
    if body and body.startswith("---\n"):  # a Hub card already: its front matter is made anew
        body = body.split("\n---\n", 1)[-1]
    half = half or meta.pop("dtype", None) == "float16"
    return write_hub_folder(out_dir, generator, name=name, metadata=meta, body=body, figures=figures,
                            datasets=SHIPPED_DATASETS if shipped is not None else (), half=half,
                            force=force)  # fmt: skip


def interpolate_generators(g0: Generator, g1: Generator, realism: float) -> Generator:
    """A new generator whose weights (and batch-norm statistics) are (1 - realism) * g0 + realism * g1:
    network interpolation (as in ESRGAN, Wang et al. 2018), a knob along the perception-distortion trade-off.
    realism in [0, 1]; 0 gives g0's weights exactly, 1 gives g1's."""
    if not (math.isfinite(realism) and 0.0 <= realism <= 1.0):
        raise ValueError(f"realism must be in [0, 1], got {realism}")
    if g0.kwargs != g1.kwargs:
        raise ValueError(f"cannot interpolate generators of different shapes: {g0.kwargs} vs {g1.kwargs}")
    s0, s1 = g0.state_dict(), g1.state_dict()
    mixed = {}
    for key, w0 in s0.items():
        w1 = s1[key].to(w0.device)
        # torch.lerp is exact at the ends (start + 0 * diff, end - 0 * diff); BN's integer counter is g1's
        mixed[key] = torch.lerp(w0, w1, realism) if w0.is_floating_point() else w1.clone()
    return generator_from_state(mixed, g0.kwargs).to(next(g0.parameters()).device)


def load_realism_model(realism: float, device: str | torch.device = "cpu") -> Generator:
    """The shipped SRResNet (realism 0, PSNR-oriented) and SRGAN (realism 1, photo-realistic) generators,
    interpolated weight by weight (`interpolate_generators`)."""
    return interpolate_generators(load_model("srresnet", device), load_model("srgan", device), realism)


def resolve_precision(
    precision: str, device: torch.device, *, backend: str = "torch", int8: bool = False
) -> str:
    """`auto` -> int8 when `int8` (the model's shipped calibration met the int8 quality bounds, see
    `srgan.int8.auto_int8`) on a CPU with VNNI / AMX, else bf16 on a CPU with native bf16 (Set5 PSNR change
    measured at -0.0013 dB with the shipped srresnet, bench/precision.py), else fp32 (GPU fp16/bf16 quality
    not measured yet); others unchanged."""
    from .hardware import cpu_supports_bf16
    from .int8 import cpu_supports_int8

    if precision != "auto":
        return precision
    if backend != "torch" or device.type != "cpu":
        return "fp32"
    if int8 and cpu_supports_int8():
        return "int8"
    return "bf16" if cpu_supports_bf16() else "fp32"


def load_inference_model(
    name: str | None = None,
    *,
    backend: str = "torch",
    device: str | torch.device = "cpu",
    plain: bool = False,
    realism: float | None = None,
    precision: str = "fp32",
):
    """The model `srgan upscale` runs: the fast inference form of `name` (torch; the shipped default when
    None), its plain Generator (`plain`), its int8 form (`precision="int8"`, `srgan.int8.quantize`), or an
    ONNX Runtime session (a .onnx file, or the model exported to a temporary file). With `realism`, the
    shipped srresnet and srgan interpolated (`name` must be None). precision "auto" is resolved here
    (`resolve_precision`, int8 only for models whose shipped calibration allows it); returns
    (model, precision)."""
    from .fast import prepare_for_inference

    if realism is not None:
        if name is not None:
            raise ValueError("--realism mixes the shipped srresnet and srgan: leave out --model")
        generator = load_realism_model(realism)
    elif Path(name or DEFAULT_MODEL).suffix == ".onnx":
        if backend != "onnxruntime":
            raise ValueError("a .onnx model needs --backend onnxruntime")
        from .onnx_export import OnnxGenerator

        return OnnxGenerator(name), "fp32"
    else:
        generator = load_model(name or DEFAULT_MODEL)
    if backend == "onnxruntime":
        from .onnx_export import OnnxGenerator, export_onnx

        with tempfile.TemporaryDirectory() as tmp:
            return OnnxGenerator(export_onnx(generator, Path(tmp) / "model.onnx")), "fp32"
    fast = None if plain else prepare_for_inference(generator, device=device)  # folded once, used below
    if precision == "auto":
        from .int8 import auto_int8

        on_cpu = torch.device(device).type == "cpu"
        precision = resolve_precision("auto", torch.device(device), int8=on_cpu and fast is not None
                                      and auto_int8(fast))  # fmt: skip
    if precision == "int8":
        if plain:
            raise ValueError("--plain runs the model as trained: it has no int8 form (leave out --plain)")
        if realism is not None:
            raise ValueError("--realism mixes have no int8 calibration: use --precision bf16 or fp32")
        from .int8 import check_int8_support, quantize

        check_int8_support(device)
        return quantize(fast), precision
    return (generator.to(device) if plain else fast), precision
