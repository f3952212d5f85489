"""Hugging Face Hub model folders: write one (`srgan export MODEL --hub-dir DIR`), load one (a local folder,
or `hf://ORG/REPO[@REVISION]` through huggingface_hub's cache), and upload one (`srgan push`).

A folder holds the files of a Hub model repository:
  model.safetensors  the release file (`srgan.checkpoint.save_generator`): weights and the same metadata
  config.json        the generator's architecture kwargs, scale, variant and a summary of its recipe
  README.md          the model card, with the Hub's YAML front matter (library_name, pipeline_tag, tags,
                     license, datasets, and model-index with benchmark figures when they are given)
Loading checks that the files are there and agree: a config whose kwargs are not those of the weights, or
weights of other shapes than the config says, are refused with the file named. huggingface_hub (the `hub`
extra) is imported only by `resolve_hf` and `push`.
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path
from typing import Any

from torch import nn

from .checkpoint import generator_from_state, read_release, release_kwargs, save_generator
from .io import atomic_write
from .models import count_parameters

WEIGHTS_FILE, CONFIG_FILE, CARD_FILE = "model.safetensors", "config.json", "README.md"
HUB_FILES = (WEIGHTS_FILE, CONFIG_FILE, CARD_FILE)
HF_PREFIX = "hf://"
LICENSE = "mit"
# What every shipped model was trained on (their model cards, "Data"); evaluation sets go in model-index.
SHIPPED_DATASETS = ("imagenet-1k", "bsds300", "sun-hays-80")
# results.json metric -> (Hub metric type, name shown, decimals)
METRICS = {
    "psnr_paper": ("psnr", "PSNR (Y, 4-px border, paper protocol: daala tools)", 2),
    "ssim_paper": ("ssim", "SSIM (Y, paper protocol: daala tools)", 4),
    "psnr_default": ("psnr", "PSNR (Y, 4-px border, float)", 2),
    "ssim_default": ("ssim", "SSIM (Y, Wang et al.)", 4),
    "lpips_alex": ("lpips", "LPIPS-Alex v0.1 (lower is better)", 3),
    "lpips_vgg": ("lpips", "LPIPS-VGG v0.1 (lower is better)", 3),
}
USAGE_START, USAGE_END = "<!-- srgan: usage -->", "<!-- srgan: end of usage -->"
_REPO_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*")


def is_hf(spec: object) -> bool:
    return isinstance(spec, str) and spec.startswith(HF_PREFIX)


def is_hub_folder(path: str | Path) -> bool:
    """A folder that looks like a model folder (has a config.json or a model.safetensors)."""
    path = Path(path)
    return path.is_dir() and any((path / f).exists() for f in (WEIGHTS_FILE, CONFIG_FILE))


# ---- writing --------------------------------------------------------------------------------------------


def recipe_summary(metadata: dict[str, str]) -> dict[str, Any]:
    """The training recipe in brief: the preset's losses and optimiser settings (`srgan.config.PRESETS`), and
    the steps and EMA of this model (its release metadata). The model card has the exact recipe."""
    from .config import PRESETS

    preset = metadata.get("preset")
    summary: dict[str, Any] = {"preset": preset}
    if "step" in metadata:
        summary["steps"] = int(metadata["step"])
    if metadata.get("ema_decay") not in (None, "None"):
        summary["ema_decay"] = float(metadata["ema_decay"])
    cfg = PRESETS.get(preset) if preset else None
    if cfg is not None:
        summary |= {"content_loss": cfg.content_loss, "adversarial": cfg.adversarial,
                    "adv_weight": cfg.adv_weight if cfg.adversarial else 0.0, "tv_weight": cfg.tv_weight,
                    "learning_rate": cfg.learning_rate, "batch_size": cfg.batch_size,
                    "hr_crop_size": cfg.crop_size, "degradation": cfg.degradation,
                    "paper_steps": cfg.steps}  # fmt: skip
    return summary


def hub_config(generator: nn.Module, metadata: dict[str, str], name: str) -> dict[str, Any]:
    """config.json of a model folder."""
    from . import __version__

    kwargs = dict(generator.kwargs)
    return {
        "library_name": "srgan", "format": "srgan-generator", "srgan_version": __version__, "name": name,
        "arch": kwargs.get("arch", "srresnet"), "kwargs": kwargs, "scale": kwargs["scale"],
        "variant": metadata.get("preset"), "parameters": count_parameters(generator),
        "dtype": metadata.get("dtype", "float32"), "recipe": recipe_summary(metadata),
        "input": "float32 RGB (N, 3, H, W) in [0, 1]",
        "output": "float32 RGB (N, 3, scale*H, scale*W) in [0, 1]",
    }  # fmt: skip


def model_index(name: str, figures: dict[str, Any], scale: int) -> list[dict[str, Any]]:
    """The Hub's model-index of one model from a benchmark results.json entry ({set: {"mean": {metric:
    value}}}, what `srgan benchmark` writes)."""
    results = []
    for set_name, entry in figures.items():
        mean = entry.get("mean", {})
        metrics = [
            {"type": kind, "value": round(float(mean[key]), decimals), "name": label}
            for key, (kind, label, decimals) in METRICS.items()
            if key in mean
        ]
        if metrics:
            results.append({"task": {"type": "image-to-image", "name": f"Image Super-Resolution x{scale}"},
                            "dataset": {"type": set_name, "name": f"{set_name} (x{scale}, bicubic LR)"},
                            "metrics": metrics})  # fmt: skip
    return [{"name": name, "results": results}]


def _yaml(value: Any, indent: int = 0) -> list[str]:
    """Block YAML of plain JSON data (scalars as JSON, which YAML reads the same), one line per entry."""
    pad = " " * indent
    if isinstance(value, dict):
        lines = []
        for key, item in value.items():
            if isinstance(item, (dict, list)) and item:
                lines += [f"{pad}{key}:", *_yaml(item, indent + 2 if isinstance(item, dict) else indent)]
            else:
                lines.append(f"{pad}{key}: {json.dumps(item)}")
        return lines
    lines = []
    for item in value:
        sub = _yaml(item, indent + 2) if isinstance(item, (dict, list)) else [f"{pad}  {json.dumps(item)}"]
        lines.append(f"{pad}- {sub[0].strip()}")
        lines += sub[1:]
    return lines


def model_card(
    name: str,
    generator: nn.Module,
    metadata: dict[str, str],
    *,
    body: str | None = None,
    figures: dict[str, Any] | None = None,
    datasets: tuple[str, ...] = (),
) -> str:
    """README.md of a model folder: YAML front matter, how to use it, then `body` (a model card's text)."""
    front: dict[str, Any] = {"library_name": "srgan", "pipeline_tag": "image-to-image", "license": LICENSE,
                             "tags": ["super-resolution", "srgan", "image-to-image", "pytorch"]}  # fmt: skip
    if datasets:
        front["datasets"] = list(datasets)
    if figures:
        front["model-index"] = model_index(name, figures, generator.kwargs["scale"])
    kwargs = ", ".join(f"{k}={v}" for k, v in generator.kwargs.items())
    usage = (
        f"{USAGE_START}\nA generator of srgan, SRResNet / SRGAN ([Ledig et al., CVPR 2017]"
        f"(https://arxiv.org/abs/1609.04802)), `{name}`: "
        f"{kwargs}, {count_parameters(generator):,} parameters, preset `{metadata.get('preset')}`"
        f"{', ' + metadata['step'] + ' steps' if 'step' in metadata else ''}.\n\n"
        "```bash\nsrgan upscale photo.png -o out/ --model hf://ORG/REPO   # ORG/REPO: this repository\n"
        "```\n\n```python\nimport srgan\n"
        "model = srgan.load_model(\"hf://ORG/REPO\")   # or a local copy of this folder\n"
        "sr = srgan.upscale(model, image)   # PIL in, PIL out; or float32 RGB (N, 3, H, W) in [0, 1]\n```\n\n"
        "Files: `model.safetensors` (weights; metadata: kwargs, preset, step), `config.json` (architecture, "
        "recipe summary), this card. The figures in `model-index` above are from `srgan benchmark`.\n"
        f"{USAGE_END}\n"
    )
    text = body.strip() if body else f"# {name}\n\nNo model card was given for this model."
    if USAGE_START in text and USAGE_END in text:  # a card of a model folder, exported again
        text = text[: text.index(USAGE_START)] + text[text.index(USAGE_END) + len(USAGE_END) :]
    title, _, rest = text.partition("\n")
    if not title.startswith("# "):
        title, rest = f"# {name}", text
    return "---\n" + "\n".join(_yaml(front)) + "\n---\n" + f"{title}\n\n{usage}\n{rest.lstrip()}\n"


def write_hub_folder(
    out_dir: str | Path,
    generator: nn.Module,
    *,
    name: str,
    metadata: dict[str, str] | None = None,
    body: str | None = None,
    figures: dict[str, Any] | None = None,
    datasets: tuple[str, ...] = (),
    half: bool = False,
    force: bool = False,
) -> Path:
    """Write model.safetensors, config.json and README.md into `out_dir` (created); each file atomically.
    FileExistsError when `out_dir` already holds one of them, unless `force`."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise FileExistsError(f"{out} exists and is not a folder")
    there = [f for f in HUB_FILES if (out / f).exists()]
    if there and not force:
        raise FileExistsError(f"{out} already holds {', '.join(there)} (use --force to replace them)")
    meta = dict(metadata or {})
    save_generator(out / WEIGHTS_FILE, generator, metadata=meta, half=half)
    meta |= {"dtype": "float16"} if half else {}
    config = json.dumps(hub_config(generator, meta, name), indent=2) + "\n"
    card = model_card(name, generator, meta, body=body, figures=figures, datasets=datasets)
    atomic_write(out / CONFIG_FILE, lambda tmp: Path(tmp).write_text(config))
    atomic_write(out / CARD_FILE, lambda tmp: Path(tmp).write_text(card))
    return out


# ---- reading --------------------------------------------------------------------------------------------


def read_hub_config(folder: str | Path) -> dict[str, Any]:
    """config.json of a model folder, checked to be an srgan generator's; ValueError / FileNotFoundError."""
    folder = Path(folder)
    hint = f"a model folder holds {', '.join(HUB_FILES)} (`srgan export MODEL --hub-dir DIR` writes one)"
    if not folder.is_dir():
        raise FileNotFoundError(f"no such model folder: {folder}")
    missing = [f for f in (WEIGHTS_FILE, CONFIG_FILE) if not (folder / f).is_file()]
    if len(missing) == 2:
        raise FileNotFoundError(f"{folder} is a folder, not a model file, and not a model folder: {hint}")
    if missing:
        raise FileNotFoundError(f"{folder}: missing {' and '.join(missing)}: {hint}")
    try:
        config = json.loads((folder / CONFIG_FILE).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{folder / CONFIG_FILE}: not JSON ({e})") from None
    if not isinstance(config, dict) or config.get("library_name") != "srgan":
        raise ValueError(f"{folder / CONFIG_FILE}: not an srgan model config (no library_name srgan); {hint}")
    if not isinstance(config.get("kwargs"), dict):
        raise ValueError(f"{folder / CONFIG_FILE}: no generator 'kwargs' mapping")
    if "scale" in config and config["scale"] != config["kwargs"].get("scale"):
        raise ValueError(f"{folder / CONFIG_FILE}: scale {config['scale']} disagrees with its kwargs "
                         f"{config['kwargs']}")  # fmt: skip
    return config


def load_hub_folder(folder: str | Path) -> nn.Module:
    """The generator (eval mode, CPU) of a model folder; ValueError / FileNotFoundError naming what is wrong:
    a missing file, a config that is not srgan's or disagrees with the weights' own kwargs, weights whose
    shapes do not fit the config."""
    folder = Path(folder)
    config = read_hub_config(folder)
    weights = folder / WEIGHTS_FILE
    state, meta = read_release(weights)
    kwargs = config["kwargs"]
    if "kwargs" in meta:  # srgan's own release files say what they hold: the config must agree
        own = release_kwargs(meta, str(weights))
        if own != kwargs:
            raise ValueError(f"{folder}: {CONFIG_FILE} says kwargs {kwargs} but {WEIGHTS_FILE} holds a "
                             f"generator of {own}: the folder is mixed up; export it again")  # fmt: skip
    return generator_from_state(state, kwargs, str(weights))


def parse_hf(spec: str) -> tuple[str, str | None]:
    """hf://ORG/REPO[@REVISION] -> (repo id, revision or None); ValueError for anything else."""
    repo_id, at, revision = spec[len(HF_PREFIX) :].partition("@")
    if not spec.startswith(HF_PREFIX) or not _REPO_ID.fullmatch(repo_id) or (at and not revision.strip()):
        raise ValueError(f"{spec!r}: expected hf://ORG/REPO or hf://ORG/REPO@REVISION")
    return repo_id, revision or None


def resolve_hf(spec: str) -> Path:
    """The local folder of hf://ORG/REPO[@REVISION]: fetched into huggingface_hub's cache ($HF_HUB_CACHE) or
    found there; with HF_HUB_OFFLINE=1 only found there. One-line errors say how to fetch it otherwise."""
    repo_id, revision = parse_hf(spec)
    try:
        from huggingface_hub import constants, snapshot_download
        from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError
    except ImportError:
        raise ImportError(f"{spec} needs huggingface_hub: pip install 'srgan[hub]'") from None
    at = f" --revision {revision}" if revision else ""
    fetch = f"`hf download {repo_id}{at}` (or any srgan command with this hf:// model) while online"
    try:
        folder = snapshot_download(repo_id, revision=revision, allow_patterns=list(HUB_FILES))
    except LocalEntryNotFoundError:
        if constants.HF_HUB_OFFLINE:
            raise FileNotFoundError(f"{spec} is not in the Hugging Face cache ({constants.HF_HUB_CACHE}) and "
                                    f"HF_HUB_OFFLINE=1: fetch it once with {fetch}") from None  # fmt: skip
        raise FileNotFoundError(f"{spec}: the Hub cannot be reached and the model is not in the cache "
                                f"({constants.HF_HUB_CACHE}): fetch it with {fetch}") from None  # fmt: skip
    except HfHubHTTPError as e:  # no such repository or revision, no access, ...
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise FileNotFoundError(f"{spec}: {first[:300]}") from None
    return Path(folder)


# ---- uploading ------------------------------------------------------------------------------------------


def push(model: str, repo_id: str, *, private: bool = False, message: str | None = None,
         token: str | None = None) -> str:  # fmt: skip
    """Upload a model folder to the Hub model repository `repo_id` (created if needed) with huggingface_hub
    and its usual token (`hf auth login`, $HF_TOKEN). `model` is a model folder (checked as `load_model` would
    load it, and it must have its README.md), or anything `srgan export` takes (a shipped name, a file, an
    hf:// model), exported to a temporary folder first. Returns the URL of the commit."""
    from .zoo import export_hub_folder, load_model

    if not _REPO_ID.fullmatch(repo_id):
        raise ValueError(f"{repo_id!r}: expected a repository id ORG/REPO")
    try:
        from huggingface_hub import HfApi
    except ImportError:
        raise ImportError("srgan push needs huggingface_hub: pip install 'srgan[hub]'") from None
    with tempfile.TemporaryDirectory(prefix="srgan-push-") as tmp:
        if is_hub_folder(model):
            folder = Path(model)
            load_model(folder)
            if not (folder / CARD_FILE).is_file():
                raise FileNotFoundError(f"{folder}: missing {CARD_FILE}, the model card (export it again)")
        else:
            folder = export_hub_folder(model, Path(tmp) / "model")
        api = HfApi(token=token)
        api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
        commit = api.upload_folder(repo_id=repo_id, repo_type="model", folder_path=str(folder),
                                   allow_patterns=list(HUB_FILES),
                                   commit_message=message or f"srgan push {Path(model).name}")  # fmt: skip
    return str(getattr(commit, "commit_url", commit))
