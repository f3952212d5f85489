"""train(cfg): one readable, step-based loop for all five variants of the paper.

SRResNet presets update the generator only; SRGAN presets alternate one discriminator update and one
generator update per step (k = 1).
Multi-GPU: launch with `torchrun --nproc_per_node N -m srgan.cli train ...`;
each rank takes its own slice of every batch and DistributedDataParallel averages the gradients.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import os
import random
import re
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP
from torch.utils.data import DataLoader
from tqdm import tqdm

from . import losses
from .checkpoint import check_finite, load_resumable, save_checkpoint, save_generator
from .config import TrainConfig
from .data import StepSampler, TrainCrops
from .device_data import DeviceCrops
from .io import signed_to_unit
from .models import Discriminator, Generator, VGG19Features, make_generator
from .upscale import resolve_device
from .zoo import load_model

log = logging.getLogger(__name__)


class NonFiniteLossError(RuntimeError):
    """A loss became NaN or infinite: the run stopped; the checkpoint on disk is the last finite one."""


def format_losses(metrics: dict[str, torch.Tensor]) -> str:
    return ", ".join(f"{k} {float(v):.4g}" for k, v in metrics.items())


def autocast(device: torch.device, precision: str):
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


def compiled(model: nn.Module | None, mode: str) -> nn.Module | None:
    """torch.compile(model, mode=mode), or model itself for "none" (and None for None)."""
    if model is None or mode == "none":
        return model
    return torch.compile(model, mode=mode)


def unwrap(model: nn.Module) -> nn.Module:
    return model.module if isinstance(model, DDP) else model


def generator_step(
    generator: nn.Module,
    discriminator: nn.Module | None,
    vgg: VGG19Features | None,
    opt_g: torch.optim.Optimizer,
    lr_img: torch.Tensor,
    hr_img: torch.Tensor,
    *,
    content_loss: str,
    adv_weight: float,
    tv_weight: float,
    precision: str,
) -> dict[str, torch.Tensor]:
    """One generator update: content loss (+ adv_weight * -log D(G(LR))) (+ tv_weight * TV).

    Returns the detached losses as 0-d tensors: reading them (`.item()`) waits for the device, so the loop
    does that only on logging steps."""
    opt_g.zero_grad(set_to_none=True)
    with autocast(lr_img.device, precision):
        sr_img = generator(lr_img)
        if content_loss == "mse":
            loss_content = losses.mse_loss(sr_img, hr_img)
        elif content_loss == "mse-y":
            loss_content = losses.mse_y_loss(sr_img, hr_img)
        else:
            loss_content = losses.vgg_loss(sr_img, hr_img, vgg, layer=content_loss[3:])
        loss_g = loss_content
        out = {"g/content": loss_content}
        if discriminator is not None:
            loss_adv = losses.adversarial_loss(discriminator(sr_img))
            loss_g = loss_g + adv_weight * loss_adv
            out["g/adv"] = loss_adv
        if tv_weight > 0:
            loss_tv = losses.tv_loss(sr_img)
            loss_g = loss_g + tv_weight * loss_tv
            out["g/tv"] = loss_tv
    loss_g.backward()
    opt_g.step()
    out["g/total"] = loss_g
    return {k: v.detach() for k, v in out.items()}


def discriminator_step(
    generator: nn.Module,
    discriminator: nn.Module,
    opt_d: torch.optim.Optimizer,
    lr_img: torch.Tensor,
    hr_img: torch.Tensor,
    *,
    precision: str,
) -> dict[str, torch.Tensor]:
    """One discriminator update on a real and a generated batch: -log D(HR) - log(1 - D(G(LR))).

    Real and fake go through D separately, as in the paper (each batch has its own BN statistics).
    """
    opt_d.zero_grad(set_to_none=True)
    with torch.no_grad(), autocast(lr_img.device, precision):
        sr_img = generator(lr_img)
    with autocast(lr_img.device, precision):
        loss_real, loss_fake = losses.discriminator_loss(discriminator(hr_img), discriminator(sr_img))
    (loss_real + loss_fake).backward()
    opt_d.step()
    return {"d/real": loss_real.detach(), "d/fake": loss_fake.detach()}


@torch.no_grad()
def update_ema(ema: nn.Module, model: nn.Module, decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * model for every floating-point weight and buffer (batch-norm
    statistics too, so the average is a network that can run in eval mode); integer buffers are copied."""
    ema_state, state = ema.state_dict(), model.state_dict()
    floats = [k for k, v in ema_state.items() if v.is_floating_point()]
    torch._foreach_lerp_([ema_state[k] for k in floats], [state[k] for k in floats], 1.0 - decay)
    for k, v in ema_state.items():
        if not v.is_floating_point():
            v.copy_(state[k])


def rng_state() -> dict:
    """The RNG states as tensors and plain data (what `torch.load(weights_only=True)` reads back)."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(gauss)],
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    kind, keys, pos, has_gauss, gauss = state["numpy"]  # keys: a tensor, or an ndarray in older checkpoints
    keys = keys.numpy() if isinstance(keys, torch.Tensor) else np.asarray(keys)
    np.random.set_state((kind, keys.astype(np.uint32), pos, has_gauss, gauss))
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def build_vgg(cfg: TrainConfig, device: torch.device) -> VGG19Features | None:
    if cfg.content_loss in ("mse", "mse-y"):
        return None
    layer = cfg.content_loss[3:]
    if cfg.vgg_source == "random":
        log.warning("vgg_source='random': VGG loss with untrained weights (for tests only)")
        return VGG19Features(layers=(layer,)).to(device)
    from .vgg_weights import load_vgg19

    return load_vgg19(layers=(layer,), source=cfg.vgg_source, device=device)


def init_distributed() -> tuple[int, int]:
    """(rank, world_size); initialises the process group when launched by torchrun."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size > 1 and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    return (dist.get_rank(), world_size) if world_size > 1 else (0, 1)


def checkpoint_state(cfg, step, generator, discriminator, opt_g, opt_d, ema=None) -> dict:
    g, d = unwrap(generator), unwrap(discriminator) if discriminator is not None else None
    return {
        "format": "srgan-train-checkpoint",
        "step": step,
        "config": dataclasses.asdict(cfg),
        "generator": g.state_dict(),
        "generator_kwargs": g.kwargs,
        "generator_ema": ema.state_dict() if ema is not None else None,
        "discriminator": d.state_dict() if d is not None else None,
        "discriminator_kwargs": d.kwargs if d is not None else None,
        "opt_g": opt_g.state_dict(),
        "opt_d": opt_d.state_dict() if opt_d is not None else None,
        "rng": rng_state(),
    }


def open_tensorboard(out_dir: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        log.warning("tensorboard is not installed (pip install 'srgan[train]'): no TensorBoard logs")
        return None
    return SummaryWriter(str(out_dir / "tb"))


@dataclasses.dataclass
class Parts:
    """What a run trains and with what: built by `build` from a TrainConfig (train() and bench/ use it)."""

    generator: nn.Module  # Generator, or a Table 2 baseline (cfg.arch)
    discriminator: Discriminator | None
    vgg: VGG19Features | None
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer | None
    ema: nn.Module | None  # the exponential moving average of G (cfg.ema_decay), never trained directly


def build(cfg: TrainConfig, device: torch.device, *, init: bool = True) -> Parts:
    """Models (seeded by cfg.seed; G from cfg.init_from when `init`), the VGG19 of the content loss, the
    memory format, the Adam optimizers and the EMA copy of G, on `device`."""
    torch.manual_seed(cfg.seed)
    if cfg.arch == "srresnet":
        generator = Generator(num_blocks=cfg.num_blocks, channels=cfg.channels, scale=cfg.scale).to(device)
    else:
        generator = make_generator({"arch": cfg.arch, "scale": cfg.scale}).to(device)
    discriminator = None
    if cfg.adversarial:
        discriminator = Discriminator(image_size=cfg.crop_size, channels=cfg.d_channels).to(device)
    if cfg.init_from and init:
        start = load_model(cfg.init_from)
        if start.kwargs != generator.kwargs:
            raise ValueError(
                f"--init-from {cfg.init_from} has generator {start.kwargs}, expected {generator.kwargs}"
            )
        generator.load_state_dict(start.state_dict())
        log.info("generator initialised from %s", cfg.init_from)
    vgg = build_vgg(cfg, device)
    if cfg.channels_last:
        generator = generator.to(memory_format=torch.channels_last)
        if discriminator is not None:
            discriminator = discriminator.to(memory_format=torch.channels_last)
        if vgg is not None:
            vgg = vgg.to(memory_format=torch.channels_last)
    adam = dict(lr=cfg.learning_rate, betas=(cfg.beta1, cfg.beta2), fused=True if cfg.fused_adam else None)
    opt_g = torch.optim.Adam(generator.parameters(), **adam)
    opt_d = torch.optim.Adam(discriminator.parameters(), **adam) if discriminator else None
    ema = copy.deepcopy(generator).eval().requires_grad_(False) if cfg.ema_decay is not None else None
    return Parts(generator, discriminator, vgg, opt_g, opt_d, ema)


def make_batches(cfg: TrainConfig, device: torch.device, start_step: int, *, rank: int = 0,
                 world_size: int = 1):  # fmt: skip
    """(dataset, iterator of (lr_img, hr_img) batches for steps start_step .. cfg.steps - 1): the DataLoader
    path, or the same batches made on the device (cfg.data_on_device)."""
    if cfg.data_on_device:  # the same batches as the DataLoader path, made on the device
        dataset = DeviceCrops(
            cfg.train_dirs, crop_size=cfg.crop_size, scale=cfg.scale, batch_size=cfg.batch_size,
            seed=cfg.seed, degradation=cfg.degradation, flips=cfg.flips, rank=rank, world_size=world_size,
            device=device, exact_crops=cfg.exact_crops,
        )  # fmt: skip
        loader = dataset.batches(start_step, cfg.steps)
    else:
        dataset = TrainCrops(
            cfg.train_dirs, crop_size=cfg.crop_size, scale=cfg.scale, batch_size=cfg.batch_size,
            seed=cfg.seed, degradation=cfg.degradation, flips=cfg.flips, cache_images=cfg.cache_images,
            rank=rank, world_size=world_size,
        )  # fmt: skip
        loader = DataLoader(
            dataset,
            batch_size=cfg.batch_size,
            sampler=StepSampler(start_step, cfg.steps, cfg.batch_size),
            num_workers=cfg.num_workers,
            pin_memory=device.type == "cuda",
            persistent_workers=cfg.num_workers > 0,
        )
    return dataset, loader


def check_inputs(cfg: TrainConfig, *, resume: str | Path | None = None, from_scratch: bool = False) -> None:
    """What the run needs, checked before step 1 (a mistyped --val must not cost the steps up to the first
    validation): FileNotFoundError / ValueError with a one-line message."""
    from .data import check_data_dir, list_pairs

    if not cfg.train_dirs:
        raise ValueError("give at least one --data folder of training images")
    if cfg.adversarial and not cfg.init_from and resume is None and not from_scratch:
        raise ValueError(
            "SRGAN presets start from a trained SRResNet-MSE generator (paper, section 3.2): pass "
            "--init-from CHECKPOINT, or --from-scratch to start from random weights"
        )
    for folder in cfg.train_dirs:
        if not Path(folder).is_dir():
            raise FileNotFoundError(f"training folder not found: {folder}")
    if cfg.val_dir is not None:
        list_pairs(check_data_dir(cfg.val_dir), cfg.scale)


def train(cfg: TrainConfig, *, resume: str | Path | None = None, from_scratch: bool = False) -> Path:
    """Train per `cfg`; returns the path of the final checkpoint (out_dir/last.pt).

    `resume` continues a checkpoint written by this function exactly where it stopped. SRGAN presets need
    `cfg.init_from` (a trained SRResNet, as in the paper) unless `from_scratch`.
    Under torchrun it joins the process group, and destroys it again if it created it (PyTorch asks for
    this before exit; the CLI's torchrun workers also leave with os._exit, see cli.main).
    """
    owns_group = not dist.is_initialized()
    rank, world_size = init_distributed()
    try:
        check_inputs(cfg, resume=resume, from_scratch=from_scratch)
        return _train(cfg, resume, rank, world_size)
    finally:
        if world_size > 1 and owns_group:
            dist.destroy_process_group()


def _train(cfg: TrainConfig, resume: str | Path | None, rank: int, world_size: int) -> Path:
    is_main = rank == 0
    device = resolve_device(cfg.device)
    if device.type == "cuda" and world_size > 1:
        device = torch.device("cuda", torch.cuda.current_device())
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed input sizes: let cuDNN pick its fastest conv kernels
    out_dir = Path(cfg.out_dir)
    if is_main:
        if resume is None and (out_dir / "last.pt").exists():
            raise FileExistsError(
                f"{out_dir / 'last.pt'} exists: pass --resume {out_dir / 'last.pt'} to continue that run, "
                "or choose another --out"
            )

    parts = build(cfg, device, init=resume is None)
    generator, discriminator, vgg = parts.generator, parts.discriminator, parts.vgg
    opt_g, opt_d, ema = parts.opt_g, parts.opt_d, parts.ema
    start_step = restore(parts, resume, device, betas=(cfg.beta1, cfg.beta2)) if resume is not None else 0

    if world_size > 1:
        generator = DDP(generator)
        if discriminator is not None:
            discriminator = DDP(discriminator)

    dataset, loader = make_batches(cfg, device, start_step, rank=rank, world_size=world_size)
    # torch.compile wraps the modules used in the steps; checkpoints still come from the plain modules.
    g_run, d_run = compiled(generator, cfg.compile_mode), compiled(discriminator, cfg.compile_mode)
    d_for_g = d_run  # G's adversarial term: the unwrapped D under DDP (no gradient sync for D there)
    if discriminator is not None and world_size > 1:
        d_for_g = compiled(unwrap(discriminator), cfg.compile_mode)

    writer = None
    if is_main:  # the run folder is made only now, once every input has been read
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "config.json").write_text(json.dumps(dataclasses.asdict(cfg), indent=2) + "\n")
        if cfg.tensorboard:
            writer = open_tensorboard(out_dir)
        log.info("%d training images (%d skipped), %d steps per epoch", len(dataset.files),
                 len(dataset.skipped), dataset.steps_per_epoch)  # fmt: skip
        if writer is not None:
            writer.add_scalar("data/skipped_images", len(dataset.skipped), start_step)

    def save(step: int) -> Path:
        path = out_dir / "last.pt"
        save_checkpoint(path, checkpoint_state(cfg, step, generator, discriminator, opt_g, opt_d, ema))
        return path

    def snapshot(step: int) -> None:
        meta = {"step": str(step), "preset": cfg.preset}
        save_generator(snapshot_path(out_dir, step), unwrap(generator), meta)
        if ema is not None:
            meta["ema_decay"] = str(cfg.ema_decay)
            save_generator(snapshot_path(out_dir, step, ema=True), ema, meta)

    generator.train()
    if discriminator is not None:
        discriminator.train()
    bar = tqdm(total=cfg.steps, initial=start_step, disable=not is_main, desc=cfg.preset, dynamic_ncols=True)
    step, t0 = start_step, time.perf_counter()
    saved_step = start_step if resume is not None else None  # the step of the checkpoint on disk
    bad_step = torch.tensor(-1, device=device)  # the first step whose loss was not finite (-1: none yet)
    for lr_img, hr_img in loader:
        lr_img = lr_img.to(device, non_blocking=True)
        hr_img = hr_img.to(device, non_blocking=True)
        if cfg.channels_last:
            lr_img = lr_img.contiguous(memory_format=torch.channels_last)
            hr_img = hr_img.contiguous(memory_format=torch.channels_last)
        learning_rate = cfg.learning_rate_at(step)
        set_learning_rate(learning_rate, opt_g)
        set_learning_rate(learning_rate * cfg.d_lr_ratio, opt_d)

        metrics = {}
        warmup = step < cfg.d_warmup_steps  # D alone; G, its batch-norm statistics included, stays as it is
        if discriminator is not None:
            g_run.train(not warmup)
            metrics |= discriminator_step(g_run, d_run, opt_d, lr_img, hr_img, precision=cfg.precision)
            g_run.train()
        if not warmup:
            metrics |= generator_step(
                g_run, d_for_g, vgg, opt_g, lr_img, hr_img,
                content_loss=cfg.content_loss, adv_weight=cfg.adv_weight, tv_weight=cfg.tv_weight,
                precision=cfg.precision,
            )  # fmt: skip
            if ema is not None:
                update_ema(ema, unwrap(generator), cfg.ema_decay)
        step += 1
        bar.update(1)
        out_of_time = cfg.max_seconds is not None and time.perf_counter() - t0 >= cfg.max_seconds
        if world_size > 1 and cfg.max_seconds is not None:  # ranks agree, on logging steps (one sync there)
            out_of_time = step % cfg.log_every == 0 and any_rank(out_of_time, device)
        last = step == cfg.steps or out_of_time
        # A non-finite loss stops the run before anything is logged, validated or saved from it. On CPU
        # every step is checked (reading a flag costs nothing there); on a GPU only the steps that log, save
        # or validate (each check waits for the device), which still keeps NaN weights out of checkpoints.
        finite_now = torch.isfinite(torch.stack([v.float() for v in metrics.values()])).all()
        bad_step = torch.where((bad_step < 0) & ~finite_now, step, bad_step)
        everies = (cfg.log_every, cfg.ckpt_every, cfg.val_every, cfg.snapshot_every)
        check = device.type == "cpu" or last or any(every and step % every == 0 for every in everies)
        if check and (any_rank(bool(bad_step >= 0), device) if world_size > 1 else bool(bad_step >= 0)):
            bar.close()
            if writer is not None:
                writer.close()
            kept = f"{out_dir / 'last.pt'} (step {saved_step}) is kept" if saved_step is not None else (
                "no checkpoint was written")  # fmt: skip
            raise NonFiniteLossError(
                f"the loss became NaN or infinite at step {int(bad_step)} ({format_losses(metrics)}): "
                f"training stopped and {kept}; try a lower --learning-rate"
            )

        if is_main and (step % cfg.log_every == 0 or last):
            speed = (step - start_step) / (time.perf_counter() - t0)
            log_step(bar, writer, step, metrics, learning_rate=learning_rate, steps_per_second=speed)
        if is_main and cfg.val_dir and (step % cfg.val_every == 0 or last):
            where = dict(val_dir=cfg.val_dir, scale=cfg.scale, device=device, step=step,
                         batch=(lr_img, hr_img), writer=writer, bar=bar)  # fmt: skip
            validate(unwrap(generator), **where)
            if ema is not None:
                validate(ema, **where, tag="val_ema")
        if is_main and cfg.snapshot_every and (step % cfg.snapshot_every == 0 or last):
            snapshot(step)
        if is_main and (step % cfg.ckpt_every == 0 or last):
            save(step)
            saved_step = step
        if out_of_time:
            log.info("time limit of %.0f s reached at step %d of %d: stopped, checkpoint saved",
                     cfg.max_seconds, step, cfg.steps)  # fmt: skip
            break

    bar.close()
    if writer is not None:
        writer.close()
    if world_size > 1:
        for model in (generator, discriminator):
            if model is not None:
                check_replicas_in_sync(unwrap(model))
        dist.barrier()
    return out_dir / "last.pt"


def snapshot_path(out_dir: str | Path, step: int, *, ema: bool = False) -> Path:
    """Where `--snapshot-every` writes the generator (or its EMA) of `step`: OUT/snapshots/stepN[_ema]."""
    return Path(out_dir) / "snapshots" / f"step{step:07d}{'_ema' if ema else ''}.safetensors"


def list_snapshots(out_dir: str | Path, *, ema: bool = False) -> list[tuple[int, Path]]:
    """(step, path) of a run's generator snapshots (or its EMA's), in step order."""
    found = []
    for path in Path(out_dir, "snapshots").glob("step*.safetensors"):
        m = re.fullmatch(r"step(\d+)(_ema)?\.safetensors", path.name)
        if m and bool(m.group(2)) == ema:
            found.append((int(m.group(1)), path))
    return sorted(found)


def restore(parts: Parts, resume: str | Path, device: torch.device, *, betas: tuple[float, float]) -> int:
    """Load a resume checkpoint (`load_resumable`) into `parts` (models, optimizers, EMA) and the RNGs;
    returns its step. Adam's `betas` are the (possibly changed) config's. Weights that hold NaN or infinity
    are refused."""
    ckpt = load_resumable(resume, map_location=device)
    for key in ("generator", "generator_ema"):
        if ckpt.get(key) is not None:
            check_finite(ckpt[key], f"{resume} ({key})")
    parts.generator.load_state_dict(ckpt["generator"])
    parts.opt_g.load_state_dict(ckpt["opt_g"])
    if parts.discriminator is not None:
        if ckpt.get("discriminator") is None:
            raise ValueError(f"{resume} has no discriminator: it is not an SRGAN checkpoint")
        parts.discriminator.load_state_dict(ckpt["discriminator"])
        parts.opt_d.load_state_dict(ckpt["opt_d"])
    if parts.ema is not None:  # the checkpoint's average, or (EMA switched on now) the resumed weights
        parts.ema.load_state_dict(ckpt.get("generator_ema") or parts.generator.state_dict())
    for opt in (parts.opt_g, parts.opt_d):
        for group in opt.param_groups if opt is not None else ():
            group["betas"] = betas
    set_rng_state(ckpt["rng"])
    log.info("resumed from %s at step %d", resume, ckpt["step"])
    return ckpt["step"]


def set_learning_rate(learning_rate: float, *optimizers: torch.optim.Optimizer | None) -> None:
    for opt in optimizers:
        if opt is not None:
            for group in opt.param_groups:
                group["lr"] = learning_rate


def log_step(bar, writer, step: int, metrics: dict[str, torch.Tensor], **scalars: float) -> None:
    """The losses of a logging step on the progress bar and in TensorBoard (with `scalars`, e.g. the rate)."""
    values = {k: v.item() for k, v in metrics.items()}
    bar.set_postfix({k.split("/")[-1] if k != "g/total" else "g": f"{v:.4g}" for k, v in values.items()})
    if writer is not None:
        for key, value in {**values, **scalars}.items():
            writer.add_scalar(key, value, step)


def any_rank(flag: bool, device: torch.device) -> bool:
    """True on every rank when `flag` is True on any rank (a collective: all ranks must call it)."""
    t = torch.tensor([float(flag)], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def check_replicas_in_sync(model: nn.Module) -> None:
    """Under DDP every rank must hold the same weights; raise if their checksums differ."""
    total = torch.stack([p.detach().double().sum() for p in model.parameters()]).sum().reshape(1)
    lo, hi = total.clone(), total.clone()
    dist.all_reduce(lo, op=dist.ReduceOp.MIN)
    dist.all_reduce(hi, op=dist.ReduceOp.MAX)
    if lo.item() != hi.item():
        raise RuntimeError(f"DDP replicas diverged: weight checksums range {lo.item()} .. {hi.item()}")


@torch.no_grad()
def validate(
    generator: nn.Module,
    *,
    val_dir: str,
    scale: int,
    device: torch.device,
    step: int,
    batch: tuple[torch.Tensor, torch.Tensor],
    writer=None,
    bar: tqdm | None = None,
    tag: str = "val",
) -> float:
    """Validation PSNR (Y, 4-px border) on `val_dir`, printed and logged under `tag`; with a TensorBoard
    `writer`, LR | SR | HR samples of the training `batch` (lr_img, hr_img). Returns the PSNR."""
    from .evaluate import evaluate

    was_training = generator.training
    generator.eval()
    result = evaluate(generator, val_dir, scale=scale, device=device, progress=False)
    what = "val PSNR" if tag == "val" else "EMA val PSNR"
    (bar.write if bar is not None else print)(
        f"step {step}: {what} {result['psnr']:.2f} dB, SSIM {result['ssim']:.4f} on {val_dir}"
    )
    if writer is not None:
        writer.add_scalar(f"{tag}/psnr", result["psnr"], step)
        writer.add_scalar(f"{tag}/ssim", result["ssim"], step)
        lr_img, hr_img = batch
        n = min(4, lr_img.shape[0])
        sr = signed_to_unit(generator(lr_img[:n].float()).float())
        up = torch.nn.functional.interpolate(lr_img[:n].float(), scale_factor=scale, mode="nearest")
        grid = torch.cat(
            [up, sr.clamp(0, 1), signed_to_unit(hr_img[:n].float())], dim=3
        )  # LR | SR | HR side by side
        writer.add_images("samples/lr_sr_hr" if tag == "val" else f"samples/{tag}_lr_sr_hr", grid.cpu(), step)
    generator.train(was_training)
    return result["psnr"]
