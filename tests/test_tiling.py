"""infer_tiled: tiled inference equals whole-image inference, any size works, shapes never change."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from restore_cli.restoration.tiling import infer_tiled, tile_plan


def smooth_image(size: int, channels: int = 1, seed: int = 0) -> np.ndarray:
    """A photo-like test image: smooth gradients plus fine detail, in [0, 1]."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    base = 0.5 + 0.3 * np.sin(6 * x + 3 * y)[:, :, None] + 0.1 * rng.standard_normal((size, size, channels))
    return np.clip(base, 0, 1).astype(np.float32)


class TinyConvNet(nnx.Module):
    """Three 3x3 convolutions (receptive radius 3), random weights: a stand-in for any CNN."""

    def __init__(self, rngs: nnx.Rngs):
        self.convs = nnx.List([nnx.Conv(1, 8, (3, 3), rngs=rngs), nnx.Conv(8, 8, (3, 3), rngs=rngs),
                               nnx.Conv(8, 1, (3, 3), rngs=rngs)])

    def __call__(self, x: jax.Array) -> jax.Array:
        for i, conv in enumerate(self.convs):
            x = conv(x)
            x = jnp.tanh(x) if i < 2 else jax.nn.sigmoid(x)
        return x


def numpy_weights(model: nnx.Module, seed: int = 0, scale: float = 0.3) -> None:
    """Fill an abstract (eval_shape) model with random numpy weights: no per-shape XLA init kernels."""
    rng = np.random.default_rng(seed)
    flat = nnx.to_flat_state(nnx.state(model))
    for _path, var in flat:
        var.set_value(jnp.asarray(rng.normal(0, scale, var.get_value().shape).astype(np.float32)))
    nnx.update(model, nnx.from_flat_state(flat))


def jitted(model: nnx.Module) -> tuple:
    graphdef, state = nnx.split(model)
    traces = []

    @jax.jit
    def apply(tiles):
        traces.append(tiles.shape)
        return nnx.merge(graphdef, state)(tiles)

    return (lambda tiles: np.asarray(apply(jnp.asarray(tiles)))), traces


#: Tile edges saw the network's zero padding; infer_tiled must not let them through (seams).


@pytest.fixture(scope="module")
def conv_net():
    model = nnx.eval_shape(lambda: TinyConvNet(nnx.Rngs(0)))
    numpy_weights(model)
    return jitted(model)


def test_tiled_equals_untiled_for_a_conv_net(conv_net) -> None:
    fn, _ = conv_net
    image = smooth_image(512)
    whole = infer_tiled(fn, image, tile=512, overlap=32, multiple=16)
    tiled = infer_tiled(fn, image, tile=128, overlap=32, multiple=16, batch=3)
    assert whole.shape == tiled.shape == (512, 512, 1)
    # Receptive radius 3, well inside the blended overlap: every kept pixel saw what it sees in the
    # whole image, so only float rounding may differ (a seam or a misplaced tile would be ~0.1).
    assert np.abs(whole - tiled).max() <= 1e-5


def test_tiled_equals_untiled_for_the_unet() -> None:
    from restore_cli.models.unet import UNetConfig, build_unet

    config = UNetConfig(widths=(4, 8, 16), norm="none")
    model = build_unet(config.to_dict())
    numpy_weights(model, scale=0.2)
    fn, _ = jitted(model)
    image = smooth_image(256)
    whole = infer_tiled(lambda t: jax.nn.sigmoid(fn(t)), image, tile=256, overlap=32, multiple=config.multiple)
    tiled = infer_tiled(lambda t: jax.nn.sigmoid(fn(t)), image, tile=128, overlap=32, multiple=config.multiple)
    # The U-Net sees further than the overlap, so tiles differ slightly: the README's 1/255 bound.
    assert np.abs(whole - tiled).max() <= 1 / 255


def test_any_size_works_and_compiles_once(conv_net) -> None:
    fn, traces = conv_net
    before = len(traces)
    for height, width in [(1, 1), (298, 450), (17, 300), (128, 128)]:
        image = smooth_image(max(height, width))[:height, :width]
        out = infer_tiled(fn, image, tile=128, overlap=32, multiple=16, batch=2)
        assert out.shape == (height, width, 1)
        assert np.isfinite(out).all()
    assert len(traces) - before <= 1  # one (batch, tile, tile, C) shape for every image size


def test_identity_round_trips_exactly() -> None:
    image = smooth_image(300, channels=3)[:211, :300]
    out = infer_tiled(lambda t: t, image, tile=64, overlap=16, multiple=16, batch=4)
    assert np.allclose(out, image, atol=1e-6)


def test_tile_plan_covers_the_image() -> None:
    padded_h, padded_w, origins = tile_plan(298, 450, tile=128, overlap=32, multiple=16)
    assert padded_h >= 298 and padded_w >= 450
    covered = np.zeros((padded_h, padded_w), bool)
    for y, x in origins:
        covered[y : y + 128, x : x + 128] = True
    assert covered.all()


def test_large_tiles_are_picked_only_where_they_compute_less(conv_net) -> None:
    from restore_cli.restoration.tiling import cheapest_tile, large_tile

    assert large_tile(256, 32) == 544
    assert cheapest_tile(512, 512, (256, 544), 32, 16) == 544  # one tile instead of nine
    assert cheapest_tile(256, 256, (256, 544), 32, 16) == 256  # one small tile, no padding waste
    assert cheapest_tile(6000, 4000, (256, 544), 32, 16) == 544  # less overlap on a big scan
    fn, traces = conv_net
    images = [smooth_image(size) for size in (100, 250, 300)]
    wholes = [infer_tiled(fn, image, tile=round_up16(len(image)), overlap=32, multiple=16) for image in images]
    before = len(traces)
    shapes = []
    for image, whole in zip(images, wholes):
        out = infer_tiled(lambda t: (shapes.append(t.shape[1]), fn(t))[1], image, tile=128, overlap=32,
                          multiple=16, large=True)
        assert out.shape == whole.shape and np.abs(out - whole).max() <= 1e-5  # radius 3: exact up to rounding
    assert set(shapes) == {128, 288} and len(traces) - before <= 2  # two tile sizes: two compilations


def round_up16(size: int) -> int:
    return -(-size // 16) * 16


def test_tile_progress_reports_every_pass_while_active_with_its_name() -> None:
    from restore_cli.restoration.tiling import named_pass, tile_progress

    image = np.random.default_rng(0).random((100, 150, 1), dtype=np.float32)
    seen: list[tuple[int, int, str | None]] = []
    with tile_progress(lambda done, total, name: seen.append((done, total, name))):
        infer_tiled(lambda t: t, image, tile=64, overlap=16, multiple=16, batch=4)
        with named_pass("network"):
            infer_tiled(lambda t: t, image, tile=64, overlap=16, multiple=16, batch=4)
    infer_tiled(lambda t: t, image, tile=64, overlap=16, multiple=16, batch=4)  # outside: not reported
    total = len(tile_plan(100, 150, 64, 16, 16)[2])
    counts = [(min(n, total), total) for n in range(4, total + 4, 4)]
    assert seen == [(*c, None) for c in counts] + [(*c, "network") for c in counts]
