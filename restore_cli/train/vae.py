"""``restore train-vae``: train the VAE family or the translation model with the shared training loop.

Data: a ``restore degrade`` folder (Y = degraded/, X = clean/, masks/), or ``--clean DIR`` with
fresh degradations every batch (the ``degrade`` preset of the config plus Gaussian noise of a
σ drawn uniformly in ``noise_sigma``, every sample: one model for any noise level). ``--real DIR``
adds Z, unpaired random crops of real old photos (luminance). Everything per batch is a pure
function of (seed, step), so ``--resume`` continues exactly.

Validation each ``eval_every`` steps is PSNR/SSIM of the *restoration path* (what ``--method
vae`` runs, through the same tiled inference): on ``--val DIR`` (clean images, AWGN of
``val_sigma`` with a fixed seed, whole images: the denoising benchmark), else on held-out
crops of the training data. The best ``val_psnr`` is kept (loop.py).

Everything else — progress on stderr, metrics JSONL (one row per epoch when an epoch is at most
200 steps, else every 50 steps), curves PNG, checkpoints, ``--resume``, NaN guard — is
:func:`restore_cli.train.loop.fit`; :class:`StepRecorder` adds every step's values (recon, KL,
total) in ``NAME.steps.jsonl``.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np
from flax import nnx

from restore_cli.errors import UsageError
from restore_cli.evaluate.metrics import SSIM_WIN_SIZE, psnr, ssim
from restore_cli.io import DEFAULT_MAX_PIXELS, display_path, list_images, read_image, usable_images
from restore_cli.models.vae import KIND, build_model, load_vae
from restore_cli.models.vae_blocks import parameter_count
from restore_cli.restoration.vae_method import VAERestorer
from restore_cli.train import data
from restore_cli.train.loop import LoopConfig, RunPaths, fit, lineage
from restore_cli.train.prefetch import default_workers
from restore_cli.train.schedules import beta_schedule, lr_schedule, make_optimizer
from restore_cli.train.sharding import check_batch_size, data_mesh, replicate
from restore_cli.train.vae_config import VAETrainConfig
from restore_cli.train.vae_steps import LossConfig, make_step

log = logging.getLogger("restore.train")
_REAL_STREAM, _VAL_NOISE_STREAM = 0x2EA1, 0x7A1


def online_degrade_config(cfg: VAETrainConfig):
    """The config's degrade preset with Gaussian noise always on, σ uniform in ``noise_sigma``.

    ``degrade="defects"`` keeps only the old-photo preset's *local* defects (scratches, cracks,
    dust: what the mask marks) and turns its other global effects (fading, blur, JPEG, ...) off,
    so the model learns exactly "inpaint the mask + blind denoising". ``"defects+old-photo"``
    is a mixture (a tuple; ``OnlineSource`` draws one member per sample), so one model learns
    both the plain-noise case and the full ageing (fading, blur, grain, JPEG) of real prints.
    """
    from restore_cli.degrade.config import GLOBAL_EFFECTS, PRESETS

    members = []
    for name in cfg.degrade.split("+"):
        if name not in (*PRESETS, "defects"):
            raise UsageError(f"unknown degrade preset {name!r} (choose from {', '.join(PRESETS)}, defects)")
        base = PRESETS["old-photo" if name == "defects" else name]
        if name == "defects":
            off = {effect: dataclasses.replace(getattr(base, effect), prob=0.0) for effect in GLOBAL_EFFECTS}
            base = dataclasses.replace(base, **off)
        members.append(dataclasses.replace(base, noise=dataclasses.replace(base.noise, prob=1.0,
                                                                          sigma_range=cfg.noise_sigma)))
    return members[0] if len(members) == 1 else tuple(members)  # one config keeps its old fingerprint


def _sources(dataset: Path | None, clean: Path | None, cfg: VAETrainConfig, seed: int, max_pixels: int):
    if (dataset is None) == (clean is None):
        raise UsageError("give either a DATASET folder (from `restore degrade`) or --clean CLEAN_DIR, not both")
    if clean is not None:
        degrade_config = online_degrade_config(cfg)
        source = data.OnlineSource.from_folder(clean, degrade_config, max_pixels=max_pixels, option="--clean")
        train_idx, val_idx = data.split_indices(len(source), 0.1, None, seed)
        train, val = source.subset(train_idx), source.subset(val_idx)
        described = {"source": "online", "folder": display_path(clean), "degrade": (
            degrade_config.to_dict() if not isinstance(degrade_config, tuple) else [m.to_dict() for m in degrade_config])}
    else:
        source = data.PairSource(dataset, max_pixels=max_pixels, online_option="--clean")
        train_idx, val_idx = data.split_indices(len(source), 0.1, None, seed)
        train = source.subset([source.names[i] for i in train_idx])
        val = source.subset([source.names[i] for i in val_idx])
        described = {"source": "folder", "folder": display_path(dataset)}
    described.update(images=len(source), fingerprint=source.fingerprint())
    return train, val, described


class RealCrops:
    """Unpaired random luminance crops of real old photos (domain Z), a pure function of (seed, step)."""

    def __init__(self, folder: Path, crop: int, batch: int, seed: int, max_pixels: int = DEFAULT_MAX_PIXELS):
        if not Path(folder).is_dir():
            raise UsageError(f"--real {display_path(folder)}: not a folder of photos")
        self.paths = usable_images(list_images(Path(folder)), max_pixels)
        if not self.paths:
            raise UsageError(f"--real {display_path(folder)}: no usable images")
        self.crop, self.batch, self.seed, self.max_pixels = crop, batch, seed, max_pixels
        self._cache: dict[Path, np.ndarray] = {}

    def _luma(self, path: Path) -> np.ndarray:
        if path not in self._cache:
            self._cache[path] = data.to_luma(read_image(path, self.max_pixels).pixels)
        return self._cache[path]

    def __call__(self, step: int) -> np.ndarray:
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, _REAL_STREAM, step]))
        picks = rng.integers(0, len(self.paths), self.batch)
        crops = [data.crop_and_augment(rng, [self._luma(self.paths[i])], self.crop)[0] for i in picks]
        return np.stack(crops)[..., None]


def val_folder_pairs(folder: Path, sigma: float, seed: int, max_pixels: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """(noisy, clean) luminance pairs: every image of ``folder`` with AWGN of ``sigma`` (0..255), fixed seed."""
    paths = usable_images(list_images(Path(folder)), max_pixels) if Path(folder).is_dir() else []
    if not paths:
        raise UsageError(f"--val {display_path(folder)}: not a folder of usable images")
    pairs = []
    for i, path in enumerate(paths):
        clean = data.to_luma(read_image(path, max_pixels).pixels)
        if min(clean.shape[:2]) < SSIM_WIN_SIZE:  # before: a traceback from SSIM after all the training
            log.warning("%s: skipped (--val images need at least %dx%d pixels for SSIM)", display_path(path),
                        SSIM_WIN_SIZE, SSIM_WIN_SIZE)
            continue
        rng = np.random.default_rng(np.random.SeedSequence([seed, _VAL_NOISE_STREAM, i]))
        noisy = clean + rng.normal(0.0, sigma / 255.0, clean.shape).astype(np.float32)
        pairs.append((np.clip(noisy, 0.0, 1.0), clean))
    if not pairs:
        raise UsageError(f"--val {display_path(folder)}: no image of at least {SSIM_WIN_SIZE}x{SSIM_WIN_SIZE} pixels")
    return pairs


class StepRecorder:
    """Wraps the train step and writes every step's metrics to ``NAME.steps.jsonl`` (loop.py's own
    JSONL holds the per-epoch means). Values reach the host in blocks of ``every`` steps, at the
    moments loop.py synchronises anyway; a resumed run first drops rows from beyond its start."""

    def __init__(self, step_fn, path: Path, every: int):
        self.step_fn, self.path, self.every = step_fn, path, every
        self.pending: list[tuple[int, dict]] = []
        self.started = False

    def __call__(self, model: nnx.Module, optimizer: nnx.Optimizer, batch: dict[str, Any]) -> dict:
        batch = dict(batch)
        index = int(batch.pop("step"))
        out = self.step_fn(model, optimizer, batch)
        self.pending.append((index + 1, out))
        if len(self.pending) >= self.every:
            self.flush()
        return out

    def flush(self) -> None:
        if not self.pending:
            return
        first = self.pending[0][0]
        if not self.started:
            keep = [x for x in self.path.read_text().splitlines() if x.strip() and json.loads(x)["step"] < first] \
                if self.path.is_file() else []
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text("".join(x + "\n" for x in keep))
            self.started = True
        rows = jax.device_get(self.pending)
        with open(self.path, "a") as fh:
            for step, values in rows:
                fh.write(json.dumps({"step": step, **{k: float(v) for k, v in values.items()}}) + "\n")
        self.pending = []


def make_evaluator(model: nnx.Module, pairs: list[tuple[np.ndarray, np.ndarray, np.ndarray | None]]):
    """``evaluate(model) -> {"val_psnr", "val_ssim"}``: means over ``(degraded, clean, mask)`` luminance images."""
    side = max(max(y.shape[:2]) for y, _, _ in pairs)
    restorer = VAERestorer(model, tile=min(256, side))  # small validation images: no padding to 256

    def evaluate(model: nnx.Module) -> dict[str, float]:
        restorer.refresh(model)
        outs = [(restorer.restore_luma(y, m), x) for y, x, m in pairs]
        scores = [(psnr(out, x), ssim(out, x)) for out, x in outs]
        return {"val_psnr": float(np.mean([s[0] for s in scores])), "val_ssim": float(np.mean([s[1] for s in scores]))}

    evaluate.restorer = restorer  # type: ignore[attr-defined]
    return evaluate


def train_vae(
    dataset: Path | None, checkpoint: Path, cfg: VAETrainConfig, *, clean: Path | None = None,
    real: Path | None = None, val: Path | None = None, resume: bool = False, seed: int = 0,
    max_pixels: int = DEFAULT_MAX_PIXELS, data_workers: int | None = None, time_limit_s: float | None = None,
    stop_at: int | None = None,
) -> Path:
    """Train (or ``resume``) a model of the VAE family; the best checkpoint ends up at ``checkpoint``.

    ``data_workers``: processes drawing batches (None: :func:`default_workers`); the batches, and
    so the model, do not depend on it. ``time_limit_s``: stop cleanly after that long; ``stop_at``:
    at that step of the schedule (see :class:`LoopConfig`); ``resume=True`` continues.
    """
    run_paths = RunPaths(Path(checkpoint))
    run_paths.check(resume, kind=KIND)
    train, held_out, described = _sources(dataset, clean, cfg, seed, max_pixels)
    batches = data.Batches(train, cfg.batch, cfg.crop, seed)
    spe = batches.steps_per_epoch
    steps = cfg.steps or cfg.epochs * spe
    beta = beta_schedule(cfg.beta_schedule, cfg.beta_start, cfg.beta_max, cfg.epochs or steps / spe, cfg.anneal_epochs)
    log_every = spe if spe <= 200 else 50
    # the switch to end-to-end falls on a log boundary: loop.py averages rows with the same metric keys
    e2e_start = round(cfg.e2e_from * steps / log_every) * log_every if cfg.arch == "translation" else steps + 1
    real_crops = RealCrops(real, cfg.crop, cfg.batch, seed, max_pixels) if real is not None else None
    if real_crops is None:
        log.info("no --real photos: domain Z is not trained (no Y/Z latent alignment)")

    def make_batch(step: int) -> dict[str, Any]:  # numpy only: it may run in a forked worker (prefetch.py)
        batch: dict[str, Any] = batches(step)
        if not cfg.mask_input:
            batch["mask"] = np.zeros_like(batch["mask"])
        if real_crops is not None:
            batch["real"] = real_crops(step)
        return batch

    def step_values(step: int) -> dict[str, Any]:  # in the training process: the schedules are optax (JAX)
        return {"beta": np.float32(beta(step / spe)), "phase": int(step >= e2e_start), "epoch": step // spe, "step": step}

    if val is not None:
        pairs = [(y, x, None) for y, x in val_folder_pairs(val, cfg.val_sigma, seed, max_pixels)]
        described["val"] = {"folder": display_path(val), "sigma": cfg.val_sigma}
    else:
        crops = data.validation_set(held_out, 16, cfg.batch, cfg.crop, seed)
        pairs = [(b["degraded"][i, :, :, 0], b["clean"][i, :, :, 0], b["mask"][i, :, :, 0] if cfg.mask_input else None)
                 for b in crops for i in range(b["degraded"].shape[0])]
        described["val"] = {"held_out_crops": len(pairs)}

    started_from = None
    if cfg.init is not None:  # fine-tune: the weights (and so the architecture) of an earlier model
        model, init_header = load_vae(cfg.init)
        started_from = lineage(cfg.init, init_header)
        model_cfg = model.cfg
        if init_header["arch"].get("arch") != cfg.arch:
            raise UsageError(f"--init {display_path(Path(cfg.init))} is a {init_header['arch'].get('arch')} model; "
                             f"train it with --arch {init_header['arch'].get('arch')}")
        log.info("fine-tuning %s (%s)", display_path(Path(cfg.init)), init_header["arch"].get("arch"))
        # It trains the --init model's shape, not the preset's: the config (and so the header) says which.
        trained = model_cfg.to_dict()
        cfg = dataclasses.replace(cfg, **{f.name: trained[f.name] for f in dataclasses.fields(cfg) if f.name in trained})
    else:
        model_cfg = cfg.model_config()
        model = build_model(model_cfg.to_dict(), seed)
    schedule = lr_schedule(cfg.lr, steps, cfg.warmup_steps, cfg.lr_decay)
    optimizer = nnx.Optimizer(model, make_optimizer(cfg.optimizer, schedule, cfg.clip_norm), wrt=nnx.Param)
    mesh = data_mesh()
    check_batch_size(cfg.batch, mesh)
    if mesh.devices.size > 1:
        replicate(model, mesh)
        replicate(optimizer, mesh)
    loss_cfg = LossConfig(arch=cfg.arch, weights=cfg.domain_weights, recon=cfg.recon, cross_weight=cfg.cross_weight,
                          align_weight=cfg.align_weight, map_weight=cfg.map_weight, ssim_weight=cfg.ssim_weight, seed=seed)
    step_fn = StepRecorder(make_step(loss_cfg, mesh), run_paths.steps, log_every)
    evaluate = make_evaluator(model, pairs)
    settings = {**cfg.to_dict(), "steps": steps, "seed": seed, "real": display_path(real) if real else None}
    log.info("%s (%s preset): %d parameters, %d steps of %d x %dpx crops (%d per epoch) on %d device(s)",
             cfg.arch, cfg.preset, parameter_count(model), steps, cfg.batch, cfg.crop, spe, mesh.devices.size)

    def header(metrics: dict[str, float]) -> dict[str, Any]:
        training = {"config": settings, "data": described, **({"init": started_from} if started_from else {})}
        return {"kind": KIND, "arch": model_cfg.to_dict(), "training": training}

    loop = LoopConfig(steps=steps, log_every=log_every, eval_every=cfg.eval_every,
                      checkpoint_every=cfg.checkpoint_every, best_metric="val_psnr", best_mode="max",
                      workers=default_workers() if data_workers is None else data_workers, time_limit_s=time_limit_s,
                      stop_at=stop_at)
    resume_key = {k: v for k, v in settings.items() if k not in ("eval_every", "checkpoint_every")}
    resume_key["data"] = described["fingerprint"]
    started = time.perf_counter()
    # on_stop, also on Ctrl-C / SIGTERM: fit writes the state of the step it stopped on, and these rows reach it
    result = fit(model, optimizer, step_fn, make_batch, loop, run_paths, on_stop=step_fn.flush,
                 header=header, evaluate=evaluate, resume_key=resume_key, resume=resume, step_values=step_values)
    log.info("done: step %d, best val PSNR %s dB at step %s; %.2f steps/s after %.1f s compile; %.0f s in all",
             result.step, f"{result.best:.2f}" if result.best is not None else "n/a", result.best_step,
             result.steps_per_s, result.compile_s, time.perf_counter() - started)
    return Path(checkpoint)
