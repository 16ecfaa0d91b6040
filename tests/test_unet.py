"""The mask U-Net: config round trip, shapes (odd sizes through infer_tiled), fast deterministic init."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from restore_cli.models.checkpoint import load_into, model_arrays
from restore_cli.models.unet import (
    UNetConfig, _conv_one_channel, _pool, _pool_window, build_unet, new_unet, parameter_count,
)
from restore_cli.restoration.tiling import infer_tiled

TINY = UNetConfig(widths=(4, 8, 8), norm="none")


def test_config_round_trip_and_multiple():
    config = UNetConfig(widths=(8, 16, 32), norm="group", groups=4, skip="concat")
    assert config.multiple == 4
    assert UNetConfig.from_dict(config.to_dict()) == config
    assert UNetConfig().multiple == 16
    assert UNetConfig(skip="concat").flops_per_pixel() > UNetConfig().flops_per_pixel() > 0


@pytest.mark.parametrize("bad", [{"norm": "batch"}, {"skip": "sum"}, {"widths": ()}, {"widths": (6, 8), "groups": 4}])
def test_config_rejects_nonsense(bad):
    with pytest.raises(ValueError):
        UNetConfig(**bad)


def test_from_dict_rejects_unknown_keys():
    with pytest.raises(ValueError, match="unknown"):
        UNetConfig.from_dict({**TINY.to_dict(), "attention": True})


def test_forward_shape_and_size_check():
    model = new_unet(TINY, seed=0)
    out = model(jnp.zeros((2, 16, 24, 1)))
    assert out.shape == (2, 16, 24, 1)
    with pytest.raises(ValueError, match="multiple of 4"):
        model(jnp.zeros((1, 18, 24, 1)))


def test_odd_size_through_infer_tiled():
    model = new_unet(TINY, seed=0)
    image = np.random.default_rng(0).random((37, 53, 1), dtype=np.float32)
    out = infer_tiled(lambda t: np.asarray(model(jnp.asarray(t))), image, tile=32, overlap=8, multiple=TINY.multiple)
    assert out.shape == (37, 53, 1) and np.isfinite(out).all()


def test_new_unet_is_deterministic_and_matches_module_init_statistics():
    a, b, c = new_unet(TINY, 3), new_unet(TINY, 3), new_unet(TINY, 4)
    arrays_a, arrays_b, arrays_c = model_arrays(a), model_arrays(b), model_arrays(c)
    assert all(np.array_equal(arrays_a[k], arrays_b[k]) for k in arrays_a)
    assert not np.array_equal(arrays_a["down/1/convs/0/kernel"], arrays_c["down/1/convs/0/kernel"])
    assert arrays_a.keys() == {"/".join(map(str, p)) for p, _ in nnx.to_flat_state(nnx.state(build_unet(TINY.to_dict())))}
    assert np.allclose(arrays_a["head/bias"], TINY.head_bias)
    assert parameter_count(a) == sum(v.size for v in arrays_a.values())
    # The statistics UNet's own initialisers give: He normal (2 / fan-in) for the ReLU convolutions,
    # LeCun (1 / fan-in) for the linear 1x1 projections and head, zero biases elsewhere.
    wide = model_arrays(new_unet(UNetConfig(widths=(8, 16, 32), norm="none"), 0))
    checked = 0
    for name, value in wide.items():
        if name.endswith("kernel") and value.size >= 1000:
            gain = 1.0 if name.split("/")[0] in ("project", "head") else 2.0
            expected = np.sqrt(gain / np.prod(value.shape[:-1]))
            assert abs(value.std() / expected - 1) < 0.1 and abs(value.mean()) < 0.1 * expected, name
            checked += 1
        elif name.endswith("bias") and not name.startswith("head"):
            assert not value.any(), name
    assert checked >= 4


def test_build_unet_is_abstract_until_loaded():
    source = new_unet(TINY, 1)
    target = build_unet(TINY.to_dict())
    load_into(target, model_arrays(source))
    x = jnp.asarray(np.random.default_rng(1).random((1, 8, 8, 1), dtype=np.float32))
    assert np.array_equal(np.asarray(source(x)), np.asarray(target(x)))


def test_fast_first_conv_and_pool_match_the_plain_ops():
    """The CPU shortcuts (one-channel conv as multiply-adds, pool as slices) compute what nnx.Conv and
    reduce_window compute, and the pool's gradient is still reduce_window's (one arg-max per window)."""
    conv = nnx.Conv(1, 8, (3, 3), rngs=nnx.Rngs(0))
    x = jax.random.uniform(jax.random.key(1), (2, 17, 23, 1))
    np.testing.assert_allclose(np.asarray(_conv_one_channel(conv, x)), np.asarray(conv(x)), rtol=1e-5, atol=1e-5)
    y = jax.nn.relu(jax.random.normal(jax.random.key(2), (2, 16, 24, 3)))  # ReLU: many tied zeros
    np.testing.assert_array_equal(np.asarray(_pool(y)), np.asarray(_pool_window(y)))
    grad = jax.grad(lambda v: (_pool(v) ** 2).sum())(y)
    np.testing.assert_array_equal(np.asarray(grad), np.asarray(jax.grad(lambda v: (_pool_window(v) ** 2).sum())(y)))


def test_damaged_weights_are_refused_not_restored_with(tmp_path):
    """A byte changed after writing: the checksum catches it; a file without one (written before it
    existed) is still refused where a weight is NaN. Before, such a file restored images to black."""
    from safetensors.numpy import save_file

    from restore_cli.errors import CheckpointError
    from restore_cli.models.checkpoint import read_checkpoint, save_checkpoint

    arrays = {"a/kernel": np.arange(12, dtype=np.float32).reshape(3, 4), "b/bias": np.ones(5, np.float32)}
    good = tmp_path / "good.safetensors"
    save_checkpoint(good, arrays, {"kind": "test"})
    loaded, header = read_checkpoint(good)
    assert header["kind"] == "test" and all(np.array_equal(loaded[k], v) for k, v in arrays.items())
    data = bytearray(good.read_bytes())
    data[-1] ^= 0x01  # the last weight byte: still a finite float, now a different one
    flipped = tmp_path / "flipped.safetensors"
    flipped.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="flipped.safetensors: damaged .*checksum"):
        read_checkpoint(flipped)

    old = tmp_path / "old.safetensors"  # as save_checkpoint wrote them before the checksum
    nan = {**arrays, "b/bias": np.array([1, np.nan, 1, 1, 1], np.float32)}
    save_file(nan, str(old), metadata={"format": "restore-checkpoint/1", "header": '{"kind": "test"}'})
    with pytest.raises(CheckpointError, match="old.safetensors: damaged \\(weight b/bias is not finite\\)"):
        read_checkpoint(old)
