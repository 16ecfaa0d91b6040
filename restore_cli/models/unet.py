"""A small, fully convolutional U-Net for per-pixel defect detection (scratches, cracks, dust).

Design choices, all driven by a CPU budget (2 cores, ~80 GFLOP/s) and by the task:

* **Luminance in, logits out.** Scratches and dust are visible in luma; colour triples the
  first layer's cost for nothing. The network returns logits (N, H, W, out); the caller
  applies the sigmoid, so the loss can use the numerically stable log-sigmoid forms.
* **Full-resolution first level.** Defects are 1-3 px wide; any stride before the first
  block would blur them away. Down-sampling is a 2x2 max-pool, which keeps thin bright
  *and* (after the first conv's mixed-sign filters) thin dark structures alive.
* **Additive skips by default.** The decoder projects the coarse features to the finer
  level's width with a 1x1 conv *at the coarse resolution* (4x cheaper than after the
  up-sampling), repeats them 2x (nearest) and adds the encoder skip. Concatenation would
  double the decoder's first conv, which is the largest FLOP item at full resolution;
  ``skip="concat"`` is kept for comparison.
* **Thin and deep.** Default widths 8-16-32-64-96 over 5 levels (multiple 16): ~17 kFLOP
  per pixel, a theoretical receptive field of ~190 px for context (an edge of the photo vs a scratch),
  and 8 channels at full resolution, where most of the FLOPs are. (16-32-64-96 over 4
  levels costs 51 kFLOP/px, 3x more, for a smaller receptive field.)
* **GroupNorm, never BatchNorm.** No batch statistics means train and inference are the
  same function, the checkpoint holds only parameters, and a single 256x256 tile at
  inference behaves like a training batch. Measured on online old-photo data (200 steps,
  8 x 64 px, BCE): val F1 0.26 with GroupNorm vs 0.15 without, and without a norm plain BCE
  sometimes collapses to "no defect anywhere". :class:`GroupNorm` is a folded version that
  costs ~10 % over no norm (``nnx.GroupNorm`` cost ~65 %). ``norm="none"`` stays available.
* **Rare-positive prior.** The head's bias starts at ``head_bias`` (about logit(0.05)), so
  the first steps are not spent unlearning a 50 % defect rate (the focal-loss paper's trick).

Any input whose height and width are multiples of :attr:`UNetConfig.multiple` works;
:func:`restore_cli.restoration.tiling.infer_tiled` pads images to that for inference.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from restore_cli.models.configs import dataclass_from_dict

NORMS = ("group", "none")
# Untruncated normals: same variance as He/LeCun init, but jax's *truncated* normal costs ~1 s
# of XLA compilation per parameter shape on CPU (erf_inv), i.e. 15 s to build this model.
_HE_INIT = nnx.initializers.variance_scaling(2.0, "fan_in", "normal")  # untruncated in jax
_LINEAR_INIT = nnx.initializers.variance_scaling(1.0, "fan_in", "normal")  # untruncated in jax
SKIPS = ("add", "concat")


@dataclasses.dataclass(frozen=True)
class UNetConfig:
    """Architecture of :class:`UNet`; stored in every checkpoint header as ``arch``."""

    in_channels: int = 1
    out_channels: int = 1
    widths: tuple[int, ...] = (8, 16, 32, 64, 96)  # channels per level, finest first
    convs_per_level: int = 2
    norm: str = "group"  # "group" (GroupNorm) or "none"
    groups: int = 4  # GroupNorm groups (must divide every width)
    skip: str = "add"  # "add" or "concat"
    head_bias: float = -3.0  # initial logit of the output: sigmoid(-3) ~ 5 % defects

    def __post_init__(self) -> None:
        object.__setattr__(self, "widths", tuple(int(w) for w in self.widths))
        if not self.widths or min(self.widths) < 1:
            raise ValueError(f"widths must be positive, got {self.widths}")
        if self.norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {self.norm!r}")
        if self.skip not in SKIPS:
            raise ValueError(f"skip must be one of {SKIPS}, got {self.skip!r}")
        if self.norm == "group" and any(w % self.groups for w in self.widths):
            raise ValueError(f"groups={self.groups} must divide every width {self.widths}")
        if self.convs_per_level < 1:
            raise ValueError("convs_per_level must be at least 1")

    @property
    def multiple(self) -> int:
        """Height and width must be multiples of this (2 ** number of down-samplings)."""
        return 2 ** (len(self.widths) - 1)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["widths"] = list(self.widths)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> UNetConfig:
        """Inverse of :meth:`to_dict`; unknown keys raise ValueError (a newer/foreign file)."""
        return dataclass_from_dict(cls, data, "U-Net")

    def flops_per_pixel(self) -> int:
        """Forward multiply-adds x 2 per input pixel (3x3 convs and 1x1 projections)."""
        total, c_in = 0, self.in_channels
        for level, width in enumerate(self.widths):
            scale = 4**level
            total += 18 * (c_in * width + (self.convs_per_level - 1) * width * width) // scale
            c_in = width
        for level in range(len(self.widths) - 2, -1, -1):
            width, coarse = self.widths[level], self.widths[level + 1]
            total += 2 * coarse * width // 4 ** (level + 1)  # 1x1 projection at the coarse level
            first_in = 2 * width if self.skip == "concat" else width
            total += 18 * (first_in * width + (self.convs_per_level - 1) * width * width) // 4**level
        return total + 2 * self.widths[0] * self.out_channels


class GroupNorm(nnx.Module):
    """GroupNorm as one multiply-add per pixel: per-(sample, channel) sums, then a folded affine.

    Same maths and parameter names (``scale``, ``bias``) as ``nnx.GroupNorm``, but the
    statistics are two channel-last reductions and the normalisation is ``x * a + b`` with
    ``a, b`` of shape (N, C). Measured on a 256x256 tile of the default U-Net: 44 ms CPU
    versus 67 ms with ``nnx.GroupNorm`` (40 ms with no norm at all).
    """

    def __init__(self, channels: int, groups: int, epsilon: float = 1e-5):
        self.groups, self.epsilon = groups, epsilon
        self.scale = nnx.Param(jnp.ones((channels,), jnp.float32))
        self.bias = nnx.Param(jnp.zeros((channels,), jnp.float32))

    def __call__(self, x: jax.Array) -> jax.Array:
        n, h, w, c = x.shape
        per_group = c // self.groups
        count = h * w * per_group
        mean = jnp.sum(x, axis=(1, 2)).reshape(n, self.groups, per_group).sum(-1) / count
        mean_sq = jnp.sum(x * x, axis=(1, 2)).reshape(n, self.groups, per_group).sum(-1) / count
        inv = jax.lax.rsqrt(jnp.maximum(mean_sq - mean * mean, 0.0) + self.epsilon)
        a = jnp.repeat(inv, per_group, axis=1) * self.scale[...]
        b = self.bias[...] - jnp.repeat(mean, per_group, axis=1) * a
        return x * a[:, None, None, :] + b[:, None, None, :]


class ConvBlock(nnx.Module):
    """``convs`` x (3x3 conv -> optional GroupNorm -> ReLU)."""

    def __init__(self, c_in: int, c_out: int, config: UNetConfig, rngs: nnx.Rngs):
        use_norm = config.norm == "group"
        init = _HE_INIT
        self.convs = nnx.List()
        self.norms = nnx.List()
        for i in range(config.convs_per_level):
            self.convs.append(
                nnx.Conv(c_in if i == 0 else c_out, c_out, (3, 3), use_bias=not use_norm, kernel_init=init, rngs=rngs)
            )
            if use_norm:
                self.norms.append(GroupNorm(c_out, config.groups))

    def __call__(self, x: jax.Array) -> jax.Array:
        for i, conv in enumerate(self.convs):
            x = _conv_one_channel(conv, x) if conv.in_features == 1 else conv(x)
            if len(self.norms):
                x = self.norms[i](x)
            x = jax.nn.relu(x)
        return x


def _conv_one_channel(conv: nnx.Conv, x: jax.Array) -> jax.Array:
    """``conv(x)`` for a one-channel input as k x k shifted multiply-adds (same numbers up to rounding).

    XLA:CPU runs a 1 -> 16 channel 3x3 convolution at ~5 GFLOP/s (Eigen): 14-19 ms per 544 px tile
    of the shipped mask U-Net, as long as a 16 -> 16 one. As nine broadcast multiply-adds it is one
    memory-bound loop of ~7 ms (2 CPU cores). Same parameters, so checkpoints load unchanged.
    """
    kh, kw = conv.kernel_size
    if (conv.padding != "SAME" or conv.strides not in (1, (1, 1)) or conv.kernel_dilation not in (1, (1, 1))
            or conv.input_dilation not in (1, (1, 1)) or conv.feature_group_count != 1 or not kh % 2 or not kw % 2):
        return conv(x)
    _, h, w, _ = x.shape
    kernel = conv.kernel[...]
    padded = jnp.pad(x, ((0, 0), (kh // 2, kh // 2), (kw // 2, kw // 2), (0, 0)))
    out = sum(padded[:, dy : dy + h, dx : dx + w] * kernel[dy, dx, 0] for dy in range(kh) for dx in range(kw))
    return out if conv.bias is None else out + conv.bias[...]


def _pool_window(x: jax.Array) -> jax.Array:
    return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")


@jax.custom_vjp
def _pool(x: jax.Array) -> jax.Array:
    """2x2 max-pool: the forward pass as a max of four strided slices, the gradient of ``reduce_window``.

    Forward: the same values as ``reduce_window`` (max is exact), but XLA:CPU fuses a
    ``reduce_window`` into the next convolution (a YNNPACK fusion) that ran the 544 px tile's
    16 -> 32 channel pool+conv in ~20 ms instead of ~12 ms; with slices the whole mask U-Net
    tile took 213 instead of 238 ms (2 CPU cores, interleaved medians).

    Gradient: ``reduce_window``'s, which routes to one arg-max per window. Not a plain
    ``reshape(...).max(axes)``: the gradient of a max-reduction divides by the number of
    elements equal to the maximum, and under XLA:CPU fusion the recomputed operand need not
    compare equal to the forward maximum (0 matches, 0/0 = NaN). With GroupNorm before the pool
    this turned every gradient of the first level into NaN at the first jitted step.
    """
    return _pool_slices(x)


def _pool_slices(x: jax.Array) -> jax.Array:
    return jnp.maximum(jnp.maximum(x[:, 0::2, 0::2], x[:, 0::2, 1::2]), jnp.maximum(x[:, 1::2, 0::2], x[:, 1::2, 1::2]))


def _pool_fwd(x: jax.Array) -> tuple[jax.Array, jax.Array]:
    return _pool_slices(x), x


def _pool_bwd(x: jax.Array, grad: jax.Array) -> tuple[jax.Array]:
    return jax.vjp(_pool_window, x)[1](grad)


_pool.defvjp(_pool_fwd, _pool_bwd)


def _upsample(x: jax.Array) -> jax.Array:
    n, h, w, c = x.shape
    x = jnp.broadcast_to(x[:, :, None, :, None, :], (n, h, 2, w, 2, c))
    return x.reshape(n, 2 * h, 2 * w, c)


class UNet(nnx.Module):
    """Encoder/decoder with skips: (N, H, W, in_channels) -> logits (N, H, W, out_channels)."""

    def __init__(self, config: UNetConfig, rngs: nnx.Rngs):
        self.config = config
        widths = config.widths
        self.down = nnx.List()
        c_in = config.in_channels
        for width in widths:
            self.down.append(ConvBlock(c_in, width, config, rngs))
            c_in = width
        self.project = nnx.List()
        self.up = nnx.List()
        for level in range(len(widths) - 1):  # index = destination level
            width = widths[level]
            self.project.append(nnx.Conv(widths[level + 1], width, (1, 1), kernel_init=_LINEAR_INIT, rngs=rngs))
            first_in = 2 * width if config.skip == "concat" else width
            self.up.append(ConvBlock(first_in, width, config, rngs))
        self.head = nnx.Conv(
            widths[0], config.out_channels, (1, 1), kernel_init=_LINEAR_INIT,
            bias_init=nnx.initializers.constant(config.head_bias), rngs=rngs,
        )

    def __call__(self, x: jax.Array) -> jax.Array:
        m = self.config.multiple
        if x.shape[1] % m or x.shape[2] % m:
            raise ValueError(f"U-Net input {x.shape[1]}x{x.shape[2]} is not a multiple of {m}; pad it first")
        skips = []
        for level, block in enumerate(self.down):
            x = block(x)
            if level < len(self.down) - 1:
                skips.append(x)
                x = _pool(x)
        for level in range(len(skips) - 1, -1, -1):
            x = _upsample(self.project[level](x))
            x = jnp.concatenate([x, skips[level]], axis=-1) if self.config.skip == "concat" else x + skips[level]
            x = self.up[level](x)
        return self.head(x)


def _host_value(path: tuple, shape: tuple[int, ...], rng: np.random.Generator, config: UNetConfig) -> np.ndarray:
    """The value :class:`UNet`'s own initialisers would draw (same distributions), from numpy."""
    name, top = path[-1], path[0]
    if name == "kernel":
        gain = 1.0 if top in ("project", "head") else 2.0  # He for ReLU convs, LeCun for linear 1x1s
        return rng.standard_normal(shape) * np.sqrt(gain / np.prod(shape[:-1]))
    if name == "scale":
        return np.ones(shape)
    if name == "bias":
        return np.full(shape, config.head_bias if top == "head" else 0.0)
    raise ValueError(f"no initialiser for U-Net variable {'/'.join(map(str, path))}")


def new_unet(config: UNetConfig, seed: int = 0) -> UNet:
    """A freshly initialised U-Net in ~0.1 s, deterministic in ``seed`` on every machine.

    Why not ``UNet(config, nnx.Rngs(seed))``: every random initialiser call is a separate XLA
    compilation of the threefry generator on CPU, about 0.5-1 s per parameter shape (10-30 s
    for this model, on every training start and in every test). Here the module is built
    abstractly (``nnx.eval_shape``, no compute) and filled from numpy.
    """
    model = nnx.eval_shape(lambda: UNet(config, nnx.Rngs(0)))
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0x0E7]))
    flat = nnx.to_flat_state(nnx.state(model))
    for path, var in flat:
        abstract = var.get_value()
        var.set_value(jnp.asarray(_host_value(path, abstract.shape, rng, config), dtype=abstract.dtype))
    nnx.update(model, nnx.from_flat_state(flat))
    return model


def build_unet(arch: dict[str, Any]) -> UNet:
    """An *abstract* U-Net for a checkpoint header's ``arch`` dict: shapes only, no compute.

    Meant for :func:`restore_cli.models.checkpoint.load_model`, which then overwrites every
    variable (and fails if one is missing), so nothing is initialised just to be thrown away.
    """
    return nnx.eval_shape(lambda: UNet(UNetConfig.from_dict(arch), nnx.Rngs(0)))


def parameter_count(model: nnx.Module) -> int:
    return sum(int(x.size) for x in jax.tree.leaves(nnx.state(model, nnx.Param)))
