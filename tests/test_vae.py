"""VAE family and translation model: shapes, KL, schedules, configs, domain weights, checkpoints, inference."""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from scipy import ndimage

from restore_cli.errors import UsageError
from restore_cli.models.checkpoint import load_into, model_arrays, save_checkpoint
from restore_cli.models.translation import MaskedMapping, TranslationConfig
from restore_cli.models.vae import ARCHS, KIND, VAEConfig, build_model, load_vae
from restore_cli.models.vae_blocks import ConvTranspose2x, kl_divergence, pixel_shuffle, pixel_unshuffle, reparameterize
from restore_cli.restoration.tiling import tile_progress
from restore_cli.restoration.vae_method import (
    VAERestorer, apply_domain_weights, noise_gate, parse_domain_weights, restore_pixels,
)
from restore_cli.train import vae_config
from restore_cli.train.schedules import beta_schedule, lr_schedule, make_optimizer

TINY_FAMILY = dict(image_size=32, widths=(8, 16, 16), latent_dim=16, latent_channels=8)
TINY_TRANSLATION = TranslationConfig(width=8, latent_channels=4, enc_blocks=1, dec_blocks=1, map_blocks=1)


def numpy_model(arch: dict, seed: int = 0, scale: float = 0.1):
    """A model with random weights drawn by numpy: eager JAX initialisation compiles one kernel per
    parameter shape (tens of seconds on a busy 2-core machine); shape tests do not need it."""
    model = build_model(arch, abstract=True)
    rng = np.random.default_rng(seed)
    arrays = {"/".join(map(str, path)): rng.normal(0, scale, var.get_value().shape).astype(np.float32)
              for path, var in nnx.to_flat_state(nnx.state(model))}
    load_into(model, arrays)
    return model


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("latent", ["vector", "spatial"])
def test_family_shapes(arch, latent):
    model = numpy_model(VAEConfig(arch=arch, latent=latent, **TINY_FAMILY).to_dict())
    x = jnp.full((2, 32, 32, 1), 0.5)
    # one compilation instead of one per eager op (much faster on a busy 2-core machine)
    (recon, mean, log_var), restored = nnx.jit(lambda m, x, r: (m(x, "Z", r), m.restore(x)))(model, x, nnx.Rngs(noise=1))
    assert recon.shape == restored.shape == (2, 32, 32, 1)
    assert mean.shape == log_var.shape == ((2, 16) if latent == "vector" else (2, 4, 4, 8))
    assert float(recon.min()) >= 0.0 and float(recon.max()) <= 1.0  # sigmoid output
    assert set(model.encoders) == set(model.decoders) == {"X", "Y", "Z"}
    assert (model.mapping_t is not None) == (arch == "resblock")


def test_translation_shapes():
    model = numpy_model(TINY_TRANSLATION.to_dict())
    x = jnp.linspace(0, 1, 2 * 16 * 24).reshape(2, 16, 24, 1)
    mask = jnp.zeros_like(x).at[:, 4:8].set(1.0)

    @nnx.jit
    def run(model, x, mask, rngs):
        recon, mean, _ = model.vae_yz(x, rngs)
        return recon, mean, model.restore(x, mask)

    recon, mean, restored = run(model, x, mask, nnx.Rngs(noise=0))
    assert recon.shape == restored.shape == x.shape and mean.shape == (2, 4, 6, 4)


def test_mapping_starts_as_the_identity():
    mapping = MaskedMapping(TINY_TRANSLATION, nnx.Rngs(params=0))
    z = jnp.linspace(-1, 1, 2 * 4 * 6 * 4).reshape(2, 4, 6, 4)
    mask = jnp.zeros((2, 16, 24, 1)).at[:, 4:8].set(1.0)
    np.testing.assert_allclose(nnx.jit(lambda m, z, k: m(z, k))(mapping, z, mask), z)  # z -> z + 0


def test_pixel_shuffle_inverts_unshuffle():
    x = jnp.arange(2 * 8 * 12 * 3, dtype=jnp.float32).reshape(2, 8, 12, 3)
    packed = pixel_unshuffle(x, 4)
    assert packed.shape == (2, 2, 3, 48)
    np.testing.assert_array_equal(pixel_shuffle(packed, 4), x)
    np.testing.assert_array_equal(packed[0, 0, 0, :3], x[0, 0, 0])  # the block's first pixel comes first


@pytest.mark.parametrize("size", [(4, 6), (5, 3)])
def test_sub_pixel_transposed_conv_equals_flax_conv_transpose(size):
    rngs = nnx.Rngs(0)
    reference = nnx.ConvTranspose(3, 5, (3, 3), strides=(2, 2), padding="SAME", rngs=rngs)
    ours = ConvTranspose2x(3, 5, rngs)
    reference.kernel[...] = ours.kernel[...]
    reference.bias[...] = ours.bias[...] = jnp.linspace(-1.0, 1.0, 5)
    x = jnp.asarray(np.random.default_rng(0).normal(size=(2, *size, 3)), jnp.float32)
    assert ours(x).shape == (2, 2 * size[0], 2 * size[1], 5)
    np.testing.assert_allclose(ours(x), reference(x), atol=1e-5)


def test_kl_of_known_gaussians():
    zeros = jnp.zeros((3, 5))
    np.testing.assert_allclose(kl_divergence(zeros, zeros), 0.0, atol=1e-7)  # N(0, 1) against itself
    mean, var = 1.5, 0.25
    expected = 0.5 * (var + mean**2 - 1.0 - math.log(var)) * 5
    got = kl_divergence(jnp.full((3, 5), mean), jnp.full((3, 5), math.log(var)))
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    assert got.shape == (3,)


def test_reparameterize_uses_the_noise_stream_and_the_mean_without_it():
    mean, log_var = jnp.ones((4000,)), jnp.full((4000,), math.log(4.0))
    np.testing.assert_array_equal(reparameterize(mean, log_var, None), mean)
    z = reparameterize(mean, log_var, nnx.Rngs(noise=3))
    assert abs(float(z.mean()) - 1.0) < 0.15 and abs(float(z.std()) - 2.0) < 0.15
    np.testing.assert_array_equal(z, reparameterize(mean, log_var, nnx.Rngs(noise=3)))


@pytest.mark.parametrize(
    "shape, expected",
    [
        # 10 epochs, raised every 2: 4 raises of 0.25 each from 0 to 1 (epochs 2, 4, 6, 8)
        ("linear-step", {0: 0.0, 1.9: 0.0, 2: 0.25, 5: 0.5, 8: 1.0, 9.9: 1.0}),
        ("cosine", {0: 0.0, 5: 0.5, 10: 1.0}),
        ("sigmoid", {0: 0.0, 5: 0.5, 10: 1.0}),
        # cycles of 2 epochs: linear rise over the first epoch, then held
        ("cyclic", {0: 0.0, 0.5: 0.5, 1: 1.0, 1.5: 1.0, 2: 0.0, 2.5: 0.5}),
    ],
)
def test_beta_schedules(shape, expected):
    beta = beta_schedule(shape, 0.0, 1.0, epochs=10, anneal_epochs=2)
    for epoch, value in expected.items():
        assert beta(epoch) == pytest.approx(value, abs=1e-6), (shape, epoch)
    values = [beta(e / 10) for e in range(100)]
    if shape != "cyclic":
        assert values == sorted(values)  # monotone rise


def test_original_cr6_beta_and_bad_schedules():
    beta = beta_schedule("linear-step", 0.001, 1.0, epochs=30, anneal_epochs=3)
    assert beta(0) == pytest.approx(0.001, rel=1e-4) and beta(27) == pytest.approx(1.0)
    assert beta(3) == pytest.approx(0.001 + 0.999 / 9, rel=1e-5)
    with pytest.raises(UsageError, match="unknown shape"):
        beta_schedule("exponential", 0, 1, 10, 2)
    with pytest.raises(UsageError):
        beta_schedule("cosine", 0, 1, 10, 0)


def test_lr_schedule_and_optimizers():
    sched = lr_schedule(1e-3, total_steps=100, warmup_steps=10)
    assert float(sched(10)) == pytest.approx(1e-3) and float(sched(100)) == pytest.approx(1e-5)
    assert float(sched(0)) < 1e-4
    assert float(lr_schedule(1e-6, 100, decay="constant")(50)) == pytest.approx(1e-6)
    # First update from a gradient of norm 10 at lr 1e-3: the Adam family moves each weight by ~lr
    # whatever the gradient's size; SGD by lr x the clipped gradient (norm 1); AdamW also decays.
    params, grads = jnp.full(4, 100.0), jnp.full(4, 5.0)  # |grads| = 10
    constant = lr_schedule(1e-3, 100, decay="constant")
    first = {}
    for name in ("adam", "adamax", "sgd", "adamw"):
        tx = make_optimizer(name, constant, clip_norm=1.0)
        updates, _ = tx.update(grads, tx.init(params), params)
        first[name] = np.asarray(updates)
    np.testing.assert_allclose(first["adam"], -1e-3, rtol=1e-3)
    np.testing.assert_allclose(first["adamax"], -1e-3, rtol=1e-3)
    np.testing.assert_allclose(first["sgd"], -1e-3 * 0.5, rtol=1e-5)  # clipped to norm 1: 0.5 per weight
    np.testing.assert_allclose(first["adamw"], -1e-3 * (1 + 1e-4 * 100.0), rtol=1e-4)  # 1 % more: the decay
    with pytest.raises(UsageError, match="unknown optimizer"):
        make_optimizer("lion", sched)


def test_presets_and_config_validation():
    for name, preset in vae_config.PRESETS.items():
        assert "Command" in preset.__doc__ and "Result" in preset.__doc__, name
    cr6 = vae_config.resolve("cr6", "resblock")
    assert (cr6.batch, cr6.epochs, cr6.anneal_epochs, cr6.lr, cr6.latent_dim) == (16, 30, 3, 1e-6, 256)
    assert cr6.model_config().latent == "vector"
    assert vae_config.resolve("cr6", None).arch == "simple"
    assert vae_config.resolve("default", None, epochs=3).steps is None
    with pytest.raises(UsageError, match="original family"):
        vae_config.resolve("cr6", "translation")
    with pytest.raises(UsageError, match="multiple of 8"):
        vae_config.resolve("default", "unet", crop=60)
    with pytest.raises(UsageError, match="--optimizer"):
        vae_config.resolve("tiny", None, optimizer="rmsprop")
    with pytest.raises(UsageError, match="not all zero"):
        vae_config.resolve("tiny", None, domain_weights=(0, 0, 0))


def test_domain_weight_parsing():
    assert parse_domain_weights("Y=0.5,Z=0.5") == {"Y": 0.5, "Z": 0.5}
    assert parse_domain_weights(" z = 2 ") == {"Y": 0.0, "Z": 2.0}
    assert parse_domain_weights("Z=0", ("X", "Y", "Z"), missing=1.0) == {"X": 1.0, "Y": 1.0, "Z": 0.0}
    bad = {"W=1": "unknown domain 'W'", "X=1": "clean target", "Y=-1": ">= 0", "Y=nan": ">= 0",
           "Y=0,Z=0": "all zero", "Y": "DOMAIN=WEIGHT", "Y=a": "not a number", "Y=1,Y=2": "twice"}
    for text, message in bad.items():
        with pytest.raises(UsageError, match=message):
            parse_domain_weights(text)


def _constructed_case():
    """A smooth photo, grain everywhere and a bright scratch; the 'restoration' is the clean photo."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:48, 0:48]
    clean = (0.3 + 0.4 * np.sin(xx / 6.0) * np.cos(yy / 9.0) ** 2).astype(np.float32)
    mask = np.zeros((48, 48), bool)
    mask[20:23, 5:43] = True
    degraded = np.clip(clean + rng.normal(0, 0.08, clean.shape), 0, 1).astype(np.float32)
    degraded[mask] = 1.0
    return clean, degraded, mask


def _rmse(a, b, where):
    return float(np.sqrt(np.mean((a[where] - b[where]) ** 2)))


def test_domain_weights_move_the_output_in_the_documented_direction():
    clean, degraded, mask = _constructed_case()
    results = {z: apply_domain_weights(degraded, clean, mask, {"Y": 1.0 - z, "Z": z}) for z in (0.0, 0.25, 0.5, 0.75, 1.0)}
    inside = [_rmse(results[z], clean, mask) for z in sorted(results)]
    outside = [_rmse(results[z], clean, ~mask) for z in sorted(results)]
    assert inside == sorted(inside, reverse=True) and inside[0] > 5 * inside[-1] + 0.1  # Z-heavy repairs defects
    assert outside == sorted(outside) and outside[-1] > 5 * outside[0] + 0.01  # Y-heavy denoises the rest
    np.testing.assert_allclose(results[0.5], clean, atol=1e-6)  # equal weights: the model's output
    np.testing.assert_allclose(results[0.0][mask], degraded[mask])  # Y only: defects left as scanned
    np.testing.assert_allclose(results[1.0][~mask], degraded[~mask])  # Z only: the rest left as scanned


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    model = numpy_model(TINY_TRANSLATION.to_dict())
    path = tmp_path_factory.mktemp("vae") / "vae.safetensors"
    save_checkpoint(path, model_arrays(model), {"kind": KIND, "arch": TINY_TRANSLATION.to_dict()})
    return path, model


def test_checkpoint_round_trip_and_tiled_inference(tiny_checkpoint):
    path, model = tiny_checkpoint
    loaded, header = load_vae(path)
    assert header["arch"]["arch"] == "translation" and "restore_version" in header
    x = jnp.asarray(np.random.default_rng(2).random((1, 32, 32, 1), np.float32))
    restore = nnx.jit(lambda m, x: m.restore(x))
    np.testing.assert_allclose(restore(loaded, x), restore(model, x), rtol=1e-5, atol=1e-6)
    odd = np.random.default_rng(3).random((37, 45), np.float32)  # not a multiple of anything
    # One 64 px tile: the output is the model's on the reflect-padded image, cropped back in place.
    padded = np.pad(odd, ((0, 64 - 37), (0, 64 - 45)), mode="reflect")[None, :, :, None]
    expected = np.clip(restore(model, jnp.asarray(padded)), 0, 1)[0, :37, :45, 0]
    np.testing.assert_allclose(VAERestorer.load(path, tile=64, overlap=8).restore_luma(odd), expected, atol=1e-5)
    restorer = VAERestorer.load(path, tile=32, overlap=8)
    out = restorer.restore_luma(odd)  # 2 x 2 tiles: blended, close to the one-tile output where they agree
    assert out.shape == (37, 45) and np.isfinite(out).all() and np.abs(out - expected).mean() < 0.05
    names = []
    with tile_progress(lambda done, total, name: names.append(name)):
        restorer.restore_luma(np.random.default_rng(4).random((50, 21), np.float32))
    assert restorer.compile_count == 1  # one tile shape, one compilation
    assert set(names) == {"network"}  # what a big scan's progress bar calls this pass


def test_vae_method_falls_back_to_smaller_tiles_on_out_of_memory(tiny_checkpoint):
    from restore_cli.restoration.vae_method import VAEMethod

    path, _ = tiny_checkpoint
    restorer = VAERestorer.load(path, tile=256, overlap=8, large=True)
    apply, shapes = restorer._apply, []

    def small_device(state, tiles):  # a device whose memory holds tiles of at most 128 px
        shapes.append(tiles.shape[1])
        if tiles.shape[1] > 128:
            raise RuntimeError("RESOURCE_EXHAUSTED: Out of memory while trying to allocate")
        return apply(state, tiles)

    restorer._apply = small_device
    method = VAEMethod.__new__(VAEMethod)
    method.restorer = restorer
    image = np.random.default_rng(5).random((510, 505), np.float32)  # one large tile beats 3 x 3 small ones
    out = method.restore_luma(image)
    assert shapes[0] > 256 and shapes[1] == 256 and set(shapes[2:]) == {128}  # the large tile went first, then the tile halved
    assert (restorer.tile, restorer.large) == (128, False)  # and the working tiles stay for the next image
    expected = VAERestorer.load(path, tile=128, overlap=8).restore_luma(image)
    np.testing.assert_allclose(out, expected, atol=1e-6)


def test_restorer_weights_act_where_documented(tiny_checkpoint):
    path, _ = tiny_checkpoint
    restorer = VAERestorer.load(path, tile=32, overlap=8)
    _, degraded, mask = _constructed_case()
    rgb = np.repeat(degraded[:, :, None], 3, axis=2)
    full, _ = restore_pixels(restorer, rgb, mask, {"Y": 1.0, "Z": 1.0})
    z_only, _ = restore_pixels(restorer, rgb, mask, {"Y": 0.0, "Z": 1.0})
    assert full.shape == rgb.shape
    np.testing.assert_allclose(z_only[mask], full[mask], atol=2e-3)  # the defects get the full correction
    np.testing.assert_allclose(z_only[~mask], rgb[~mask], atol=2e-3)  # the rest stays as scanned
    gray, _ = restore_pixels(restorer, degraded[:, :, None], None, {"Y": 1.0, "Z": 0.0})
    assert gray.shape == (48, 48, 1)


def test_defects_are_inpainted_after_the_network_not_handed_to_it():
    clean, degraded, mask = _constructed_case()

    class Identity:  # a "network" that changes nothing and must not be given the mask
        def restore_luma(self, luma, mask=None):
            assert mask is None
            return luma

    out = restore_pixels(Identity(), degraded[:, :, None], mask, {"Y": 1.0, "Z": 1.0})[0][:, :, 0]
    np.testing.assert_allclose(out[~mask], degraded[~mask], atol=1e-6)  # the network's output outside
    assert _rmse(out, clean, mask) < 0.25 * _rmse(degraded, clean, mask)  # the scratch filled from context


def test_the_detector_looks_at_the_networks_output_and_its_mask_is_inpainted():
    clean, degraded, mask = _constructed_case()
    seen = []

    class Denoiser:  # stands in for the network: the scratch stays, the rest is "restored"
        def restore_luma(self, luma, mask=None):
            return np.where(defects, luma, clean)

    defects = mask

    def detect(luma):
        seen.append(luma.copy())
        return mask

    out, used = restore_pixels(Denoiser(), degraded[:, :, None], None, {"Y": 1.0, "Z": 1.0}, detect)
    assert len(seen) == 1 and np.array_equal(seen[0], np.where(mask, degraded, clean))  # not the scan
    assert used is mask
    assert _rmse(out[:, :, 0], clean, mask) < 0.25 * _rmse(degraded, clean, mask)
    _, used = restore_pixels(Denoiser(), degraded[:, :, None], mask, {"Y": 1.0, "Z": 1.0}, detect)
    assert len(seen) == 1 and used is mask  # a mask given (--masks) is used as is: no detection


def test_noise_gate_keeps_a_clean_scan_without_running_the_network_and_lets_it_denoise_a_noisy_one():
    clean, noisy, mask = _constructed_case()  # grain of 20 levels
    scan = np.clip(clean, 0.0, 1.0)
    scan[mask] = 1.0  # the same scratch on a noise-free scan

    class Smoother:  # a "network" that also blurs clean detail
        calls = 0

        def restore_luma(self, luma, mask=None):
            Smoother.calls += 1
            return ndimage.uniform_filter(luma, 5)

    seen = []

    def detect(luma):
        seen.append(luma.copy())
        return mask

    assert noise_gate(scan) == 0.0 and noise_gate(noisy) == 1.0
    out, _ = restore_pixels(Smoother(), scan[:, :, None], None, {"Y": 1.0, "Z": 1.0}, detect)
    np.testing.assert_allclose(out[:, :, 0][~mask], scan[~mask], atol=1e-6)  # clean detail kept as scanned
    assert _rmse(out[:, :, 0], clean, mask) < 0.25 * _rmse(scan, clean, mask)  # the scratch still repaired
    assert Smoother.calls == 0 and np.array_equal(seen[0], scan)  # gate closed: no network, detection on the scan
    out, _ = restore_pixels(Smoother(), noisy[:, :, None], mask, {"Y": 1.0, "Z": 1.0})
    assert Smoother.calls == 1
    np.testing.assert_allclose(out[:, :, 0][~mask], np.clip(ndimage.uniform_filter(noisy, 5), 0, 1)[~mask], atol=1e-6)
    halfway = np.clip(clean + np.random.default_rng(1).normal(0, 5 / 255, clean.shape), 0, 1).astype(np.float32)
    assert 0.0 < noise_gate(halfway) < 1.0


def test_vae_method_in_the_method_table(tiny_checkpoint, tmp_path):
    from restore_cli.errors import CheckpointError
    from restore_cli.restoration import methods

    path, _ = tiny_checkpoint
    settings = methods.MethodSettings(checkpoints=path.parent, user_masks=True, tile=32,
                                      domain_weights="Y=0.25,Z=1")
    method = methods.METHODS["vae"](settings)
    _, degraded, mask = _constructed_case()
    result = method.restore(np.repeat(degraded[:, :, None], 3, axis=2), mask)
    assert result.pixels.shape == (48, 48, 3) and result.mask.sum() == mask.sum()
    assert method.recipe()["domain_weights"] == {"Y": 0.25, "Z": 1.0} and len(method.recipe()["vae_model"]) == 64
    assert method.compile_count() == 1
    with pytest.raises(UsageError, match="unknown domain"):
        methods.METHODS["vae"](methods.MethodSettings(checkpoints=path.parent, user_masks=True, domain_weights="W=1"))
    with pytest.raises(CheckpointError, match="vae.safetensors"):
        methods.METHODS["vae"](methods.MethodSettings(checkpoints=tmp_path, user_masks=True))
    assert methods.METHODS["auto"](methods.MethodSettings(checkpoints=tmp_path, user_masks=True)).name == "auto"


def test_network_methods_average_four_detector_views_and_hybrid_keeps_one(tiny_checkpoint, tmp_path, monkeypatch):
    import shutil

    from restore_cli.restoration import mask_detector, methods

    path, _ = tiny_checkpoint
    shutil.copy(path, tmp_path / path.name)
    (tmp_path / methods.MASK_CHECKPOINT).write_bytes(b"stand-in")  # loading is faked below
    loaded = []

    class FakeDetector:
        repair_threshold, compile_count = 0.95, 0

        def __init__(self, views):
            self.views = views

    monkeypatch.setattr(mask_detector.MaskDetector, "load",
                        classmethod(lambda cls, p, **kw: loaded.append(kw["views"]) or FakeDetector(kw["views"])))

    def views(name, **given):
        method = methods.METHODS[name](methods.MethodSettings(checkpoints=tmp_path, tile=32, **given))
        return loaded[-1], method.recipe().get("mask_views")

    assert views("auto") == (4, 4) and views("vae") == (4, 4)  # the quality methods: four views by default
    assert views("hybrid") == (1, None)  # the fast one: one pass, and its recipe as before views existed
    assert views("auto", mask_views=2) == (2, 2) and views("hybrid", mask_views=8) == (8, 8)  # --mask-views wins
    method = methods.METHODS["auto"](methods.MethodSettings(checkpoints=tmp_path, tile=32, mask_scales=2))
    assert method.recipe()["mask_scales"] == 2 and "mask_scales" not in methods.METHODS["hybrid"](
        methods.MethodSettings(checkpoints=tmp_path, tile=32, mask_scales=0)).recipe()
    # by default the levels follow each image's size, and outputs made with none before are redone
    assert methods.METHODS["hybrid"](methods.MethodSettings(checkpoints=tmp_path, tile=32)).recipe()["mask_scales"] == "auto"
