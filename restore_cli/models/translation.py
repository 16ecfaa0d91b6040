"""Triplet-domain latent translation (after Wan et al., "Bringing Old Photos Back to Life", CVPR 2020).

Two VAEs and a mapping, on *spatial* latents:

* ``vae_yz`` — one VAE for Y (synthetic degradations) and Z (real old photos) with a shared
  latent space; the trainer pulls the Y and Z latent statistics together, so a real photo lands
  where the synthetic ones do and the mapping learned on synthetic pairs transfers to it;
* ``vae_x`` — a VAE for X (clean photos);
* ``mapping_t`` — residual blocks that move a Y/Z latent to the X latent of the same photo,
  trained on paired (Y, X) latents. The defect mask enters as an extra channel (the defect
  fraction of each latent cell), so it knows *where* to inpaint rather than guessing it.

Restoration is ``decode_X(mapping_t(encode_YZ(photo), mask))`` on posterior means.

Why these shapes: each latent cell covers ``down`` x ``down`` pixels (pixel-unshuffle, no
full-resolution conv anywhere), ``latent_channels`` = 64 numbers for 16 pixels at down=4, so
the bottleneck is no longer the limit it was in the original's 256-number vector; everything
runs at 1/16 of the pixels, which is what makes training feasible on a 2-core CPU.
The mapping and the residual blocks start as the identity (zero-initialised last convs).

``residual=True`` makes the restoration ``degraded + decode_X(...)``: the network starts at
the identity (PSNR of the input) instead of at a black image, which it must first learn to
leave. It only fits end-to-end training: in Wan's staged training decode_X also has to
reconstruct clean photos on its own, which a residual decoder cannot do.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from restore_cli.models.configs import dataclass_from_dict
from restore_cli.models.vae_blocks import ResStack, avg_pool, conv, pixel_shuffle, pixel_unshuffle, reparameterize


@dataclasses.dataclass(frozen=True)
class TranslationConfig:
    """Architecture of :class:`TranslationVAE`; stored in the checkpoint header as ``arch``."""

    arch: str = "translation"
    in_channels: int = 1
    down: int = 4  # latent resolution = 1/down (pixel-unshuffle factor)
    width: int = 64  # channels of every conv
    latent_channels: int = 64
    enc_blocks: int = 2
    dec_blocks: int = 2
    map_blocks: int = 4
    residual: bool = False  # restoration = degraded + decode_X(...): pure end-to-end training only
    remat: bool = False

    def __post_init__(self) -> None:
        if self.arch != "translation":
            raise ValueError(f"TranslationConfig.arch must be 'translation', got {self.arch!r}")
        if self.down not in (1, 2, 4, 8):
            raise ValueError(f"down must be 1, 2, 4 or 8, got {self.down}")
        if min(self.width, self.latent_channels) < 1 or min(self.enc_blocks, self.dec_blocks, self.map_blocks) < 0:
            raise ValueError("widths must be positive and block counts non-negative")

    @property
    def multiple(self) -> int:
        return self.down

    @property
    def fixed_size(self) -> None:
        return None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TranslationConfig:
        return dataclass_from_dict(cls, data, "translation")

    def flops_per_pixel(self) -> int:
        """Forward multiply-adds x 2 per image pixel of the restoration path (encode, map, decode)."""
        c_px = self.in_channels * self.down**2
        w, lat = self.width, self.latent_channels
        enc = 9 * c_px * w + self.enc_blocks * 18 * w * w + 2 * w * lat
        mapping = 9 * (lat + 1) * w + self.map_blocks * 18 * w * w + 9 * w * lat
        dec = 9 * lat * w + self.dec_blocks * 18 * w * w + 9 * w * c_px
        return 2 * (enc + mapping + dec) // self.down**2


class LatentVAE(nnx.Module):
    """Image <-> (1/down)-resolution Gaussian latent map; no layer runs at full resolution."""

    def __init__(self, cfg: TranslationConfig, rngs: nnx.Rngs):
        self.cfg = cfg
        c_px = cfg.in_channels * cfg.down**2
        self.stem = conv(c_px, cfg.width, rngs)
        self.enc = ResStack(cfg.width, cfg.enc_blocks, rngs, remat=cfg.remat)
        self.mean = conv(cfg.width, cfg.latent_channels, rngs, kernel=1)
        self.log_var = conv(cfg.width, cfg.latent_channels, rngs, kernel=1, zero=True)
        self.dec_in = conv(cfg.latent_channels, cfg.width, rngs)
        self.dec = ResStack(cfg.width, cfg.dec_blocks, rngs, remat=cfg.remat)
        self.dec_out = conv(cfg.width, c_px, rngs, zero=True)  # starts at a flat black image, not at noise

    def encode(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        h = self.enc(jax.nn.relu(self.stem(pixel_unshuffle(x, self.cfg.down))))
        return self.mean(h), self.log_var(h)

    def decode(self, z: jax.Array) -> jax.Array:
        """A linear output (not a sigmoid): L1 training stays well-conditioned near black and white."""
        h = self.dec(jax.nn.relu(self.dec_in(z)))
        return pixel_shuffle(self.dec_out(h), self.cfg.down)

    def __call__(self, x: jax.Array, rngs: nnx.Rngs | None = None) -> tuple[jax.Array, jax.Array, jax.Array]:
        mean, log_var = self.encode(x)
        return self.decode(reparameterize(mean, log_var, rngs)), mean, log_var


class MaskedMapping(nnx.Module):
    """``z -> z + T([z, defect fraction])``: a residual latent-to-latent translation, identity at init."""

    def __init__(self, cfg: TranslationConfig, rngs: nnx.Rngs):
        self.cfg = cfg
        self.inp = conv(cfg.latent_channels + 1, cfg.width, rngs)
        self.body = ResStack(cfg.width, cfg.map_blocks, rngs, remat=cfg.remat)
        self.out = conv(cfg.width, cfg.latent_channels, rngs, zero=True)

    def __call__(self, z: jax.Array, mask: jax.Array | None) -> jax.Array:
        """``mask``: (B, H, W, 1) pixel mask in [0, 1] at image resolution, or None (no known defects)."""
        if mask is None:
            cells = jnp.zeros(z.shape[:-1] + (1,), z.dtype)
        else:
            cells = avg_pool(mask.astype(z.dtype), self.cfg.down)
        h = self.body(jax.nn.relu(self.inp(jnp.concatenate([z, cells], axis=-1))))
        return z + self.out(h)


class TranslationVAE(nnx.Module):
    """VAE_1 (Y and Z), VAE_2 (X) and the mask-conditioned mapping between their latents."""

    def __init__(self, cfg: TranslationConfig, rngs: nnx.Rngs):
        self.cfg = cfg
        self.vae_yz = LatentVAE(cfg, rngs)
        self.vae_x = LatentVAE(cfg, rngs)
        self.mapping_t = MaskedMapping(cfg, rngs)

    def translate(self, degraded: jax.Array, mask: jax.Array | None = None) -> tuple[jax.Array, jax.Array, jax.Array]:
        """(restored, Y/Z posterior mean, its log-variance): the restoration path, deterministic."""
        mean, log_var = self.vae_yz.encode(degraded)
        out = self.vae_x.decode(self.mapping_t(mean, mask))
        return (degraded + out if self.cfg.residual else out), mean, log_var

    def restore(self, degraded: jax.Array, mask: jax.Array | None = None) -> jax.Array:
        return self.translate(degraded, mask)[0]


def build_translation(arch: dict[str, Any], seed: int = 0) -> TranslationVAE:
    return TranslationVAE(TranslationConfig.from_dict(arch), nnx.Rngs(params=seed))
