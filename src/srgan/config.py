"""Training configuration: one typed dataclass, and the paper's five variants as presets (section 3.2).

CLI flags -> dataclasses.replace(PRESETS[name], **flags) -> __post_init__ validates -> train(cfg).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

CONTENT_LOSSES = ("mse", "mse-y", "vgg22", "vgg54")  # mse-y: MSE on the Y channel (the luma baselines)
ARCHS = ("srresnet", "srcnn", "espcn")  # srgan.models.ARCHS: the generator network
TRAIN_PRECISIONS = ("fp32", "bf16")
DEGRADATIONS = ("bicubic", "gaussian")
VGG_SOURCES = ("caffe", "torchvision", "random")
COMPILE_MODES = ("none", "default", "reduce-overhead", "max-autotune")
LR_SCHEDULES = ("step", "cosine")


@dataclass(frozen=True)
class TrainConfig:
    preset: str = "srresnet-mse"
    arch: str = "srresnet"  # the generator: the paper's SRResNet, or a Table 2 baseline (srcnn | espcn)
    # losses (section 2.2)
    content_loss: str = "mse"  # mse | vgg22 | vgg54
    adversarial: bool = False  # add 1e-3 * -log D(G(LR)) and train the discriminator (k = 1)
    adv_weight: float = 1e-3
    d_warmup_steps: int = 0  # the first N steps train D alone (G fixed): G's first D gradients inform
    d_lr_ratio: float = 1.0  # D's learning rate / G's (the paper: 1, both 1e-4)
    tv_weight: float = 0.0  # 2e-8 for SRResNet-VGG22
    vgg_source: str = "caffe"  # the paper's Oxford/Caffe weights; "random" only for tests
    # optimisation (section 3.2)
    steps: int = 1_000_000
    learning_rate: float = 1e-4
    lr_decay_step: int | None = None  # learning rate x0.1 from this step on (SRGAN: 1e5)
    lr_schedule: str = "step"  # step: the paper's (x0.1 at lr_decay_step) | cosine: to 0 at `steps`
    beta1: float = 0.9
    beta2: float = 0.999
    batch_size: int = 16
    init_from: str | None = None  # generator weights to start from (SRGAN: an SRResNet-MSE checkpoint)
    # data
    train_dirs: tuple[str, ...] = ()
    crop_size: int = 96  # HR crop; LR is crop_size / scale
    scale: int = 4
    degradation: str = "bicubic"  # bicubic (MATLAB imresize) | gaussian (blur + subsample)
    flips: bool = False  # the paper uses no augmentation
    num_workers: int = 0
    cache_images: bool = True  # keep decoded training images in memory
    data_on_device: bool = False  # decode once, keep uint8 pixels on the device, make batches there
    exact_crops: bool = True  # on-device data: the DataLoader path's crops (False: drawn on the device)
    # models (the paper's defaults; smaller for tests)
    num_blocks: int = 16
    channels: int = 64
    d_channels: int = 64
    # run
    out_dir: str = "runs/srresnet-mse"
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    precision: str = "fp32"  # fp32 | bf16 (autocast)
    channels_last: bool = False
    fused_adam: bool = False  # torch's fused Adam kernel (CUDA and CPU); same update up to float rounding
    compile_mode: str = "none"  # none | default | reduce-overhead (CUDA graphs) | max-autotune: torch.compile
    log_every: int = 10
    ckpt_every: int = 1000
    val_dir: str | None = None  # a folder with HR/ (and LR_x4/) for periodic validation PSNR
    val_every: int = 1000
    tensorboard: bool = True
    max_seconds: float | None = None  # stop (and save) after this many seconds of training: fixed time slots
    ema_decay: float | None = None  # keep an exponential moving average of G's weights (e.g. 0.999); exported
    snapshot_every: int | None = None  # also write G (and its EMA) as out_dir/snapshots/stepN*.safetensors

    def __post_init__(self):
        def bad(name: str, why: str):
            raise ValueError(f"TrainConfig.{name} = {getattr(self, name)!r}: {why}")

        for f in dataclasses.fields(self):  # a mistyped or hostile value must not reach the loop
            value = getattr(self, f.name)
            if isinstance(value, float) and not math.isfinite(value):
                bad(f.name, "must be a finite number")
            if f.type in ("int", "int | None") and value is not None and (
                isinstance(value, bool) or not isinstance(value, int)
            ):
                bad(f.name, "must be an integer")
        if self.content_loss not in CONTENT_LOSSES:
            bad("content_loss", f"must be one of {CONTENT_LOSSES}")
        if self.arch not in ARCHS:
            bad("arch", f"must be one of {ARCHS}")
        if self.arch != "srresnet" and (self.adversarial or self.content_loss != "mse-y"):
            bad("arch", "the luma baselines (srcnn, espcn) train with content_loss='mse-y' and no adversary")
        if self.content_loss == "mse-y" and self.arch == "srresnet":
            bad("content_loss", "mse-y is the luma baselines' loss; SRResNet trains on RGB ('mse')")
        if self.precision not in TRAIN_PRECISIONS:
            bad("precision", f"must be one of {TRAIN_PRECISIONS}")
        if self.degradation not in DEGRADATIONS:
            bad("degradation", f"must be one of {DEGRADATIONS}")
        if self.vgg_source not in VGG_SOURCES:
            bad("vgg_source", f"must be one of {VGG_SOURCES}")
        if self.compile_mode not in COMPILE_MODES:
            bad("compile_mode", f"must be one of {COMPILE_MODES}")
        for name in ("steps", "batch_size", "num_blocks", "channels", "d_channels", "log_every", "ckpt_every",
                     "val_every"):  # fmt: skip
            if getattr(self, name) < 1:
                bad(name, "must be a positive integer")
        if self.num_workers < 0:
            bad("num_workers", "must be >= 0")
        if not 0 < self.learning_rate <= 1:
            bad("learning_rate", "must be in (0, 1] (the paper: 1e-4)")
        if not (0 <= self.beta1 < 1 and 0 <= self.beta2 < 1):
            bad("beta1", "beta1 and beta2 must be in [0, 1)")
        if self.scale not in (2, 4, 8):
            bad("scale", "must be 2, 4 or 8")
        if self.crop_size % self.scale:
            bad("crop_size", f"must be a multiple of the scale {self.scale}")
        if self.adversarial and self.crop_size % 16:
            bad("crop_size", "must be a multiple of 16 for the discriminator")
        if self.lr_decay_step is not None and self.lr_decay_step < 1:
            bad("lr_decay_step", "must be a positive step or None")
        if self.lr_schedule not in LR_SCHEDULES:
            bad("lr_schedule", f"must be one of {LR_SCHEDULES}")
        if self.lr_schedule == "cosine" and self.lr_decay_step is not None:
            bad("lr_decay_step", "is the step schedule's; the cosine schedule decays over `steps`")
        if self.max_seconds is not None and not self.max_seconds > 0:
            bad("max_seconds", "must be positive or None")
        if self.ema_decay is not None and not 0 < self.ema_decay < 1:
            bad("ema_decay", "must be in (0, 1) or None")
        if self.snapshot_every is not None and self.snapshot_every < 1:
            bad("snapshot_every", "must be a positive number of steps or None")
        if self.d_warmup_steps < 0:
            bad("d_warmup_steps", "must be >= 0")
        if not 0 < self.d_lr_ratio <= 100:
            bad("d_lr_ratio", "must be in (0, 100]")
        if (self.d_warmup_steps or self.d_lr_ratio != 1.0) and not self.adversarial:
            bad("d_warmup_steps" if self.d_warmup_steps else "d_lr_ratio", "needs an SRGAN preset")
        if self.adv_weight < 0 or self.tv_weight < 0:
            bad("adv_weight" if self.adv_weight < 0 else "tv_weight", "must be >= 0")

    def learning_rate_at(self, step: int) -> float:
        if self.lr_schedule == "cosine":  # half a cosine from learning_rate at step 0 to 0 at `steps`
            return self.learning_rate * 0.5 * (1 + math.cos(math.pi * min(step, self.steps) / self.steps))
        if self.lr_decay_step is not None and step >= self.lr_decay_step:
            return self.learning_rate * 0.1
        return self.learning_rate


_SRRESNET = dict(steps=1_000_000, learning_rate=1e-4, adversarial=False)
_SRGAN = dict(steps=200_000, learning_rate=1e-4, lr_decay_step=100_000, adversarial=True)

PRESETS: dict[str, TrainConfig] = {
    "srresnet-mse": TrainConfig(preset="srresnet-mse", content_loss="mse", **_SRRESNET),
    "srresnet-vgg22": TrainConfig(preset="srresnet-vgg22", content_loss="vgg22", tv_weight=2e-8, **_SRRESNET),
    "srgan-mse": TrainConfig(preset="srgan-mse", content_loss="mse", **_SRGAN),
    "srgan-vgg22": TrainConfig(preset="srgan-vgg22", content_loss="vgg22", **_SRGAN),
    "srgan-vgg54": TrainConfig(preset="srgan-vgg54", content_loss="vgg54", **_SRGAN),
    # The paper's Table 2 baselines, on the same data and degradation (docs/baselines.md): Adam in place of
    # the papers' SGD (SRCNN: per-layer rates 1e-4 / 1e-5; ESPCN: 1e-2 falling to 1e-4), rate x0.1 at the end.
    "srcnn": TrainConfig(preset="srcnn", arch="srcnn", content_loss="mse-y", steps=10_000, learning_rate=2e-4,
                         lr_decay_step=8_500),
    "espcn": TrainConfig(preset="espcn", arch="espcn", content_loss="mse-y", steps=12_000, batch_size=64,
                         learning_rate=1e-3, lr_decay_step=10_000),
}


# The shipped names of two variants (srgan.zoo.SHIPPED) name their presets too.
PRESET_ALIASES = {"srresnet": "srresnet-mse", "srgan": "srgan-vgg54"}


def make_config(preset: str, **overrides) -> TrainConfig:
    """PRESETS[preset] (or a PRESET_ALIASES name) with the given fields replaced (validated); unknown
    presets/fields raise."""
    preset = PRESET_ALIASES.get(preset, preset)
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = set(overrides) - names
    if unknown:
        raise ValueError(f"unknown TrainConfig field(s): {', '.join(sorted(unknown))}")
    if "out_dir" not in overrides:
        overrides["out_dir"] = f"runs/{preset}"
    return dataclasses.replace(PRESETS[preset], **overrides)


def config_from_dict(values: dict) -> TrainConfig:
    """Rebuild a TrainConfig saved with dataclasses.asdict (a checkpoint's "config"); validated again."""
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = set(values) - names
    if unknown:
        raise ValueError(f"unknown TrainConfig field(s) in saved config: {', '.join(sorted(unknown))}")
    return TrainConfig(**{**values, "train_dirs": tuple(values.get("train_dirs", ()))})
