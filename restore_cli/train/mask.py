"""``restore train-mask``: train the scratch/dust U-Net on degrade folders or on the fly.

Loss. Defects cover ~4 % of the pixels and are 1-3 px wide, so plain BCE is dominated by
easy background and learns to under-call thin strokes. ``bce-dice`` adds a soft Dice term
computed over the whole batch (batch-level, so crops without defects do not give 0/0), which
directly rewards overlap on the rare class; ``focal`` (gamma 2) down-weights easy pixels
instead; ``bce`` is the baseline. Measured (online old-photo damage on train400, one seed,
short runs, val F1 at the best threshold): with GroupNorm, 200 steps of 8 x 64 px:
bce-dice 0.267, bce 0.256, focal 0.206; without a norm, 300 steps of 8 x 96 px: bce-dice
0.254, focal 0.178, bce 0.000 (collapsed to "no defect"). Hence ``bce-dice`` by default.

Validation. A fixed set of crops (held-out images, own seed) is scored after every
``eval_every`` steps: the probability threshold is swept over 0.05..0.95 and the one with the
best F1 is kept; IoU/precision/recall are reported at that threshold, pooled over all
validation pixels (micro average, :func:`restore_cli.evaluate.metrics.scores_from_counts`).
The threshold travels in the checkpoint header, so ``MaskDetector.predict`` uses it.

Repair threshold. The best-F1 threshold is not the best one for *repairing*: a false alarm
on real detail costs more PSNR than a missed faint defect (Set12 sigma 25, VAE output: 1.1 %
of the pixels flagged at 0.35 cost 1.7 dB after inpainting). So each validation also inpaints
the validation crops under the mask at every threshold of :data:`REPAIR_THRESHOLDS` and keeps
the one whose result is closest to the clean crop (pooled PSNR) as ``repair_threshold``; the
restore methods inpaint under that mask. With ``--online`` the crops inpainted are the defect
crops *and* as many defect-free crops of the same held-out images (the mixture's global
damage without scratches or dust): most of a real photo, and every Gaussian-noise benchmark
image, has no defect, and a threshold chosen on defect crops alone ignores what false alarms
cost there. Measured with the stage-2 detector on train400's held-out crops (128 px, PSNR
after inpainting, defect / defect-free / pooled): 0.8: 28.70 / 35.14 / 30.82 dB; 0.95: 28.48 /
37.59 / 30.99; 0.99: 27.66 / 43.02 / 30.54 — defect crops alone pick 0.8, both pick 0.95.

Checked on the whole ``auto`` pipeline (network, detector on its output, inpainting of the
network's output; ``scripts/auto_threshold_sweep.py``, the 40 held-out images, 240 samples):
pooled PSNR 25.58 / 25.60 / 25.61 / 25.58 / 25.52 dB at 0.8 / 0.9 / 0.95 / 0.98 / 0.99, 24.88
with nothing inpainted, so 0.95 stands. Binned by the scan's estimated noise the best lies
between 0.8 and 0.98 with no trend (defect samples always want 0.8-0.9, defect-free ones no
inpainting at all), so a noise-dependent threshold would gain nothing; and flagging only where
the detector passes on both the output and the scan (``--rule min``) pooled at 25.60 against
25.61 dB (measured with the second-stage restoration model): not used. (All of this was
measured with the third-stage detector.) Rerun for the shipped six-stage detector and the
GPU-tuned restoration model (2026-11-27, 1.6 min): 25.79 / 25.80 / 25.80 / 25.78 / 25.77 / 25.73
dB at 0.8 / 0.9 / 0.95 / 0.97 / 0.98 / 0.99, 24.91 with nothing inpainted: its own validation's
0.95 stands. (Its last stage trained with seed 1, so it saw ~36 of these 40 images.) With the
restoration model's next GPU stage (2026-11-27 03:30): 25.81 / 25.83 / 25.82 / 25.81 / 25.79 /
25.75 dB at the same thresholds, 24.92 with nothing inpainted.

Distillation (``--distill-views 4 --init CKPT``). Averaging the detector over four flips and
rotations (``restore --mask-views 4``, ``auto``'s default) beats one pass at four times the cost;
this fine-tunes a model toward its own four-view mean (:func:`distill_target`), so that one pass
might do what four do. Measured on this CPU (2026-11-27, from the shipped detector, 160 px crops
of 8, ``--free-share 0.25``, its held-out validation crops, 1 / 4 views): the shipped one scores
val F1 0.636 / 0.647, repair PSNR 31.70 / 32.08 dB. The true-mask loss plus twice the distillation
term (2000 steps at 1.5e-4, 45 min; ``--distill-share 0.67`` up to the loss's scale): 0.638 /
0.648 and 31.70 / 32.13 dB; ``--distill-share 1`` (600 steps at 3e-4, 14 min): 0.633 / 0.643,
31.60 / 32.01 dB. The mean gap between one pass and the shipped model's four-view mean did not
shrink (0.0055 -> 0.0055 / 0.0056): at these budgets one pass does not learn it, and neither run
was kept. At GPU scale (H200, 2026-11-27, ``scripts/gpu_session.sh``, 32 crops of 160 px at 3e-4,
~7 min each): ``--distill-share 0.5`` (10,422 steps) reached 0.645 / 0.653 and 31.81 / 32.15 dB, a
better detector at both view counts but still short of four views with one; ``--distill-share 1``
(11,803 steps) 0.637 / 0.641 and 31.70 / 32.02 dB. The first is the shipped detector's last stage
(``scripts/checkpoints.sh``): earlier GPU fine-tunes on the true masks alone had reached val F1
0.638 at most and lost on Set12; this one gained there too (docs/experiments.md). No run at the
same budget without the term was made, so how much is the term's own share is not known.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from restore_cli.errors import UsageError
from restore_cli.evaluate.metrics import psnr, scores_from_counts
from restore_cli.io import DEFAULT_MAX_PIXELS, display_path
from restore_cli.models.checkpoint import load_model
from restore_cli.models.unet import UNetConfig, build_unet, new_unet, parameter_count
from restore_cli.train import data
from restore_cli.train.loop import FitResult, LoopConfig, RunPaths, count_traces, fit, lineage, make_train_step
from restore_cli.train.prefetch import default_workers
from restore_cli.train.sharding import check_batch_size, data_mesh, replicate, split_batches

log = logging.getLogger("restore.train")
KIND = "mask-unet"
LOSSES = ("bce-dice", "focal", "bce")
THRESHOLDS = np.round(np.arange(0.05, 0.951, 0.05), 2)
REPAIR_THRESHOLDS = (0.35, 0.5, 0.65, 0.8, 0.9, 0.95, 0.97, 0.99)  # one biharmonic solve per flagged crop each

#: The flips/rotations of an NHWC batch of square crops that :func:`distill_target` averages over, in
#: the order of ``restore_cli.restoration.mask_detector.DIHEDRAL`` (each its own inverse).
DISTILL_VIEWS = (
    lambda x: x,
    lambda x: x[:, :, ::-1],
    lambda x: x[:, ::-1],
    lambda x: jnp.swapaxes(x, 1, 2),
)


@dataclasses.dataclass(frozen=True)
class MaskTrainConfig:
    """Everything that shapes a mask training run (stored in the checkpoint header)."""

    arch: UNetConfig = UNetConfig()
    batch: int = 16
    crop: int = 96
    steps: int | None = 4000  # None: set by epochs alone
    epochs: float | None = None  # when set, the run stops at min(steps, epochs * steps_per_epoch)
    lr: float = 2e-3
    warmup: int = 100
    weight_decay: float = 1e-4
    clip: float = 1.0
    loss: str = "bce-dice"
    dice_weight: float = 1.0
    focal_gamma: float = 2.0
    val_fraction: float = 0.1  # of the images, held out
    val_images: int | None = None  # overrides val_fraction
    val_crops: int = 64  # validation samples (crops), cycling over the held-out images
    region: int = 256  # online: side of the region degraded before cropping
    log_every: int = 50
    eval_every: int = 250
    checkpoint_every: int = 250
    seed: int = 0
    init: str | None = None  # start from this mask checkpoint's weights (its architecture wins)
    split_seed: int | None = None  # which images (and crops) validate; None: see resolve_split_seed
    zoom: float = 1.0  # > 1: a share of the samples (train and validation) as scans at up to this
    zoom_prob: float = 0.5  # many times the resolution (data.ZoomedSource); that share
    free_share: float = 0.0  # online: this share of the training crops without any defect (data.MixedSource)
    distill_views: int = 0  # > 0: also learn the --init model's mean over this many flips/rotations (distill_target)
    distill_share: float = 0.5  # of the loss given to that term; the true-mask loss gets the rest
    grain: bool = False  # online: a fourth mixture member, film grain over the defects (online_degrade_config)

    def __post_init__(self) -> None:
        if self.loss not in LOSSES:
            raise UsageError(f"--loss: unknown loss {self.loss!r} (choose from {', '.join(LOSSES)})")
        if self.crop % self.arch.multiple or self.crop < self.arch.multiple:
            raise UsageError(f"--crop {self.crop} must be a positive multiple of {self.arch.multiple}")
        if self.steps is None and self.epochs is None:
            raise UsageError("give --steps or --epochs")
        if self.epochs is not None and self.epochs <= 0:
            raise UsageError("--epochs must be positive")
        for name in ("batch", "steps", "log_every", "eval_every", "checkpoint_every", "val_crops"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise UsageError(f"--{name.replace('_', '-')} must be at least 1")
        if not 1.0 <= self.zoom <= 8.0:
            raise UsageError(f"--zoom must be between 1 (off) and 8, got {self.zoom}")
        if not 0.0 <= self.zoom_prob <= 1.0:
            raise UsageError(f"--zoom-prob must be between 0 and 1, got {self.zoom_prob}")
        if not 0.0 <= self.free_share < 1.0:
            raise UsageError(f"--free-share must be at least 0 and below 1, got {self.free_share}")
        if not 0.0 < self.lr < float("inf"):
            raise UsageError(f"--lr must be positive, got {self.lr}")
        if not 0 <= self.distill_views <= len(DISTILL_VIEWS):
            raise UsageError(f"--distill-views must be 0 (off) to {len(DISTILL_VIEWS)}, got {self.distill_views}")
        if self.distill_views and self.init is None:
            raise UsageError("--distill-views needs --init: the model it starts from is the one it distils")
        if not 0.0 <= self.distill_share <= 1.0:
            raise UsageError(f"--distill-share must be between 0 and 1, got {self.distill_share}")

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["arch"] = self.arch.to_dict()
        return out


#: Training presets. ``tiny`` is for tests and smoke runs (seconds); ``default`` is the shipped model.
MASK_PRESETS: dict[str, MaskTrainConfig] = {
    # Smoke test: `restore train-mask DATA -o m.safetensors --preset tiny`. Not a usable model.
    "tiny": MaskTrainConfig(
        arch=UNetConfig(widths=(4, 8), norm="none"), batch=4, crop=32, steps=30, warmup=5,
        val_crops=8, log_every=5, eval_every=10, checkpoint_every=10,
    ),
    # The shipped detector, 16-32-64-96-128 wide, on the mixture of :func:`online_degrade_config`:
    # scripts/checkpoints.sh replays its eight stages (the eighth, a GPU distillation run, writes
    # checkpoints/mask_unet.safetensors; docs/experiments.md has it). The first four: `restore train-mask --online ../shared/datasets/train400
    # -o stage1.safetensors --steps 3000 --seed 0`, then `... -o stage2.safetensors --init
    # stage1.safetensors --crop 128 --batch 12 --steps 3000 --lr 1e-3 --seed 0`, then `... -o
    # stage3.safetensors --init stage2.safetensors --crop 160 --batch 8 --steps 1500 --lr 5e-4 --seed 0`,
    # then `... -o stage4.safetensors --init stage3.safetensors --crop 192 --batch 6 --steps 4000 --lr 3e-4 --seed 0`.
    # Stage 1: 41.8 min on 2 CPU cores, val F1 0.531 (threshold 0.35), still rising; Set12
    # `scratches` F1 0.45, `old-photo` 0.26 (make bench). Stage 2: 66 min (another training shared
    # the CPU), val F1 0.544 on 128 px crops. Stage 3: 26.7 min, val F1 0.573 on 160 px crops
    # (threshold 0.55, repair threshold 0.95 with the defect-free validation crops). Set12, hybrid
    # at the repair threshold (make bench, 2026-11-26): `scratches` F1 0.54, `old-photo` 0.32.
    # Stage 4: 71 min; on its 192 px validation crops val F1 0.576 -> 0.587, repair PSNR 32.59 ->
    # 32.74 dB (repair threshold 0.97): a plateau, ~+0.01 F1 per hour of CPU. Set12, hybrid (make
    # bench, 2026-11-26 16:27): `scratches` F1 0.55 (34.23 -> 34.82 dB), `old-photo` 0.31 (23.06 dB).
    # The 8-16-32-64-96 model before it: 0.35 / 0.23 (0.40 on `scratches` after 1500 more steps).
    # Stages 5 and 6 on a lent NVIDIA H200 (32 x 160 px crops, ~23 steps/s, 19 Mpx/s): `--steps
    # 10911 --stop-at 9542 --lr 3e-4 --seed 0 --checkpoint-every 1363` (6 min, best val F1 0.623 at
    # step 8178), then `--steps 6000 --stop-at 5251 --lr 1.5e-4 --seed 1 --checkpoint-every 750`
    # (4 min, val F1 0.637, still rising). Set12, hybrid (make bench, 2026-11-27): `scratches` F1
    # 0.59 (35.04 dB), `old-photo` 0.33 (23.13 dB). Stage 7 on the CPU: `--crop 160 --batch 8
    # --steps 2400 --lr 1.5e-4 --seed 6 --free-share 0.25 --checkpoint-every 300` (42 min, val F1
    # 0.636); make bench 2026-11-27 11:21: hybrid `scratches` F1 0.59 (35.08 dB), `old-photo` 0.31
    # (23.12 dB); auto sigma 15 / 25 / 50 +0.19 / +0.14 / +0.05 dB (fewer false alarms).
    "default": MaskTrainConfig(arch=UNetConfig(widths=(16, 32, 64, 96, 128))),
}


def with_widths(arch: UNetConfig, widths: str) -> UNetConfig:
    """``arch`` with the channels per level given as text ('32,64,128'), or a one-line usage error."""
    try:
        values = tuple(int(v) for v in widths.split(","))
    except ValueError:
        raise UsageError(f"--widths: expected comma-separated channel counts such as 32,64,128, got {widths!r}") from None
    try:
        return dataclasses.replace(arch, widths=values)
    except ValueError as exc:
        raise UsageError(f"--widths: {exc}") from None


def online_degrade_config(grain: bool = False) -> tuple:
    """Damage for online training: a mixture, one member drawn per sample (see ``OnlineSource``).

    Every member puts scratches/cracks (1-5) and dust (1-30) in every sample; they differ in what
    lies *over* the defects: nothing (the ``scratches`` preset: a clean scan), Gaussian noise of
    sigma 0..50 (grain must not read as dust: the vae method asks for a mask on noisy photos), or
    the full ``old-photo`` ageing. Trained on the old-photo member alone, the detector never saw a
    clean image and flagged edges on them (Set12 ``scratches`` F1 0.35) and fired on noise above
    its sigma 20 range (hybrid lost 0.5 dB on sigma-25 inputs). ``--free-share`` adds crops with
    none (:class:`restore_cli.train.data.MixedSource`; the shipped detector's last stage).

    ``grain`` (``--grain``) adds a fourth member: film grain of the ``grain`` preset (0.5-3 px,
    coarser than the old-photo member's) over the same defects, and with ``--free-share`` grain
    alone: the shipped detector takes grain clusters for dust on 9 of make bench's 12 grain-only
    images (its ``grain`` table).
    """
    from restore_cli.degrade.config import PRESETS, NoiseConfig

    def with_defects(base):
        return dataclasses.replace(
            base,
            scratches=dataclasses.replace(base.scratches, count_range=(1, 5)),
            dust=dataclasses.replace(base.dust, enabled=True, count_range=(1, 30)),
        )

    clean = with_defects(PRESETS["scratches"])
    noisy = dataclasses.replace(clean, noise=NoiseConfig(prob=1.0, sigma_range=(0.0, 50.0)))
    members = (clean, noisy, with_defects(PRESETS["old-photo"]))
    return (*members, dataclasses.replace(clean, grain=PRESETS["grain"].grain)) if grain else members


def without_defects(mixture: tuple) -> tuple:
    """The same mixture with scratches, cracks and dust switched off: its global damage only."""
    return tuple(dataclasses.replace(member, scratches=dataclasses.replace(member.scratches, kinds=()),
                                     dust=dataclasses.replace(member.dust, enabled=False)) for member in mixture)


def distill_target(teacher: nnx.Module, images: jax.Array, views: int) -> jax.Array:
    """The teacher's defect probability averaged over ``views`` flips/rotations, without gradient.

    Why: averaging the detector over four views at inference (``--mask-views 4``, the default of
    ``auto``) cancels much of its orientation-dependent noise, at four detector passes per image.
    Fine-tuning the model toward its own view average (``--distill-views 4``) asks one pass to
    give what four do.
    """
    stacked = jnp.concatenate([view(images) for view in DISTILL_VIEWS[:views]])
    probs = jnp.split(jax.nn.sigmoid(teacher(stacked)), views)
    mean = sum(view(p) for view, p in zip(DISTILL_VIEWS, probs)) / views
    return jax.lax.stop_gradient(mean)


def mask_loss(config: MaskTrainConfig, teacher: nnx.Module | None = None):
    """``loss_fn(model, batch, step) -> (loss, aux)`` for :func:`make_train_step` and validation.

    With ``teacher`` (and ``config.distill_views``), the loss is ``(1 - s) * true-mask loss + s *``
    the binary cross-entropy toward :func:`distill_target`, ``s = config.distill_share``.
    """

    def loss_fn(model: nnx.Module, batch: dict[str, jax.Array], step: jax.Array):
        logits = model(batch["degraded"])
        target = batch["mask"]
        aux = {}
        share, distill = 0.0, 0.0
        if teacher is not None and config.distill_views:
            soft = distill_target(teacher, batch["degraded"], config.distill_views)
            distill = aux["distill"] = optax.sigmoid_binary_cross_entropy(logits, soft).mean()
            share = config.distill_share
        if config.loss == "focal":
            loss = optax.sigmoid_focal_loss(logits, target, gamma=config.focal_gamma).mean()
        else:
            loss = aux["bce"] = optax.sigmoid_binary_cross_entropy(logits, target).mean()
        if config.loss == "bce-dice":
            prob = jax.nn.sigmoid(logits)
            dice = 1.0 - (2.0 * jnp.sum(prob * target) + 1.0) / (jnp.sum(prob) + jnp.sum(target) + 1.0)
            aux["dice"] = dice
            loss = loss + config.dice_weight * dice
        return (1.0 - share) * loss + share * distill, aux

    return loss_fn


def make_optimizer(model: nnx.Module, config: MaskTrainConfig, total_steps: int) -> nnx.Optimizer:
    """AdamW behind global-norm clipping, linear warm-up then cosine decay to 1 % of ``lr``."""
    warmup = min(config.warmup, max(total_steps - 1, 0))
    schedule = optax.warmup_cosine_decay_schedule(0.0, config.lr, warmup, max(total_steps, warmup + 1), config.lr * 0.01)
    tx = optax.chain(optax.clip_by_global_norm(config.clip), optax.adamw(schedule, weight_decay=config.weight_decay))
    return nnx.Optimizer(model, tx, wrt=nnx.Param)


def scores_at_thresholds(probs: np.ndarray, truth: np.ndarray) -> list[dict]:
    """Pooled mask scores at every threshold of :data:`THRESHOLDS` (sorting once, not per threshold)."""
    pos, neg = np.sort(probs[truth]), np.sort(probs[~truth])
    out = []
    for t in THRESHOLDS:
        tp = len(pos) - np.searchsorted(pos, t, "left")
        fp = len(neg) - np.searchsorted(neg, t, "left")
        out.append({"threshold": float(t), **scores_from_counts(tp, fp, len(pos) - tp)})
    return out


def best_repair_threshold(probs: np.ndarray, val_batches: list[data.Batch]) -> tuple[float, float]:
    """``(threshold, PSNR dB)``: the :data:`REPAIR_THRESHOLDS` entry whose inpainted crops are closest to clean.

    ``probs`` (N, H, W, 1) are the detector's probabilities for the crops of ``val_batches`` in
    order. What gets inpainted is the crop a perfect denoiser would leave, clean except for the
    true defects: noise, blur and fading would otherwise swamp the difference a false alarm
    makes, and the restoration network really does remove most of them before the inpainting.
    The pooled PSNR (one mean squared error over all crops) is reported; ties go to the higher
    threshold (fewer pixels touched).
    """
    from restore_cli.restoration.inpaint import inpaint  # scikit-image's solver, only needed here

    clean = np.concatenate([b["clean"] for b in val_batches])
    defects = np.concatenate([b["mask"] for b in val_batches]) > 0.5
    degraded = np.where(defects, np.concatenate([b["degraded"] for b in val_batches]), clean)
    scores = []
    for t in REPAIR_THRESHOLDS:
        flagged = probs[..., 0] >= t
        repaired = np.stack([inpaint(crop, m) if m.any() else crop for crop, m in zip(degraded, flagged)])
        side, channels = clean.shape[2:]  # the crops stacked into one tall image: one pooled MSE
        pooled = psnr(repaired.reshape(-1, side, channels), clean.reshape(-1, side, channels))
        scores.append((min(pooled, 120.0), t))  # 120 dB: identical crops stay JSON-finite
    best_psnr, threshold = max(scores)
    return float(threshold), float(best_psnr)


def make_evaluator(config: MaskTrainConfig, val_batches: list[data.Batch], free_batches: list[data.Batch] = ()):
    """``evaluate(model) -> {"val_loss", "val_f1", "val_iou", ..., "threshold", "repair_threshold"}``.

    Loss, F1 and the best-F1 threshold come from ``val_batches``; the repair threshold from them
    and the defect-free ``free_batches`` together (see the module docstring).
    """
    loss_fn = mask_loss(config)

    @count_traces
    def forward_traced(model, batch):
        loss, _ = loss_fn(model, batch, jnp.uint32(0))
        return loss, jax.nn.sigmoid(model(batch["degraded"]))

    forward = nnx.jit(forward_traced)

    def evaluate(model: nnx.Module) -> dict[str, float]:
        losses, probs = [], []
        for batch in val_batches:
            loss, prob = forward(model, batch)
            losses.append(float(loss))
            probs.append(np.asarray(prob))
        truth = np.concatenate([b["mask"] for b in val_batches]).ravel() > 0.5
        sweep = scores_at_thresholds(np.concatenate(probs).ravel(), truth)
        best = max(sweep, key=lambda s: (s["f1"], -abs(s["threshold"] - 0.5)))
        free_probs = [np.asarray(forward(model, batch)[1]) for batch in free_batches]
        repair_threshold, repair_psnr = best_repair_threshold(np.concatenate(probs + free_probs),
                                                              [*val_batches, *free_batches])
        return {"val_loss": float(np.mean(losses)), **{f"val_{k}": float(best[k]) for k in ("f1", "iou", "precision", "recall")},
                "threshold": best["threshold"], "val_repair_psnr": repair_psnr, "repair_threshold": repair_threshold}

    evaluate.traced = forward_traced
    return evaluate


def resolve_split_seed(config: MaskTrainConfig, init_header: dict[str, Any] | None) -> MaskTrainConfig:
    """Fix ``split_seed``: the one given, else the ``--init`` checkpoint's, else ``seed``.

    Why inherit it: a fine-tuning stage usually takes a new ``--seed`` for fresh batches, and with
    the split tied to that seed it validated on images the earlier stages had trained on (and on
    other crops), so validation F1 and the repair threshold were neither held out nor comparable
    along the chain: on a lent H200 (2026-11-27) two fine-tuning runs of the shipped detector
    (seed 2, then seed 3 from its result) read 0.673 and 0.638 on their validation, while on
    Set12 the two differ by 0.01 F1. Checkpoints written before the field existed split by their
    ``seed``.
    """
    if config.split_seed is not None:
        return config
    parent = ((init_header or {}).get("training") or {}).get("config") or {}
    inherited = parent.get("split_seed", parent.get("seed"))
    return dataclasses.replace(config, split_seed=config.seed if inherited is None else int(inherited))


def _sources(dataset: Path | None, online: Path | None, config: MaskTrainConfig, max_pixels: int):
    """Train and validation sources, the defect-free validation source (online only, else None)
    and the data description stored in the header."""
    if (dataset is None) == (online is None):
        raise UsageError("give either a DATASET folder (from `restore degrade`) or --online CLEAN_DIR, not both")
    split = resolve_split_seed(config, None).split_seed  # train_mask has resolved it; a direct caller may not
    if online is not None:
        degrade_config = online_degrade_config(config.grain)
        source = data.OnlineSource.from_folder(online, degrade_config, region=config.region, max_pixels=max_pixels)
        train_idx, val_idx = data.split_indices(len(source), config.val_fraction, config.val_images, split)
        train, val = source.subset(train_idx), source.subset(val_idx)
        global_only = without_defects(degrade_config)
        free = val.with_config(global_only)
        described = {"source": "online", "folder": display_path(online),
                     "degrade": [member.to_dict() for member in degrade_config]}
        if config.free_share > 0.0:  # wrapped only when asked: a share of 0 keeps the batches of older runs
            train = data.MixedSource(train, train.with_config(global_only), config.free_share)
            described["free_share"] = config.free_share
    else:
        if config.grain:
            raise UsageError("--grain needs --online: a degrade folder's damage is already drawn")
        if config.free_share > 0.0:
            raise UsageError("--free-share needs --online: a degrade folder has no defect-free versions of its crops")
        source = data.PairSource(dataset, max_pixels=max_pixels)
        if not source.has_defects():
            raise UsageError(f"{display_path(dataset)}: every mask is empty (made with a preset without local "
                             "defects, such as gaussian or grain?): a defect detector has nothing to learn from it")
        train_idx, val_idx = data.split_indices(len(source), config.val_fraction, config.val_images, split)
        train = source.subset([source.names[i] for i in train_idx])
        val = source.subset([source.names[i] for i in val_idx])
        free = None
        described = {"source": "folder", "folder": display_path(dataset)}
    if config.zoom > 1.0:  # validation too: its F1 and repair threshold then cover both scales
        train, val, free = (None if s is None else data.ZoomedSource(s, config.zoom, config.zoom_prob)
                            for s in (train, val, free))
        described["zoom"] = {"max": config.zoom, "prob": config.zoom_prob}
    described.update(images=len(source), train_images=len(train), val_images=len(val),
                     fingerprint=source.fingerprint())
    described["repair_validation"] = "defect and defect-free crops" if free is not None else "defect crops"
    return train, val, free, described


@dataclasses.dataclass
class MaskTrainResult:
    checkpoint: Path
    fit: FitResult
    step_traces: int  # how often the train step was traced (1 = compiled once)
    eval_traces: int


def train_mask(
    dataset: Path | None, checkpoint: Path, config: MaskTrainConfig, *,
    online: Path | None = None, resume: bool = False, max_pixels: int = DEFAULT_MAX_PIXELS,
    data_workers: int | None = None, time_limit_s: float | None = None,
    stop_at: int | None = None,
) -> MaskTrainResult:
    """Train (or ``resume``) a mask U-Net; the best checkpoint (by val F1) is written at ``checkpoint``.

    ``data_workers``: processes drawing batches (None: :func:`default_workers`); the batches, and
    so the model, do not depend on it. ``time_limit_s``: stop cleanly after that long; ``stop_at``:
    at that step of the schedule (see :class:`LoopConfig`); ``resume=True`` continues.
    """
    run_paths = RunPaths(Path(checkpoint))
    run_paths.check(resume, kind=KIND)
    started_from = None
    if config.init is not None:  # fine-tune: the weights (and so the architecture) of an earlier model
        model, init_header = load_model(config.init, KIND, build_unet)
        config = dataclasses.replace(config, arch=UNetConfig.from_dict(init_header["arch"]))
        started_from = lineage(config.init, init_header)
    else:
        model, init_header = new_unet(config.arch, config.seed), None
    config = resolve_split_seed(config, init_header)
    train, val, free, described = _sources(dataset, online, config, max_pixels)
    batches = data.Batches(train, config.batch, config.crop, config.seed)
    by_epochs = None if config.epochs is None else max(1, round(config.epochs * batches.steps_per_epoch))
    steps = min(s for s in (config.steps, by_epochs) if s is not None)
    def validation(source) -> list[data.Batch]:  # the same crops every run: they follow split_seed
        return data.validation_set(source, config.val_crops, config.batch, config.crop, config.split_seed)

    val_batches = validation(val)
    # A frozen copy of the --init weights, in buffers of its own: the train step donates the model's.
    teacher = nnx.clone(model) if config.distill_views else None
    if teacher is not None:
        nnx.update(teacher, jax.tree.map(jnp.copy, nnx.state(teacher)))
    optimizer = make_optimizer(model, config, steps)
    step_fn = make_train_step(mask_loss(config, teacher))
    train_step, mesh = step_fn, data_mesh()  # data-parallel over every device (restore_cli.train.sharding)
    check_batch_size(config.batch, mesh)
    if mesh.devices.size > 1:
        for obj in (model, optimizer) if teacher is None else (model, optimizer, teacher):
            replicate(obj, mesh)
        train_step = split_batches(step_fn, mesh)
    free_batches = [] if free is None else validation(free)
    evaluate = make_evaluator(config, val_batches, free_batches)
    settings = {**config.to_dict(), "steps": steps}
    log.info("mask U-Net: %d parameters, %d steps of %d x %dpx crops, %d train / %d val images, on %d device(s)",
             parameter_count(model), steps, config.batch, config.crop, described["train_images"], described["val_images"],
             mesh.devices.size)

    def header(metrics: dict[str, float]) -> dict[str, Any]:
        return {"kind": KIND, "arch": config.arch.to_dict(), "threshold": metrics.get("threshold", 0.5),
                "repair_threshold": metrics.get("repair_threshold", metrics.get("threshold", 0.5)),
                "training": {"config": settings, "data": described, **({"init": started_from} if started_from else {})}}

    loop = LoopConfig(steps=steps, log_every=config.log_every, eval_every=config.eval_every,
                      checkpoint_every=config.checkpoint_every, best_metric="val_f1", best_mode="max",
                      workers=default_workers() if data_workers is None else data_workers, time_limit_s=time_limit_s,
                      stop_at=stop_at)
    resume_key = {k: v for k, v in settings.items() if k not in ("log_every", "eval_every", "checkpoint_every")}
    resume_key["data"] = described["fingerprint"]
    started = time.perf_counter()
    result = fit(model, optimizer, train_step, batches, loop, run_paths, header=header,
                 evaluate=evaluate, resume_key=resume_key, resume=resume)
    pixels = config.batch * config.crop**2 * result.steps_per_s
    log.info("done: step %d, best val F1 %s at step %s; %.2f steps/s (%.2f Mpx/s) after %.1f s compile; %.0f s",
             result.step, f"{result.best:.4f}" if result.best is not None else "n/a", result.best_step,
             result.steps_per_s, pixels / 1e6, result.compile_s, time.perf_counter() - started)
    log.debug("train step traced %d time(s), eval %d time(s)", step_fn.traced.traces, evaluate.traced.traces)
    return MaskTrainResult(Path(checkpoint), result, step_fn.traced.traces, evaluate.traced.traces)
