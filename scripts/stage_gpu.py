"""Stage what a GPU training session needs into one git-ignored folder that fits a small transfer.

The lent GPU machines of this project have no internet and take at most 64 MiB of working tree with them, so
this writes, into --out (default .stage/, ignored by git):

- train/: a seeded random subset of the training images, copied byte for byte, up to --megabytes (by
  default what is left of the 64 MiB transfer after the working tree and the VGG file, less 1 MiB);
- vgg19_caffe_int8.safetensors: the cached Oxford/Caffe VGG19 (`srgan weights vgg19`) with every conv weight
  rounded to int8 with one fp32 scale per output channel (20 MB instead of 80 MB); biases stay fp32.
  `scripts/gpu_train.py` turns it back into the float cache file on the GPU machine.

It prints how far the int8 weights move the VGG features and the VGG54 loss on real images, next to what
bf16 autocast (the precision the training runs in) already moves them, so the cost of the rounding is a
measured figure.

    python scripts/stage_gpu.py                          # ImageNet photos of ../shared/data/train, auto size
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from srgan.data import find_images
from srgan.io import read_image
from srgan.models import VGG19Features
from srgan.vgg_weights import FORMAT, weights_path

INT8_NAME = "vgg19_caffe_int8.safetensors"
REPO = Path(__file__).resolve().parents[1]


def quantize_int8(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Conv weights (O, I, kh, kw) -> int8 `K` plus fp32 per-output-channel scale `K.scale`; rest as is."""
    out = {}
    for key, value in state.items():
        if key.endswith(".weight") and value.dim() == 4:
            scale = value.abs().amax(dim=(1, 2, 3)).clamp_min(1e-12) / 127
            out[key] = torch.round(value / scale[:, None, None, None]).clamp(-127, 127).to(torch.int8)
            out[key + ".scale"] = scale.float()
        else:
            out[key] = value.float()
    return out


def dequantize_int8(packed: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The inverse of `quantize_int8` (up to its rounding): fp32 tensors under the original keys."""
    out = {}
    for key, value in packed.items():
        if key.endswith(".scale"):
            continue
        if value.dtype == torch.int8:
            out[key] = value.float() * packed[key + ".scale"][:, None, None, None]
        else:
            out[key] = value
    return out


VGG_INT8_BYTES = 20_100_000  # conv weights up to conv5_4 as int8, plus fp32 biases and scales (measured)


def working_tree_bytes(exclude: Path) -> int:
    """Bytes the device tool sends besides the staged folder: tracked and untracked-not-ignored files."""
    names = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                           capture_output=True, check=True, cwd=REPO).stdout.split(b"\0")  # fmt: skip
    total = 0
    for name in filter(None, names):
        path = REPO / os.fsdecode(name)
        if path.is_file() and exclude.resolve() not in path.resolve().parents:
            total += path.stat().st_size
    return total


def pick_subset(dirs: list[str], megabytes: float, seed: int) -> list[Path]:
    files = find_images(dirs)
    random.Random(seed).shuffle(files)
    chosen, total = [], 0
    for path in files:
        size = path.stat().st_size
        if total + size > megabytes * 1e6:
            continue
        chosen.append(path)
        total += size
    return chosen


def feature_drift(dequantized: dict[str, torch.Tensor], images: list[Path]) -> None:
    """Relative change of phi_5,4 features and of the VGG54 loss: int8 weights and bf16 autocast vs fp32."""
    from srgan.losses import vgg_loss
    from srgan.vgg_weights import load_vgg19

    exact = load_vgg19(layers=("54",), source="caffe")
    rounded = VGG19Features(layers=("54",), convention="caffe")
    rounded.load_state_dict({k: dequantized[k] for k in rounded.state_dict()})
    rounded.eval()
    feats, losses = {"int8": [], "bf16": []}, {"int8": [], "bf16": []}
    with torch.no_grad():
        for path in images:
            hr = read_image(path)[None, :, :192, :192] * 2 - 1  # [-1, 1] like training HR
            sr = (hr + 0.1 * torch.randn_like(hr)).clamp(-1, 1)  # a stand-in prediction
            ref = exact((hr + 1) / 2)["54"]  # VGG19Features takes [0, 1]
            ref_loss = vgg_loss(sr, hr, exact, layer="54")
            with torch.autocast("cpu", dtype=torch.bfloat16):
                bf = exact((hr + 1) / 2)["54"].float()
                bf_loss = vgg_loss(sr, hr, exact, layer="54").float()
            q = rounded((hr + 1) / 2)["54"]
            q_loss = vgg_loss(sr, hr, rounded, layer="54")
            for name, f, loss in (("int8", q, q_loss), ("bf16", bf, bf_loss)):
                feats[name].append(((f - ref).norm() / ref.norm()).item())
                losses[name].append(abs(loss.item() / ref_loss.item() - 1))
    for name in ("int8", "bf16"):
        print(f"VGG phi_5,4 vs fp32 weights in fp32, {name}: features mean relative error "
              f"{sum(feats[name]) / len(images):.4%}, VGG54 loss mean relative change "
              f"{sum(losses[name]) / len(images):.4%} ({len(images)} images)")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    default_data = os.path.join(os.environ.get("SRGAN_DATA", "../shared/data"), "train", "imagenet1000")
    ap.add_argument("--data", action="append", help=f"training image folder(s) (default {default_data})")
    ap.add_argument(
        "--megabytes",
        type=float,
        help="size budget of the image subset (default: what is left "
        "of --transfer-mib after the git working tree and the VGG file, less 1 MiB)",
    )
    ap.add_argument("--transfer-mib", type=float, default=64.0, help="what may travel in all (default 64)")
    ap.add_argument("--out", default=".stage")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--force", action="store_true", help="replace an existing --out/train")
    args = ap.parse_args(argv)

    out = Path(args.out)
    train_dir = out / "train"
    if train_dir.exists() and any(train_dir.iterdir()) and not args.force:
        print(f"error: {train_dir} is not empty (pass --force to replace it)", file=sys.stderr)
        return 2
    if not weights_path("caffe").is_file():
        print(
            f"error: no VGG19 weights at {weights_path('caffe')}: run `srgan weights vgg19` first",
            file=sys.stderr,
        )
        return 2
    megabytes = args.megabytes
    if megabytes is None:
        left = args.transfer_mib * 2**20 - working_tree_bytes(exclude=out) - VGG_INT8_BYTES - 2**20
        megabytes = left / 1e6
        print(
            f"image budget: {megabytes:.1f} MB (of {args.transfer_mib:g} MiB, after the working tree and VGG)"
        )
    if megabytes <= 0:
        print("error: no room left for training images; pass --megabytes", file=sys.stderr)
        return 2
    chosen = pick_subset(args.data or [default_data], megabytes, args.seed)
    if train_dir.exists():
        shutil.rmtree(train_dir)
    train_dir.mkdir(parents=True)
    for path in chosen:
        shutil.copyfile(path, train_dir / path.name)
    total = sum(p.stat().st_size for p in chosen)
    print(f"{len(chosen)} images, {total / 1e6:.1f} MB -> {train_dir}")

    state = load_file(str(weights_path("caffe")))
    packed = quantize_int8(state)
    meta = {"format": FORMAT + "-int8", "convention": "caffe",
            "source": "int8 per-output-channel rounding of " + str(weights_path("caffe").name)}  # fmt: skip
    save_file(packed, str(out / INT8_NAME), metadata=meta)
    print(f"VGG19 int8: {(out / INT8_NAME).stat().st_size / 1e6:.1f} MB -> {out / INT8_NAME}")
    feature_drift(dequantize_int8(packed), chosen[:8])
    return 0


if __name__ == "__main__":
    sys.exit(main())
