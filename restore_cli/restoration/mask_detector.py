"""Find scratches, cracks and dust in a photo of any size with a trained mask U-Net.

Inference goes through :func:`restore_cli.restoration.tiling.infer_tiled` with fixed tile
shapes (the tile, and with ``large`` also 2 x tile + overlap), so a folder of mixed sizes
compiles the network at most twice, whatever the sizes (:attr:`MaskDetector.compile_count`
shows it; an out-of-memory fallback to smaller tiles compiles those too). The apply function is an ``inference_jit``
(``jax.jit`` with faster CPU kernels) of ``nnx.merge(graphdef, state)``: the model's graph is
split once at load time, so calling it per tile costs no NNX graph traversal.

Tile size: 384 px with 32 px of overlap (tiles step by 352 px). Measured on a 1024x1024
image with the earlier 8-wide U-Net: 9 tiles, 0.74 s (256 px tiles: 25 tiles, 1.08 s), because
overlap and padding waste less with bigger tiles; on large scans the waste is 19 % of the
pixels instead of 31 %. Images smaller than a tile are padded to one tile (~0.1 s).

The tile also moves the operating point: GroupNorm normalises with each tile's own statistics,
so the same pixels get somewhat different probabilities in a 256 px and a 544 px tile. Measured
on Set12 (make bench data, ``--method auto`` replayed with the stage-2 restoration model,
detector on the network's output at 0.95): 544 px tiles flag 25 % more pixels than 256 px
ones on sigma 25 (28.95 against 29.01 dB) and 8 % more on ``scratches`` (34.24 against
34.21). That is a threshold shift, not a better detector: 160 px tiles (the training crop) at
0.95 and the runner's large tiles at 0.98 tie on sigma 25 (29.09 dB) and the large tiles win
on ``scratches`` (34.13 against 33.90 dB), so at equal false-alarm cost more context is the
better detector; the runner keeps it.
"""

from __future__ import annotations

import math
import os
from typing import Any

import jax
import numpy as np
from flax import nnx
from PIL import Image
from scipy import ndimage

from restore_cli.models.checkpoint import load_model
from restore_cli.models.unet import UNet, build_unet
from restore_cli.restoration.inference_jit import inference_jit
from restore_cli.restoration.tiling import infer_tiled, named_pass, round_up

KIND = "mask-unet"
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)

#: The eight flips and rotations of the square (forward, inverse), in the order ``views`` takes
#: them: 2 = + mirror, 4 = + upside down and transposed, 8 = all. Averaging the detector's
#: probabilities over views cancels much of its orientation-dependent noise. Measured by
#: scripts/detector_views.py on Set12 `scratches` (make bench data, shipped six-stage detector,
#: 544 px tiles, pooled over 12 images):
#: F1 at the repair threshold 0.95 is 0.646 / 0.685 / 0.704 / 0.725 with 1 / 2 / 4 / 8 views, and
#: at equal recall (0.66) precision is 0.65 / 0.73 / 0.76 (8 views: 0.83 at recall 0.64); on the
#: network's output for sigma-15 Set12 (no defects at all) the flagged fraction falls 0.36 % /
#: 0.26 % / 0.17 % / 0.13 %. Each view costs one detector pass. In ``auto`` (make bench,
#: 2026-11-27 03:38, rows ``auto, 4 detector views``), 4 views at the checkpoint's repair
#: threshold (0.95) gain +0.43 / +0.26 / +0.09 dB at sigma 15 / 25 / 50 and +0.68 dB on
#: `scratches`, lose 0.04 dB on `old-photo`, at 1.3-1.5x the time per image; on held-out Train400
#: (scripts/auto_threshold_sweep.py, the detector's own mixture) they pool 25.81 dB against 25.82
#: for 1 view (their best there is 0.7: 25.88, which on Set12 loses 0.03-0.10 dB on the Gaussian
#: rows). Whole images no model trained on (scikit-image's photographs, scripts/whole_image_check.py)
#: agreed with Set12 in direction, so ``auto`` and ``vae`` now average 4 views by default
#: (restore_cli.restoration.vae_method.NETWORK_MASK_VIEWS); ``hybrid`` keeps 1 (the fast method, and
#: the 1024x1024 speed figure of the README).
DIHEDRAL = (
    (lambda x: x, lambda y: y),
    (lambda x: x[:, ::-1], lambda y: y[:, ::-1]),
    (lambda x: x[::-1], lambda y: y[::-1]),
    (lambda x: x.T, lambda y: y.T),
    (lambda x: x[::-1, ::-1], lambda y: y[::-1, ::-1]),
    (lambda x: np.rot90(x), lambda y: np.rot90(y, -1)),
    (lambda x: np.rot90(x, -1), lambda y: np.rot90(y)),
    (lambda x: x[::-1, ::-1].T, lambda y: y.T[::-1, ::-1]),
)


#: Coarser levels (``scales``) stop before the image's shorter side falls under this many pixels.
MIN_SCALE_SIDE = 128
#: ``scales=None`` (the restore methods' default): one coarser level per doubling of the image's
#: shorter side beyond this, at most :data:`MAX_AUTO_SCALES`. See :func:`auto_scales`.
AUTO_SCALE_SIDE = 512
MAX_AUTO_SCALES = 3


def auto_scales(height: int, width: int) -> int:
    """Coarser levels for an image when none are asked for: 0 under 1024 px, 1 to 2047, 2 to 4095, then 3.

    Why by size: the detector learned defects 1-4 px wide, and a scan's defects are as many pixels
    wide as its resolution makes them; an image's pixel count is the only hint of that resolution
    there is. At Set12's own scale (256-512 px) coarse levels only add false alarms (``scratches``
    F1 0.59 -> 0.48 with two, sixth-stage detector), and every image the detector was judged on at
    its own scale (Set12, scikit-image's photographs, the real prints of ``old_photos``: shorter
    sides up to 736 px) stays under 1024. On Set12 ``scratches`` enlarged 4x (1024 and 2048 px, make
    bench data of 2026-11-27, ``hybrid``), this rule scores 33.18 dB, F1 0.435, against 31.46 /
    0.106 with no coarse level and 33.83 / 0.560 with two on every image (a 4x enlargement wants
    two; size alone cannot tell). On bench/restore_big.py's 6000x4000 scan (defects 2-8 px and
    larger) the mask's F1 goes from 0.33 to 0.81 (two levels). The cost: where a big image's
    defects are thin (Set12 enlarged 4x, then damaged) the coarse levels' own false alarms take
    pooled F1 from 0.81 to 0.36 and PSNR from 50.7 to 46.4 dB (smaller in squared error than the
    gains above); ``--mask-scales 0`` is for such scans. docs/experiments.md has the rules tried.
    """
    short = min(height, width)
    return 0 if short < 2 * AUTO_SCALE_SIDE else min(MAX_AUTO_SCALES, int(math.log2(short / AUTO_SCALE_SIDE)))


def resize_plane(plane: np.ndarray, height: int, width: int, method: int) -> np.ndarray:
    """A float32 (H, W) plane resized with PIL's ``method`` (here ``Image.BOX`` to shrink, ``Image.BILINEAR``
    to enlarge; train.data.ZoomedSource enlarges its samples with it too)."""
    return np.asarray(Image.fromarray(np.ascontiguousarray(plane, np.float32)).resize((width, height), method),
                      np.float32)


class MaskDetector:
    """A loaded mask U-Net: ``probabilities(luma)`` per pixel, ``predict`` / ``repair_mask`` as boolean masks.

    Speed after the one compilation (2-core CPU, make bench): the shipped 16-32-64-96-128 model
    (59 kFLOP per pixel) took 1.2-1.3 s for 1024x1024 with 384 px tiles, 1.09-1.16 s with the
    runner's default tiles (256 px, or 544 where cheaper: four for 1024x1024); the earlier
    8-16-32-64-96 one (17 kFLOP) 0.56 s. Neither bigger tiles (544, 1056 px) nor batching tiles
    changed that (measured, +-3 %); the stitching in infer_tiled is ~6 ms of it, the network the
    rest. Now 0.82 s (make bench; 0.74-0.79 s timed alone), same probabilities up to rounding
    (max |dp| 2e-5): the first 1 -> 16 conv as shifted multiply-adds, the pool as slices (see
    restore_cli.models.unet) and XLA:CPU's own convolutions (:mod:`.inference_jit`).
    """

    def __init__(self, model: UNet, header: dict[str, Any] | None = None, *, tile: int = 384, overlap: int = 32,
                 batch: int = 1, large: bool = False, views: int = 1, scales: int | None = 0):
        if not 1 <= views <= len(DIHEDRAL):
            raise ValueError(f"views must be 1..{len(DIHEDRAL)}, got {views}")
        if scales is not None and scales < 0:
            raise ValueError(f"scales must be >= 0 or None (by image size), got {scales}")
        self.views = views  # flips/rotations averaged (DIHEDRAL)
        self.scales = scales  # coarser halvings also looked at (see probabilities); None: auto_scales
        self.header = dict(header or {})
        self.config = model.config
        m = self.config.multiple  # infer_tiled needs tile and overlap on the network's grid
        self.tile, self.overlap, self.batch = round_up(tile, m), round_up(overlap, m), batch
        self.min_tile = 0  # fully convolutional: the out-of-memory fallback may use any tile (methods.py)
        self.large = large  # infer_tiled may pick 2 x tile + overlap per image (at most 2 compilations)
        self.threshold = float(self.header.get("threshold", 0.5))
        # The threshold for masks that get inpainted (see restore_cli.train.mask: chosen by PSNR after
        # inpainting, not by F1); checkpoints written before it existed fall back to the F1 one.
        self.repair_threshold = float(self.header.get("repair_threshold", self.threshold))
        self.compile_count = 0
        graphdef, state = nnx.split(model)
        self._state = state

        def apply(state, tiles):
            self.compile_count += 1  # runs only while tracing
            return jax.nn.sigmoid(nnx.merge(graphdef, state)(tiles))

        self._apply = inference_jit(apply)

    @classmethod
    def load(cls, path: str | os.PathLike, **kwargs) -> MaskDetector:
        """Read a ``train-mask`` checkpoint; CheckpointError if missing, corrupt or not a mask model."""
        model, header = load_model(path, KIND, build_unet)
        return cls(model, header, **kwargs)

    def _tiles(self, tiles: np.ndarray) -> np.ndarray:
        return np.asarray(self._apply(self._state, tiles))

    def probabilities(self, luma: np.ndarray) -> np.ndarray:
        """Defect probability per pixel, float32 (H, W), for a luminance image (H, W) or (H, W, 1) in [0, 1].

        An (H, W, 3) RGB image is converted to BT.601 luminance first. With ``views`` > 1, the mean
        over that many flips/rotations of the image (:data:`DIHEDRAL`). With ``scales`` = N > 0, the
        maximum of that and the same at 1/2, 1/4, ... 1/2^N of the size (box-filtered down, the
        probabilities enlarged back bilinearly and grown by half the factor), stopping before the
        shorter side falls under :data:`MIN_SCALE_SIDE`: the network learned defects 1-4 px wide,
        and on a high-resolution scan they are wider (see ``--mask-scales`` in the README). With
        ``scales`` None, N = :func:`auto_scales` of the image's size.
        """
        luma = np.asarray(luma, dtype=np.float32)
        if luma.ndim == 3:
            luma = luma[:, :, 0] if luma.shape[2] == 1 else luma[:, :, :3] @ _LUMA
        if luma.ndim != 2 or min(luma.shape) < 1:
            raise ValueError(f"expected a 2-D luminance image, got shape {luma.shape}")
        height, width = luma.shape
        prob = self._views_mean(luma, "detector")
        scales = auto_scales(height, width) if self.scales is None else self.scales
        for level in range(1, scales + 1):
            factor = 2**level
            if min(height, width) / factor < MIN_SCALE_SIDE:
                break
            small = resize_plane(luma, round(height / factor), round(width / factor), Image.BOX)
            coarse = resize_plane(self._views_mean(small, f"detector at 1/{factor} size"), height, width,
                                  Image.BILINEAR)
            # A defect found at 1/factor is placed to within ~factor/2 px here: grow it by that much.
            np.maximum(prob, ndimage.maximum_filter(coarse, size=factor + 1), out=prob)
        return prob

    def _views_mean(self, luma: np.ndarray, what: str) -> np.ndarray:
        total = np.zeros(luma.shape, np.float32)
        for number, (forward, inverse) in enumerate(DIHEDRAL[:self.views], start=1):
            view = np.ascontiguousarray(forward(luma))
            with named_pass(what if self.views == 1 else f"{what}, view {number}/{self.views}"):
                out = infer_tiled(self._tiles, view[:, :, None], tile=self.tile, overlap=self.overlap,
                                  multiple=self.config.multiple, batch=self.batch, out_channels=1,
                                  large=self.large)
            total += inverse(out[:, :, 0])
        return total / self.views

    def predict(self, luma: np.ndarray, threshold: float | None = None) -> np.ndarray:
        """Boolean defect mask (H, W); ``threshold`` defaults to the best-F1 one chosen on validation."""
        return self.probabilities(luma) >= (self.threshold if threshold is None else threshold)

    def repair_mask(self, luma: np.ndarray, threshold: float | None = None) -> np.ndarray:
        """The mask to inpaint under: like :meth:`predict`, at :attr:`repair_threshold` by default."""
        return self.predict(luma, self.repair_threshold if threshold is None else threshold)
