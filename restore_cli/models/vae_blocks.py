"""Building blocks shared by the VAE family (:mod:`.vae`) and the latent translation model (:mod:`.translation`).

Why these pieces and not others:

* **No normalisation layers.** BatchNorm would make a sample's output depend on its batch
  (and on how the batch is split across devices), so the data-parallel step would no longer
  equal the single-device one, and a single inference tile would behave unlike training.
* **Pixel (un)shuffle instead of strided full-resolution convs** for the translation model:
  ``pixel_unshuffle(x, 4)`` moves each 4x4 block into channels at zero FLOPs, so no conv ever
  runs at full resolution. On a 2-core CPU that is the difference between hours and days.
* **Noise comes from an nnx rng stream passed in**, never stored in the model, so a
  checkpoint holds parameters only and inference (``rngs=None``) uses the posterior mean.
* **Optional rematerialisation** (``remat=True``) recomputes a residual block's activations in
  the backward pass; it pays only for big full-resolution maps (the ``cr6`` 256x256 runs),
  so it is off for the small-crop configs, where it would just cost ~30 % more FLOPs.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

_HE = nnx.initializers.he_normal()


def pixel_unshuffle(x: jax.Array, r: int) -> jax.Array:
    """(B, H, W, C) -> (B, H/r, W/r, C*r*r): every r x r block becomes channels (space-to-depth)."""
    b, h, w, c = x.shape
    x = x.reshape(b, h // r, r, w // r, r, c).transpose(0, 1, 3, 2, 4, 5)
    return x.reshape(b, h // r, w // r, r * r * c)


def pixel_shuffle(x: jax.Array, r: int) -> jax.Array:
    """Inverse of :func:`pixel_unshuffle` (depth-to-space)."""
    b, h, w, c = x.shape
    x = x.reshape(b, h, w, r, r, c // (r * r)).transpose(0, 1, 3, 2, 4, 5)
    return x.reshape(b, h * r, w * r, c // (r * r))


def avg_pool(x: jax.Array, r: int) -> jax.Array:
    """Mean over r x r blocks: a defect mask becomes the defect *fraction* of each latent cell."""
    b, h, w, c = x.shape
    return x.reshape(b, h // r, r, w // r, r, c).mean(axis=(2, 4))


def reparameterize(mean: jax.Array, log_var: jax.Array, rngs: nnx.Rngs | None) -> jax.Array:
    """z = mean + exp(log_var / 2) * eps with eps ~ N(0, 1) from the ``noise`` stream; the mean if rngs is None."""
    if rngs is None:
        return mean
    eps = jax.random.normal(rngs.noise(), mean.shape, mean.dtype)
    return mean + jnp.exp(0.5 * log_var) * eps


def kl_divergence(mean: jax.Array, log_var: jax.Array) -> jax.Array:
    """KL(N(mean, exp(log_var)) || N(0, 1)) summed over every non-batch axis: shape (B,).

    Closed form per dimension: 0.5 * (sigma^2 + mu^2 - 1 - log sigma^2), zero exactly at N(0, 1).
    """
    per_dim = 0.5 * (jnp.exp(log_var) + jnp.square(mean) - 1.0 - log_var)
    return per_dim.reshape(per_dim.shape[0], -1).sum(axis=1)


def conv(c_in: int, c_out: int, rngs: nnx.Rngs, kernel: int = 3, stride: int = 1, zero: bool = False) -> nnx.Conv:
    """A SAME-padded conv; ``zero=True`` starts it at zero so a residual branch begins as the identity."""
    init = nnx.initializers.zeros_init() if zero else _HE
    return nnx.Conv(c_in, c_out, (kernel, kernel), strides=(stride, stride), padding="SAME", kernel_init=init, rngs=rngs)


class ConvTranspose2x(nnx.Module):
    """A 3x3 stride-2 SAME transposed conv (doubles height and width), computed as a sub-pixel conv.

    Same maths and parameters (``kernel`` (3, 3, c_in, c_out), ``bias``) as
    ``nnx.ConvTranspose(c_in, c_out, (3, 3), strides=(2, 2), padding="SAME")`` (to float
    rounding; tested), but XLA:CPU runs a transposed conv, and above all its gradient, on a slow
    generic path: on this 2-core CPU, batch 32, 32 -> 32 channels, 128 -> 256 px, forward +
    parameter gradient took 28.8 s with ``nnx.ConvTranspose`` and 4.5 s with this (a whole
    ``cr6`` ``simple`` step: ~80 s before, ~30 s after, from the ``make cr6`` log).

    How: output pixel (2m + p, 2n + q) only sees input pixels m - 1 and m (rows; likewise
    columns) through the kernel taps of its phase p: taps (0, 2) for p = 0, tap 1 for p = 1.
    So one stride-1 2x2 conv yields the four phases as 4 x c_out channels, and a pixel shuffle
    interleaves them.
    """

    _TAPS = ((0, 2), (None, 1))  # [phase][position in the 2x2 window (offset -1, 0)] -> kernel index

    def __init__(self, c_in: int, c_out: int, rngs: nnx.Rngs):
        self.kernel = nnx.Param(_HE(rngs.params(), (3, 3, c_in, c_out), jnp.float32))
        self.bias = nnx.Param(jnp.zeros((c_out,), jnp.float32))

    def phase_kernel(self) -> jax.Array:
        """(2, 2, c_in, 4 * c_out): the four phases' 2x2 kernels, phase-major, as pixel_shuffle reads them."""
        w = self.kernel[...]
        zero = jnp.zeros_like(w[0, 0])
        phases = []
        for p in (0, 1):
            for q in (0, 1):
                taps = [[zero if a is None or b is None else w[a, b] for b in self._TAPS[q]] for a in self._TAPS[p]]
                phases.append(jnp.stack([jnp.stack(row) for row in taps]))
        return jnp.concatenate(phases, axis=-1)

    def __call__(self, x: jax.Array) -> jax.Array:
        y = jax.lax.conv_general_dilated(x, self.phase_kernel(), (1, 1), ((1, 0), (1, 0)),
                                         dimension_numbers=("NHWC", "HWIO", "NHWC"))
        return pixel_shuffle(y, 2) + self.bias[...]


def conv_transpose(c_in: int, c_out: int, rngs: nnx.Rngs) -> ConvTranspose2x:
    """A 3x3 stride-2 transposed conv: doubles height and width."""
    return ConvTranspose2x(c_in, c_out, rngs)


def _resblock_forward(block: ResBlock, x: jax.Array) -> jax.Array:
    h = block.conv2(jax.nn.relu(block.conv1(x)))
    shortcut = block.shortcut(x) if block.shortcut is not None else x
    out = shortcut + h
    return jax.nn.relu(out) if block.post_relu else out


class ResBlock(nnx.Module):
    """Two 3x3 convs plus a shortcut (a 1x1 conv when the width changes).

    ``post_relu=True`` is the original family's block (ReLU after the sum); the translation model
    uses ``post_relu=False`` with a zero-initialised second conv (EDSR style), so a stack of blocks
    starts as the identity and deep stacks train without normalisation layers.
    """

    def __init__(self, c_in: int, c_out: int, rngs: nnx.Rngs, *, post_relu: bool = True, remat: bool = False):
        self.conv1 = conv(c_in, c_out, rngs)
        self.conv2 = conv(c_out, c_out, rngs, zero=not post_relu)
        self.shortcut = conv(c_in, c_out, rngs, kernel=1) if c_in != c_out else None
        self.post_relu = post_relu
        self.remat = remat

    def __call__(self, x: jax.Array) -> jax.Array:
        if self.remat:
            return nnx.remat(_resblock_forward)(self, x)
        return _resblock_forward(self, x)


class ResStack(nnx.Module):
    """``n`` residual blocks of constant width."""

    def __init__(self, width: int, n: int, rngs: nnx.Rngs, *, post_relu: bool = False, remat: bool = False):
        self.blocks = nnx.List([ResBlock(width, width, rngs, post_relu=post_relu, remat=remat) for _ in range(n)])

    def __call__(self, x: jax.Array) -> jax.Array:
        for block in self.blocks:
            x = block(x)
        return x


def parameter_count(model: nnx.Module) -> int:
    return sum(int(x.size) for x in jax.tree.leaves(nnx.state(model, nnx.Param)))
