"""``train-vae`` settings: one frozen dataclass, three presets, validated command-line overrides.

A preset is a function of the architecture (the original used different batch sizes and epoch
counts per model); its docstring records the command it is meant for and the result it
reached, "not yet measured" until someone measured it. Everything in a run's config is stored
in the checkpoint header (``training.config``), so a result can always be traced to its settings.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from restore_cli.errors import UsageError
from restore_cli.models.translation import TranslationConfig
from restore_cli.models.vae import ARCHS, VAEConfig
from restore_cli.train.schedules import BETA_SHAPES, OPTIMIZERS

ALL_ARCHS = (*ARCHS, "translation")


@dataclasses.dataclass(frozen=True)
class VAETrainConfig:
    """Every setting of a ``train-vae`` run (model shape, data, optimisation, losses)."""

    preset: str
    arch: str = "translation"
    crop: int = 64  # training crop side (the fixed input size of a vector-latent model)
    batch: int = 16
    epochs: int | None = None  # None: use ``steps``
    steps: int | None = 4000
    lr: float = 2e-3
    lr_decay: str = "cosine"  # "cosine" (with warm-up) or "constant"
    warmup_steps: int = 100
    clip_norm: float | None = 1.0
    optimizer: str = "adam"
    beta_schedule: str = "cosine"
    beta_start: float = 1e-6
    beta_max: float = 1e-4
    anneal_epochs: float = 2.0
    domain_weights: tuple[float, float, float] = (1.0, 1.0, 1.0)  # X, Y, Z loss weights
    # family (simple / unet / resblock)
    latent: str = "spatial"
    widths: tuple[int, ...] = (32, 64, 128)
    latent_dim: int = 256
    latent_channels: int = 64
    cross_weight: float = 1.0
    recon: str = "l1"
    # translation
    width: int = 64
    down: int = 4
    enc_blocks: int = 2
    dec_blocks: int = 2
    map_blocks: int = 4
    align_weight: float = 1.0
    map_weight: float = 1.0
    ssim_weight: float = 0.0
    e2e_from: float = 0.0  # fraction of the run trained Wan-style (VAEs + mapping) before end-to-end
    residual: bool = False  # translation: predict clean = degraded + decoder output (needs e2e_from 0)
    remat: bool = False
    # data
    # online damage: a degrade preset, or "defects" (old-photo local defects only); "a+b" draws one per sample
    degrade: str = "defects"
    mask_input: bool = True  # False: the network's mask channel stays empty (it must find defects itself)
    init: str | None = None  # start from this train-vae checkpoint's weights (its architecture wins)
    noise_sigma: tuple[float, float] = (0.0, 50.0)  # blind noise level range (0..255 units), prob 1
    val_sigma: float = 25.0
    eval_every: int = 250
    checkpoint_every: int = 250

    def __post_init__(self) -> None:
        object.__setattr__(self, "widths", tuple(int(w) for w in self.widths))
        object.__setattr__(self, "domain_weights", tuple(float(w) for w in self.domain_weights))
        object.__setattr__(self, "noise_sigma", tuple(float(s) for s in self.noise_sigma))
        checks = [
            (self.arch in ALL_ARCHS, f"--arch must be one of {', '.join(ALL_ARCHS)}"),
            (self.optimizer in OPTIMIZERS, f"--optimizer must be one of {', '.join(OPTIMIZERS)}"),
            (self.beta_schedule in BETA_SHAPES, f"--beta-schedule must be one of {', '.join(BETA_SHAPES)}"),
            (self.batch >= 1 and self.crop >= 8, "--batch must be >= 1 and --crop >= 8"),
            (self.epochs is None or self.epochs >= 1, "--epochs must be >= 1"),
            (self.steps is None or self.steps >= 1, "--steps must be >= 1"),
            (self.epochs is not None or self.steps is not None, "give --epochs or --steps"),
            (min(self.domain_weights) >= 0 and sum(self.domain_weights) > 0,
             "--domain-weight values must be >= 0 and not all zero"),
            (0.0 <= self.e2e_from <= 1.0, "e2e_from must be within 0..1"),
            (not self.residual or (self.arch == "translation" and self.e2e_from == 0.0),
             "a residual output needs --arch translation trained end to end from the start (e2e_from 0): "
             "in the staged phase decode_X must also reconstruct clean images on its own"),
            (not (self.arch == "translation" and self.latent == "vector"),
             "the translation model has spatial latents only (use --arch simple|unet|resblock with --preset cr6)"),
        ]
        for ok, message in checks:
            if not ok:
                raise UsageError(message)
        multiple = self.down if self.arch == "translation" else 2 ** len(self.widths)
        if self.crop % multiple:
            raise UsageError(f"--crop {self.crop} must be a multiple of {multiple} for --arch {self.arch}")

    def model_config(self) -> VAEConfig | TranslationConfig:
        if self.arch == "translation":
            return TranslationConfig(width=self.width, latent_channels=self.latent_channels, down=self.down,
                                     enc_blocks=self.enc_blocks, dec_blocks=self.dec_blocks,
                                     map_blocks=self.map_blocks, residual=self.residual, remat=self.remat)
        return VAEConfig(arch=self.arch, image_size=self.crop, widths=self.widths, latent=self.latent,
                         latent_dim=self.latent_dim, latent_channels=self.latent_channels, remat=self.remat)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def cr6(arch: str) -> VAETrainConfig:
    """The original project's values ("cr6"): vector latent 256, β 0.001 -> 1 raised every ANNEAL_EPOCH epochs.

    simple/unet: batch 32, 10 epochs, β raised every 2 epochs; resblock: batch 16 (its
    activations are 2x larger), 30 epochs, every 3 epochs. Adam at a constant 1e-6, MSE
    reconstruction, 256x256 inputs, no cross-domain term: a faithful reproduction, not a restorer.
    Command: ``restore train-vae --clean train400 --real old_photos --arch simple --preset cr6 -o cr6.safetensors``.
    Results (``make cr6``, 2-core CPU, Set12 sigma 25; the original reported 11.77 dB / SSIM 0.30):
    ``simple`` 13.37 dB / SSIM 0.38 after all 120 steps (1.4 h, ~28 s per step); ``unet`` 13.36 /
    0.28 after all 120 (1.6 h, ~45 s per step); ``resblock`` 13.12 / 0.15 after 280 of its 690
    steps (2026-11-28: 1.6 h, ~20 s per step; the rest is a GPU job or ~2.5 h more here).
    """
    if arch not in ARCHS:
        raise UsageError(f"--preset cr6 reproduces the original family: use --arch {'|'.join(ARCHS)}")
    big = arch == "resblock"
    return VAETrainConfig(
        preset="cr6", arch=arch, crop=256, batch=16 if big else 32, epochs=30 if big else 10, steps=None,
        lr=1e-6, lr_decay="constant", warmup_steps=0, clip_norm=None, optimizer="adam",
        beta_schedule="linear-step", beta_start=0.001, beta_max=1.0, anneal_epochs=3 if big else 2,
        latent="vector", latent_dim=256, cross_weight=0.0, recon="mse", remat=big,
        eval_every=100, checkpoint_every=100,
    )


def default(arch: str) -> VAETrainConfig:
    """The restoration config: spatial latents, old-photo defects + blind noise (σ 0..50), warm-up + cosine lr.

    translation (recommended): 1/2-resolution latents (pixel-unshuffle x2), 64 channels, a residual
    output (restored = degraded + decode_X(...): it starts at the input's PSNR instead of at black),
    trained end to end, peak lr 1e-3. ``--e2e-from 0.25`` runs Wan et al.'s staged VAEs + mapping
    first (not residual then): it was 0.4 dB behind at 600 steps. Family archs: 1/8-resolution
    latents with the paired cross term.
    Command: ``restore train-vae --clean train400 --real old_photos --val set12 -o vae.safetensors --steps 2500``.
    Results (Set12 σ 25, input 20.2 dB): the previous 1/4-resolution, non-residual version reached
    27.51 dB at 1500 steps (12.5 min); this one (2500 steps, seed 0, 2.0 h on 2 CPU cores
    niced beside the mask run for its first 40 min): 27.05 / 27.98 / 28.80 / 29.20 / 29.25 dB at
    250 / 500 / 1250 / 2000 / 2500 steps (SSIM 0.837).
    Since 2026-11-27 the shipped model is a smaller one trained on a lent H200 (``--width 40
    --map-blocks 2 --crop 128 --batch 16``: 11107 steps at peak 1e-3, then 9667 at 3e-4, 5 min
    each: 29.81 dB at a third of the FLOPs). What follows is the 64-wide model that shipped before
    and that ``make checkpoints`` still trains where no GPU is found (its first three stages) ---
    this one fine-tuned four times more with larger crops (scripts/checkpoints.sh):
    29.40 dB (1500 steps of 8 x 96 px), then 29.43 dB (1500 steps of 4 x 128 px, best at 1000),
    then on a lent NVIDIA H200 29.69 dB (5636 steps of 16 x 128 px, seed 3, 4 min; make bench
    2026-11-27, auto: sigma 15/25/50 31.07/29.14/26.29 dB, -0.07/+0.04/+0.24 dB with the new detector)
    and 29.83 dB (7677 more, seed 4, 4 min; auto 31.15/29.22/26.41 dB, make bench 2026-11-27 03:38).
    """
    if arch == "translation":
        return VAETrainConfig(preset="default", arch=arch, crop=64, down=2, residual=True, lr=1e-3)
    return VAETrainConfig(preset="default", arch=arch, crop=64)


def tiny(arch: str) -> VAETrainConfig:
    """A seconds-long smoke-test model (tests, CI): 32x32 crops, 8-16 channels, 20 steps.

    Command: ``restore train-vae --clean DIR --preset tiny -o tiny.safetensors``. Result: not a restorer.
    """
    return VAETrainConfig(
        preset="tiny", arch=arch, crop=32, batch=4, steps=20, lr=2e-3, warmup_steps=2, widths=(8, 16, 16),
        latent_dim=16, latent_channels=8, width=16, enc_blocks=1, dec_blocks=1, map_blocks=1,
        eval_every=10, checkpoint_every=10,
    )


PRESETS = {"cr6": cr6, "default": default, "tiny": tiny}
#: Settings that size the translation model from the command line (``--width``, ``--map-blocks``): a
#: smaller, faster restorer is issue 5's route to 0.5 s per 512x512 image (scripts/gpu_session.sh, vae_small).
TRANSLATION_SHAPE = frozenset({"width", "map_blocks"})


def resolve(preset: str, arch: str | None, **overrides: Any) -> VAETrainConfig:
    """The preset for ``arch`` with every override that is not None applied (and validated)."""
    if preset not in PRESETS:
        raise UsageError(f"--preset: unknown preset {preset!r} (choose from {', '.join(PRESETS)})")
    base = PRESETS[preset](arch or ("simple" if preset == "cr6" else "translation"))
    changes = {k: v for k, v in overrides.items() if v is not None}
    unknown = set(changes) - {f.name for f in dataclasses.fields(VAETrainConfig)}
    if unknown:
        raise UsageError(f"unknown train-vae settings {sorted(unknown)}")
    if "epochs" in changes and "steps" not in changes:
        changes["steps"] = None  # --epochs alone replaces the preset's step count
    sizing = " and ".join(sorted(f"--{k.replace('_', '-')}" for k in changes.keys() & TRANSLATION_SHAPE))
    if sizing and base.arch != "translation":
        raise UsageError(f"{sizing}: they size the translation model; --arch {base.arch} has --preset values")
    if sizing and changes.get("init") is not None:
        raise UsageError(f"{sizing}: a fine-tune keeps the --init checkpoint's architecture; leave one out")
    return dataclasses.replace(base, **changes)
