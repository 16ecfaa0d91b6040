"""Losses and the (data-parallel) train step of ``train-vae``, for loop.py's ``make_train_step``.

All image losses are means per pixel and the KL is summed over the latent and divided by the
pixel count (nats per pixel), so ``recon + beta * kl`` is the usual ELBO up to one constant
factor and β means the same thing at every crop size and latent shape.

Per-step values that change over a run (β) travel *in the batch* as a scalar, computed on the
host from the step: a pure function of the step, so ``--resume`` is exact and nothing recompiles.
The translation model trains in two phases, each its own jitted function (two compiles in all):

* ``translate`` (Wan et al.): VAE_1 on Y (and Z, plus the Y/Z latent statistics match), VAE_2
  on X, and ``mapping_t`` on *stopped-gradient* paired latents (latent L1 to VAE_2's mean, and
  image L1 through a *frozen* copy of X's decoder), so the mapping cannot drag the VAEs along;
* ``e2e``: the restoration path ``decode_X(map(encode_YZ(y), mask))`` trained end to end against
  X with L1 (+ optional SSIM), keeping β·KL on the Y latent and the Y/Z alignment for Z.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from restore_cli.models.vae_blocks import kl_divergence, reparameterize
from restore_cli.train.loop import make_train_step
from restore_cli.train.sharding import shard_batch

PHASES = ("translate", "e2e")


@dataclasses.dataclass(frozen=True)
class LossConfig:
    """The static part of the loss (closed over by the jitted step)."""

    arch: str
    weights: tuple[float, float, float] = (1.0, 1.0, 1.0)  # X, Y, Z
    recon: str = "l1"  # "l1" or "mse"
    cross_weight: float = 0.0  # family: paired |decode_X(encode_Y(y)) - x| term (0 = the original)
    align_weight: float = 1.0  # translation: Y/Z latent statistics match
    map_weight: float = 1.0  # translation: latent L1 of the mapping
    ssim_weight: float = 0.0  # translation e2e: weight of (1 - SSIM)
    seed: int = 0


def frozen(module: nnx.Module) -> nnx.Module:
    """A copy of ``module`` whose parameters are constants for autodiff (a frozen sub-network)."""
    graphdef, state = nnx.split(module)
    return nnx.merge(graphdef, jax.lax.stop_gradient(state))


def recon_loss(pred: jax.Array, target: jax.Array, kind: str) -> jax.Array:
    diff = pred - target
    return jnp.mean(jnp.abs(diff)) if kind == "l1" else jnp.mean(jnp.square(diff))


def kl_per_pixel(mean: jax.Array, log_var: jax.Array, image: jax.Array) -> jax.Array:
    return jnp.mean(kl_divergence(mean, log_var)) / (image.shape[1] * image.shape[2] * image.shape[3])


def batch_psnr(pred: jax.Array, target: jax.Array) -> jax.Array:
    mse = jnp.mean(jnp.square(jnp.clip(pred, 0.0, 1.0) - target), axis=(1, 2, 3))
    return jnp.mean(10.0 * jnp.log10(1.0 / jnp.maximum(mse, 1e-10)))


def latent_alignment(a: jax.Array, b: jax.Array) -> jax.Array:
    """Squared distance between per-channel means and standard deviations of two latent batches.

    A cheap stand-in for Wan et al.'s latent adversary: it pulls the real-photo (Z) latents onto
    the statistics of the synthetic (Y) ones, which is what lets a mapping learned on Y serve Z.
    """
    axes = tuple(range(a.ndim - 1))
    mean_a, mean_b = a.mean(axis=axes), b.mean(axis=axes)
    std_a, std_b = jnp.sqrt(a.var(axis=axes) + 1e-6), jnp.sqrt(b.var(axis=axes) + 1e-6)
    return jnp.mean(jnp.square(mean_a - mean_b) + jnp.square(std_a - std_b))


def _gauss_window(size: int = 11, sigma: float = 1.5) -> jax.Array:
    x = jnp.arange(size, dtype=jnp.float32) - (size - 1) / 2
    g = jnp.exp(-0.5 * (x / sigma) ** 2)
    return g / g.sum()


def ssim(pred: jax.Array, target: jax.Array) -> jax.Array:
    """Mean SSIM (Gaussian 11x11 window, sigma 1.5, data range 1) of two (B, H, W, 1) batches."""
    g = _gauss_window()

    def blur(x: jax.Array) -> jax.Array:
        x = jax.lax.conv_general_dilated(x, g.reshape(-1, 1, 1, 1), (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"))
        return jax.lax.conv_general_dilated(x, g.reshape(1, -1, 1, 1), (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"))

    c1, c2 = 0.01**2, 0.03**2
    mu_p, mu_t = blur(pred), blur(target)
    var_p = blur(pred * pred) - mu_p**2
    var_t = blur(target * target) - mu_t**2
    cov = blur(pred * target) - mu_p * mu_t
    num = (2 * mu_p * mu_t + c1) * (2 * cov + c2)
    return jnp.mean(num / ((mu_p**2 + mu_t**2 + c1) * (var_p + var_t + c2)))


def _noise(cfg: LossConfig, step: jax.Array) -> nnx.Rngs:
    """The ``noise`` stream of this step: a function of (seed, step) only, so resuming is exact."""
    return nnx.Rngs(noise=jax.random.fold_in(jax.random.key(cfg.seed), step))


def family_loss(cfg: LossConfig, model: nnx.Module, batch: dict, step: jax.Array) -> tuple[jax.Array, dict]:
    """Per domain: recon + β·KL, weighted by the domain weights; plus the optional paired cross term."""
    rngs, beta = _noise(cfg, step), batch["beta"]
    clean, weights = batch["clean"], dict(zip("XYZ", cfg.weights))
    total, aux = jnp.zeros(()), {"beta": beta}
    for domain, image in (("X", clean), ("Y", batch["degraded"]), ("Z", batch.get("real"))):
        if image is None:
            continue
        mean, log_var, skips = model.encode(image, domain)
        z = reparameterize(mean, log_var, rngs)
        rec = recon_loss(model.decode(z, domain, skips), image, cfg.recon)
        kl = kl_per_pixel(mean, log_var, image)
        total = total + weights[domain] * (rec + beta * kl)
        aux.update({f"recon_{domain}": rec, f"kl_{domain}": kl})
        if domain == "Y":
            restored = model.decode(z, "X", skips)
            aux["train_psnr"] = batch_psnr(restored, clean)
            if cfg.cross_weight:
                aux["cross"] = jnp.mean(jnp.abs(restored - clean))
                total = total + cfg.cross_weight * aux["cross"]
    return total, aux


def translation_loss(cfg: LossConfig, phase: str, model: nnx.Module, batch: dict, step: jax.Array) -> tuple[jax.Array, dict]:
    rngs, beta = _noise(cfg, step), batch["beta"]
    clean, degraded, mask, real = batch["clean"], batch["degraded"], batch["mask"], batch.get("real")
    w_x, w_y, w_z = cfg.weights
    aux = {"beta": beta}
    if phase == "e2e":
        restored, mean_y, log_var_y = model.translate(degraded, mask)
        img = jnp.mean(jnp.abs(restored - clean))
        aux["kl_Y"] = kl_per_pixel(mean_y, log_var_y, degraded)
        total = img + w_y * beta * aux["kl_Y"]
        if cfg.ssim_weight:
            aux["ssim"] = ssim(restored, clean)
            total = total + cfg.ssim_weight * (1.0 - aux["ssim"])
    else:
        rec_y, mean_y, log_var_y = model.vae_yz(degraded, rngs)
        rec_x, mean_x, log_var_x = model.vae_x(clean, rngs)
        aux.update(recon_Y=recon_loss(rec_y, degraded, cfg.recon), kl_Y=kl_per_pixel(mean_y, log_var_y, degraded),
                   recon_X=recon_loss(rec_x, clean, cfg.recon), kl_X=kl_per_pixel(mean_x, log_var_x, clean))
        mapped = model.mapping_t(jax.lax.stop_gradient(mean_y), mask)
        aux["map"] = jnp.mean(jnp.abs(mapped - jax.lax.stop_gradient(mean_x)))
        restored = frozen(model.vae_x).decode(mapped)
        img = jnp.mean(jnp.abs(restored - clean))
        total = (w_y * (aux["recon_Y"] + beta * aux["kl_Y"]) + w_x * (aux["recon_X"] + beta * aux["kl_X"])
                 + cfg.map_weight * aux["map"] + img)
    if real is not None:
        if phase == "e2e":
            mean_z, log_var_z = model.vae_yz.encode(real)
            z_term = beta * kl_per_pixel(mean_z, log_var_z, real)
        else:
            rec_z, mean_z, log_var_z = model.vae_yz(real, rngs)
            aux.update(recon_Z=recon_loss(rec_z, real, cfg.recon), kl_Z=kl_per_pixel(mean_z, log_var_z, real))
            z_term = aux["recon_Z"] + beta * aux["kl_Z"]
        aux["align"] = latent_alignment(mean_y, mean_z)
        total = total + w_z * (z_term + cfg.align_weight * aux["align"])
    aux.update(img=img, train_psnr=batch_psnr(restored, clean))
    return total, aux


def make_step(cfg: LossConfig, mesh=None) -> Callable:
    """``step(model, optimizer, host_batch)`` for loop.fit: picks the phase, shards the batch, runs the jitted step.

    ``host_batch["phase"]`` (an index into :data:`PHASES`, family: ignored) is read on the host,
    so choosing the phase never waits for the device; ``host_batch["epoch"]`` (optional) is
    passed through to the logged metrics.
    """
    if cfg.arch == "translation":
        jitted = {p: make_train_step(lambda m, b, s, p=p: translation_loss(cfg, p, m, b, s)) for p in PHASES}
    else:
        one = make_train_step(lambda m, b, s: family_loss(cfg, m, b, s))
        jitted = {p: one for p in PHASES}

    def step(model: nnx.Module, optimizer: nnx.Optimizer, batch: dict[str, np.ndarray]) -> dict[str, jax.Array]:
        batch = dict(batch)
        phase = PHASES[int(batch.pop("phase", 0))]
        beta, epoch = batch.pop("beta"), batch.pop("epoch", None)
        arrays = shard_batch(batch, mesh) if mesh is not None else batch
        out = jitted[phase](model, optimizer, {**arrays, "beta": jnp.asarray(beta, jnp.float32)})
        return out if epoch is None else {**out, "epoch": float(epoch)}

    step.jitted = jitted  # type: ignore[attr-defined]
    return step
