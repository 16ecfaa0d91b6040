"""Restoration building blocks: colour split, inpainting, the classical pipeline, the method table."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage
from skimage import data
from skimage.draw import disk, line

from restore_cli.errors import CheckpointError, UsageError
from restore_cli.restoration import classical, colour, methods
from restore_cli.restoration.inpaint import inpaint


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / np.mean((np.asarray(a, np.float64) - b) ** 2)))


def damage(clean: np.ndarray, seed: int = 0, contrast: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Draw bright/dark 2 px scratches and dust on (H, W, C) pixels; return (damaged, true mask)."""
    rng = np.random.default_rng(seed)
    h, w = clean.shape[:2]
    mask = np.zeros((h, w), bool)
    value = np.zeros((h, w), np.float32)
    for i in range(5):
        r0, r1 = rng.integers(0, h, 2)
        c0, c1 = rng.integers(0, w - 2, 2)
        for dx in (0, 1):
            rr, cc = line(r0, c0 + dx, r1, c1 + dx)
            mask[rr, cc], value[rr, cc] = True, float(i % 2)
    for i in range(12):
        rr, cc = disk((rng.integers(0, h), rng.integers(0, w)), rng.integers(1, 3), shape=(h, w))
        mask[rr, cc], value[rr, cc] = True, float(i % 2)
    out = clean.copy()
    out[mask] += contrast * (value[mask][:, None] - out[mask])
    return out, mask


def astronaut(size: int = 192) -> np.ndarray:
    return np.ascontiguousarray(data.astronaut()[100 : 100 + size, 150 : 150 + size]).astype(np.float32) / 255


def camera(size: int = 192) -> np.ndarray:
    return (data.camera()[150 : 150 + size, 150 : 150 + size].astype(np.float32) / 255)[:, :, None]


# --------------------------------------------------------------------------- colour


def test_ycc_round_trip_and_gray_luma() -> None:
    rgb = np.random.default_rng(0).random((33, 47, 3), dtype=np.float32)
    back = colour.ycc_to_rgb(colour.rgb_to_ycc(rgb))
    assert np.abs(back - rgb).max() < 1e-5
    gray = np.repeat(rgb[:, :, :1], 3, axis=2)
    ycc = colour.rgb_to_ycc(gray)
    assert np.abs(ycc[:, :, 1:]).max() < 1e-6  # neutral gray has no chroma
    assert np.allclose(ycc[:, :, 0], gray[:, :, 0], atol=1e-6)


def test_out_of_gamut_luma_is_clamped_without_changing_chroma() -> None:
    ycc = colour.rgb_to_ycc(np.array([[[0.9, 0.2, 0.1], [0.1, 0.3, 0.95]]], np.float32))
    ycc[:, :, 0] += 0.5  # brighten far beyond what these saturated colours allow
    rgb = colour.ycc_to_rgb(ycc)
    assert rgb.min() >= 0 and rgb.max() <= 1
    assert np.abs(colour.rgb_to_ycc(rgb)[:, :, 1:] - ycc[:, :, 1:]).max() < 1e-5


# --------------------------------------------------------------------------- inpainting


def test_inpainting_with_the_true_mask_removes_scratches_and_touches_nothing_else() -> None:
    clean = astronaut()
    damaged, mask = damage(clean)
    out = inpaint(damaged, mask, cell=64)
    gain = psnr(out, clean) - psnr(damaged, clean)
    assert gain > 10, f"only {gain:.1f} dB better"
    assert np.array_equal(out[~mask], damaged[~mask])  # outside the mask: bit for bit
    assert np.array_equal(damaged, damage(clean)[0])  # the input was not modified


def test_cells_agree_with_one_big_solve() -> None:
    clean = camera(160)
    damaged, mask = damage(clean, seed=3)
    small = inpaint(damaged, mask, cell=32, margin=16)
    big = inpaint(damaged, mask, cell=4096)
    assert np.abs(small - big).max() < 0.02


def test_a_hole_larger_than_a_cell_is_filled_not_blackened() -> None:
    clean = np.full((200, 200, 1), 0.6, np.float32)
    mask = np.zeros((200, 200), bool)
    mask[40:170, 30:180] = True
    damaged = clean.copy()
    damaged[mask] = 0.0
    out = inpaint(damaged, mask, cell=32)
    assert np.abs(out[mask] - 0.6).max() < 0.02


def test_empty_and_full_masks_change_nothing() -> None:
    img = astronaut(32)
    assert np.array_equal(inpaint(img, np.zeros((32, 32), bool)), img)
    assert np.array_equal(inpaint(img, np.ones((32, 32), bool)), img)


# --------------------------------------------------------------------------- classical


def test_classical_mask_finds_strong_scratches() -> None:
    clean = camera()
    damaged, truth = damage(clean, seed=1)
    visible = truth & (np.abs(damaged - clean)[:, :, 0] > 0.3)
    found = classical.defect_mask(damaged[:, :, 0])
    recall = (found & visible).sum() / visible.sum()
    precision = (found & ndimage.binary_dilation(truth, iterations=2)).sum() / max(found.sum(), 1)
    assert recall > 0.6 and precision > 0.3, (recall, precision)


def test_classical_pipeline_improves_a_noisy_scratched_photo() -> None:
    clean = camera()
    damaged, _ = damage(clean, seed=2)
    noisy = np.clip(damaged + np.random.default_rng(0).normal(0, 0.03, damaged.shape), 0, 1).astype(np.float32)
    out, mask = classical.restore_classical(noisy)
    assert out.shape == noisy.shape and out.dtype == np.float32 and mask.shape == noisy.shape[:2]
    assert psnr(out, clean) > psnr(noisy, clean) + 2


def test_classical_keeps_colour_outside_the_mask() -> None:
    clean = astronaut()
    damaged, _ = damage(clean, seed=4)
    noisy = np.clip(damaged + np.random.default_rng(1).normal(0, 0.02, damaged.shape), 0, 1).astype(np.float32)
    out, mask = classical.restore_classical(noisy)
    before, after = colour.rgb_to_ycc(noisy), colour.rgb_to_ycc(out)
    change = np.abs(after[:, :, 1:] - before[:, :, 1:])[~mask]
    assert change.max() <= 2.5 / 255  # the bounded chroma smoothing, nothing more


def test_hybrid_with_a_user_mask_changes_only_masked_pixels() -> None:
    clean = astronaut(96)
    damaged, mask = damage(clean, seed=5)
    method = methods.METHODS["hybrid"](methods.MethodSettings(user_masks=True))
    result = method.restore(damaged, mask)
    assert np.array_equal(result.pixels[~mask], damaged[~mask])
    assert psnr(result.pixels, clean) > psnr(damaged, clean) + 8


def test_chunked_score_equals_unchunked() -> None:
    luma = camera(200)[:, :, 0]
    whole = classical.defect_score(luma, 0.01)
    pieces = classical.apply_chunked(lambda c: classical.defect_score(c, 0.01), luma, halo=48, chunk=64)
    assert np.abs(whole - pieces).max() < 1e-4


# --------------------------------------------------------------------------- method table


def test_method_table_and_missing_checkpoint(tmp_path: Path) -> None:
    assert {"classical", "hybrid", "auto"} <= set(methods.METHODS)
    for name in ("hybrid", "auto"):
        with pytest.raises(CheckpointError, match=r"mask_unet\.safetensors.*make checkpoints"):
            methods.METHODS[name](methods.MethodSettings(checkpoints=tmp_path))
    methods.METHODS["hybrid"](methods.MethodSettings(checkpoints=tmp_path, user_masks=True))  # no model needed


@pytest.fixture(scope="module")
def tiny_mask_checkpoints(tmp_path_factory) -> Path:
    """A folder holding a tiny mask U-Net with random weights, as MASK_CHECKPOINT."""
    from flax import nnx

    from restore_cli.models.checkpoint import save_checkpoint
    from restore_cli.models.unet import UNetConfig, build_unet

    # Random weights from numpy on the abstract model's shapes: eager JAX init compiles one XLA
    # kernel per parameter shape (~30 s on the 2-core CI machine), the forward pass only one.
    folder = tmp_path_factory.mktemp("checkpoints")
    config = UNetConfig(widths=(4, 8), norm="none")
    rng = np.random.default_rng(0)
    flat = nnx.to_flat_state(nnx.state(build_unet(config.to_dict())))
    arrays = {"/".join(map(str, path)): rng.normal(0, 0.3, var.get_value().shape).astype(np.float32)
              for path, var in flat}
    save_checkpoint(folder / methods.MASK_CHECKPOINT, arrays,
                    {"kind": "mask-unet", "arch": config.to_dict(), "threshold": 0.5})
    return folder


def test_hybrid_with_a_tiny_mask_model_compiles_once_for_mixed_sizes(tiny_mask_checkpoints: Path) -> None:
    method = methods.METHODS["hybrid"](methods.MethodSettings(checkpoints=tiny_mask_checkpoints, tile=128))
    for shape in ((50, 70, 3), (130, 90, 1), (64, 64, 3)):
        image = np.random.default_rng(0).random(shape, dtype=np.float32)
        result = method.restore(image, None)
        assert result.pixels.shape == shape and result.mask.shape == shape[:2]
    assert method.compile_count() == 1
    assert len(method.recipe()["mask_model"]) == 64


def test_the_progress_bar_is_told_which_detector_pass_runs(tiny_mask_checkpoints: Path) -> None:
    """Two views at full size and at half size: four named passes, in the order they run."""
    from restore_cli.restoration.tiling import tile_progress

    settings = methods.MethodSettings(checkpoints=tiny_mask_checkpoints, tile=128, mask_views=2, mask_scales=1)
    method = methods.METHODS["hybrid"](settings)
    names: list[str | None] = []
    with tile_progress(lambda done, total, name: names.append(name)):
        method.restore(np.random.default_rng(1).random((260, 300, 1), dtype=np.float32), None)
    assert list(dict.fromkeys(names)) == ["detector, view 1/2", "detector, view 2/2",
                                          "detector at 1/2 size, view 1/2", "detector at 1/2 size, view 2/2"]


def test_sizes_and_tile_plans() -> None:
    assert methods.parse_size("1.5G") == int(1.5 * 2**30)
    assert methods.parse_size("800MiB") == 800 * 2**20
    with pytest.raises(UsageError):
        methods.parse_size("lots")
    assert methods.plan_tiles(512, None) == (512, 1)
    assert methods.BYTES_PER_TILE_PIXEL == 2048  # the cases below are worked out for it
    assert methods.plan_tiles(512, 256 * 2**20) == (256, 1)  # half the budget holds one 256 px tile exactly
    assert methods.plan_tiles(512, 300 * 2**20) == (256, 1)
    assert methods.plan_tiles(512, 2**20) == (methods.MIN_TILE, 1)  # never below MIN_TILE, even over budget
    assert methods.plan_tiles(512, 4 * 2**30) == (512, 4)
    assert methods.plan_tiles(512, 8 * 2**30) == (512, 8)


def test_out_of_memory_retries_with_smaller_tiles() -> None:
    seen = []

    def call(tile: int) -> np.ndarray:
        seen.append(tile)
        if tile > 128:
            raise RuntimeError("RESOURCE_EXHAUSTED: Out of memory while trying to allocate")
        return np.zeros(1)

    _, tile = methods.with_smaller_tiles_on_oom(call, 512)
    assert seen == [512, 256, 128] and tile == 128
    with pytest.raises(ValueError):
        methods.with_smaller_tiles_on_oom(lambda t: (_ for _ in ()).throw(ValueError("bug")), 512)


def test_out_of_memory_gives_up_the_large_tile_before_halving_the_small_one() -> None:
    class Detector:  # runs out of memory whenever the large tile is allowed
        tile, large, min_tile, compile_count, calls = 384, True, 0, 0, []

        def repair_mask(self, luma, threshold=None):
            self.calls.append((self.tile, self.large))
            if self.large:
                raise RuntimeError("RESOURCE_EXHAUSTED: Out of memory while trying to allocate")
            return luma > 0.5

    hybrid = methods.Hybrid.__new__(methods.Hybrid)
    hybrid.settings, hybrid.detector = methods.MethodSettings(), Detector()
    mask = hybrid.predict_mask(np.eye(4, dtype=np.float32))
    assert np.array_equal(mask, np.eye(4, dtype=bool))
    assert Detector.calls == [(384, True), (384, False)]  # same small tile, large off: one new compilation
    hybrid.predict_mask(np.eye(4, dtype=np.float32))
    assert Detector.calls[-1] == (384, False)  # and it stays off for the next images
