"""The original project's multi-domain VAE family: ``simple``, ``unet`` and ``resblock``.

Three domains share one model file: X (clean photos), Y (synthetic degradations of X, paired
with it) and Z (real old photos, unpaired). Every domain has its own encoder and decoder, as in
the original; the ``resblock`` arch adds the original's latent mapping ``mapping_t`` (three
residual blocks on the latent map, shared by all decoders).

What the original could not do, and why it is kept anyway: with the ``cr6`` preset the latent
is a 256-number vector and each VAE only autoencodes its own domain, so ``decode_X(encode_Y(y))``
has no reason to be a restoration (11.77 dB / SSIM 0.30). ``cr6`` reproduces it exactly. The
other presets use a *spatial* latent (a ``latent_channels`` map at 1/8 resolution) and the
trainer adds a paired cross term ``|decode_X(encode_Y(y)) - x|`` (see :mod:`restore_cli.train.vae`),
which turns the same family into a working, if modest, restorer. The model that really restores
is :mod:`.translation`.

Restoration with this family is ``decode_X(encode_Y(y))`` on the posterior mean
(:meth:`MultiDomainVAE.restore`), with the U-Net skips taken from the Y encoder.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
from flax import nnx

from restore_cli.models.configs import dataclass_from_dict
from restore_cli.models.vae_blocks import ResBlock, ResStack, conv, conv_transpose, reparameterize

ARCHS = ("simple", "unet", "resblock")
LATENTS = ("vector", "spatial")
DOMAINS = ("X", "Y", "Z")


@dataclasses.dataclass(frozen=True)
class VAEConfig:
    """Architecture of :class:`MultiDomainVAE`; stored in the checkpoint header as ``arch``."""

    arch: str = "simple"
    image_size: int = 256  # the fixed input size a vector latent needs (spatial latents take any multiple)
    in_channels: int = 1
    widths: tuple[int, ...] = (32, 64, 128)  # one stride-2 stage each
    latent: str = "vector"  # "vector" (original, cr6) or "spatial"
    latent_dim: int = 256  # vector latent size
    latent_channels: int = 64  # spatial latent channels at 1/2**len(widths) resolution
    mapping_blocks: int = 3  # resblock arch: residual blocks of mapping_t
    remat: bool = False  # recompute residual blocks in the backward pass (memory for FLOPs)

    def __post_init__(self) -> None:
        object.__setattr__(self, "widths", tuple(int(w) for w in self.widths))
        if self.arch not in ARCHS:
            raise ValueError(f"arch must be one of {ARCHS}, got {self.arch!r}")
        if self.latent not in LATENTS:
            raise ValueError(f"latent must be one of {LATENTS}, got {self.latent!r}")
        if not self.widths or min(self.widths) < 1:
            raise ValueError(f"widths must be positive, got {self.widths}")
        if self.latent == "vector" and self.image_size % self.multiple:
            raise ValueError(f"image_size {self.image_size} must be a multiple of {self.multiple}")

    @property
    def multiple(self) -> int:
        return 2 ** len(self.widths)

    @property
    def fixed_size(self) -> int | None:
        """The only input size the model accepts (vector latent), or None (any multiple of :attr:`multiple`)."""
        return self.image_size if self.latent == "vector" else None

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "widths": list(self.widths)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VAEConfig:
        return dataclass_from_dict(cls, data, "VAE")


class Encoder(nnx.Module):
    """Stride-2 conv stages (plus a residual block each for ``resblock``) -> (mean, log_var, skips)."""

    def __init__(self, cfg: VAEConfig, rngs: nnx.Rngs):
        self.cfg = cfg
        self.downs = nnx.List()
        self.blocks = nnx.List()
        c_in = cfg.in_channels
        for width in cfg.widths:
            self.downs.append(conv(c_in, width, rngs, stride=2))
            if cfg.arch == "resblock":
                self.blocks.append(ResBlock(width, width, rngs, remat=cfg.remat))
            c_in = width
        if cfg.latent == "vector":
            side = cfg.image_size // cfg.multiple
            flat = side * side * cfg.widths[-1]
            self.mean = nnx.Linear(flat, cfg.latent_dim, rngs=rngs)
            self.log_var = nnx.Linear(flat, cfg.latent_dim, kernel_init=nnx.initializers.zeros_init(), rngs=rngs)
        else:
            self.mean = conv(cfg.widths[-1], cfg.latent_channels, rngs, kernel=1)
            self.log_var = conv(cfg.widths[-1], cfg.latent_channels, rngs, kernel=1, zero=True)

    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array, list[jax.Array]]:
        skips = []
        for i, down in enumerate(self.downs):
            x = jax.nn.relu(down(x))
            if len(self.blocks):
                x = self.blocks[i](x)
            skips.append(x)
        if self.cfg.latent == "vector":
            x = x.reshape(x.shape[0], -1)
        return self.mean(x), self.log_var(x), skips[:-1]


class Decoder(nnx.Module):
    """Latent -> (H/2**n, W/2**n, widths[-1]) map -> transposed convs (U-Net: fed by the skips) -> sigmoid."""

    def __init__(self, cfg: VAEConfig, rngs: nnx.Rngs):
        self.cfg = cfg
        top = cfg.widths[-1]
        if cfg.latent == "vector":
            side = cfg.image_size // cfg.multiple
            self.pre = nnx.Linear(cfg.latent_dim, side * side * top, rngs=rngs)
        else:
            self.pre = conv(cfg.latent_channels, top, rngs)
        outs = list(reversed(cfg.widths[:-1])) + [cfg.widths[0]]  # e.g. 128 -> 64 -> 32 -> 32
        skip_widths = [0] + list(reversed(cfg.widths[:-1]))  # skips join after the first up-sampling
        self.ups = nnx.List()
        self.blocks = nnx.List()
        c_in = top
        for i, width in enumerate(outs):
            extra = skip_widths[i] if cfg.arch == "unet" else 0
            self.ups.append(conv_transpose(c_in + extra, width, rngs))
            if cfg.arch == "resblock":
                self.blocks.append(ResBlock(width, width, rngs, remat=cfg.remat))
            c_in = width
        self.out = conv(c_in, cfg.in_channels, rngs)

    def __call__(self, z: jax.Array, skips: list[jax.Array], mapping: nnx.Module | None = None) -> jax.Array:
        x = jax.nn.relu(self.pre(z))
        if self.cfg.latent == "vector":
            side = self.cfg.image_size // self.cfg.multiple
            x = x.reshape(z.shape[0], side, side, self.cfg.widths[-1])
        if mapping is not None:
            x = mapping(x)
        skips = list(reversed(skips))  # coarsest first
        for i, up in enumerate(self.ups):
            if self.cfg.arch == "unet" and i > 0:
                x = jnp.concatenate([x, skips[i - 1]], axis=-1)
            x = jax.nn.relu(up(x))
            if len(self.blocks):
                x = self.blocks[i](x)
        return jax.nn.sigmoid(self.out(x))


class MultiDomainVAE(nnx.Module):
    """One encoder and one decoder per domain (X, Y, Z); ``mapping_t`` for the ``resblock`` arch."""

    def __init__(self, cfg: VAEConfig, rngs: nnx.Rngs):
        self.cfg = cfg
        self.encoders = nnx.Dict({d: Encoder(cfg, rngs) for d in DOMAINS})
        self.decoders = nnx.Dict({d: Decoder(cfg, rngs) for d in DOMAINS})
        self.mapping_t = (
            ResStack(cfg.widths[-1], cfg.mapping_blocks, rngs, post_relu=True, remat=cfg.remat)
            if cfg.arch == "resblock" else None
        )

    def encode(self, x: jax.Array, domain: str) -> tuple[jax.Array, jax.Array, list[jax.Array]]:
        return self.encoders[domain](x)

    def decode(self, z: jax.Array, domain: str, skips: list[jax.Array]) -> jax.Array:
        return self.decoders[domain](z, skips, self.mapping_t)

    def __call__(
        self, x: jax.Array, domain: str, rngs: nnx.Rngs | None = None, target: str | None = None
    ) -> tuple[jax.Array, jax.Array, jax.Array]:
        """Encode with ``domain``'s encoder, sample, decode with ``target``'s decoder (default: the same)."""
        mean, log_var, skips = self.encode(x, domain)
        z = reparameterize(mean, log_var, rngs)
        return self.decode(z, target or domain, skips), mean, log_var

    def restore(self, degraded: jax.Array, mask: jax.Array | None = None) -> jax.Array:
        """``decode_X(encode_Y(y))`` on the posterior mean; the mask is not used by this family."""
        del mask
        return self(degraded, "Y", None, target="X")[0]


def build_vae(arch: dict[str, Any], seed: int = 0) -> MultiDomainVAE:
    return MultiDomainVAE(VAEConfig.from_dict(arch), nnx.Rngs(params=seed))


#: Checkpoint ``kind`` of every model in this family, the translation model included.
KIND = "vae"


def config_from_dict(arch: dict[str, Any]):
    """The frozen config (:class:`VAEConfig` or ``TranslationConfig``) an ``arch`` header describes."""
    from restore_cli.models.translation import TranslationConfig

    if arch.get("arch") == "translation":
        return TranslationConfig.from_dict(arch)
    return VAEConfig.from_dict(arch)


def build_model(arch: dict[str, Any], seed: int = 0, abstract: bool = False) -> nnx.Module:
    """Any model of the family from a checkpoint header's ``arch``.

    ``abstract=True`` gives shapes only (``nnx.eval_shape``), for loading a checkpoint into: eager
    random initialisation compiles one XLA kernel per parameter shape, tens of seconds on a busy
    2-core CPU, all of it wasted when the weights are overwritten straight away.
    """
    from restore_cli.models.translation import TranslationVAE

    cfg = config_from_dict(arch)
    cls = TranslationVAE if cfg.arch == "translation" else MultiDomainVAE
    if abstract:
        return nnx.eval_shape(lambda: cls(cfg, nnx.Rngs(params=seed)))
    return cls(cfg, nnx.Rngs(params=seed))


def load_vae(path: Any) -> tuple[nnx.Module, dict[str, Any]]:
    """A ``train-vae`` checkpoint -> (model, header); CheckpointError if missing, corrupt or another kind."""
    from restore_cli.models.checkpoint import load_model

    return load_model(path, KIND, lambda arch: build_model(arch, abstract=True))
