"""``--method vae``: restore with a ``train-vae`` checkpoint, through :func:`infer_tiled`, with domain weights.

The network restores the luminance (denoising, deblurring, partly repairing defects) with its
mask channel left empty; the defect mask (from ``--masks``, else the mask detector at its repair
threshold averaged over :data:`NETWORK_MASK_VIEWS` flips/rotations, run on the network's output,
when its checkpoint is there, else none, with a warning) is then filled by the same biharmonic
inpainting as the hybrid method, on the network's output.

Why detect on the output rather than on the scan? Noise and grain the network removed can no
longer be mistaken for dust or cracks, and the defects themselves pass through it unchanged
(with an empty mask channel it leaves them alone: median change 0.4 of 255 levels inside the
true defects of ``scratches``). Measured on Set12 (make bench data, stage-2 detector at
0.8 / 0.95), scan -> output: sigma 15 29.96 -> 30.26 / 30.50 -> 30.70 dB, sigma 25 28.17 ->
28.50 / 28.52 -> 28.80, sigma 50 25.61 -> 25.78 / 25.76 -> 25.89, ``scratches`` 32.64 ->
32.63 / 33.26 -> 33.23, ``old-photo`` 24.14 -> 24.16 / 24.21 -> 24.19 (flagging where the minimum
of both probabilities passes, stage-3 detector at 0.95: +0.04 to +0.07 dB on noise, within 0.03
elsewhere, for a second detector pass: not done).

Colour images keep their chroma: it is inpainted under the mask and lightly smoothed elsewhere,
as the hybrid method does (see :mod:`.colour`).

Why not hand the mask to the network, which was trained with one? It was trained with *true*
masks and learned to trust them: on a false alarm it writes a stroke-like correction into
clean detail (Set12 sigma 25, detector at 0.35: RMS error 0.29 inside the 1.1 % flagged
pixels, 26.86 dB against 29.22 dB with an empty mask). Measured on Set12 (make bench data,
mask at the detector's then threshold of 0.35 / 0.95): mask into the network 26.86 / 28.07 dB
at sigma 25, 30.11 / 32.18 dB on ``scratches``, 23.50 / 24.01 dB on ``old-photo``; empty mask
and inpainting after: 27.55 / 28.58, 30.75 / 32.58, 23.85 / 24.15 dB. Even with the *true*
mask, inpainting after wins on ``scratches`` (40.59 against 39.06 dB) and loses 0.18 dB on
``old-photo`` (24.71 against 24.89): one code path, the better one on average.

Domain weights (``--domain-weights Y=0.5,Z=0.5``, the default) decide how much of the model's
correction ``restored - degraded`` is applied where:

* **Y** (synthetic degradations: grain, noise, blur — everywhere in a photo) scales the
  correction *outside* the detected defects;
* **Z** (real old-photo defects: scratches, cracks, dust — what the mask marks) scales it
  *inside* them.

Concretely ``out = degraded + (s_Y * (1 - M) + s_Z * M) * (restored - degraded)`` with
``s = w / max(w)`` and M the defect mask, so the larger weight is always applied in full and
equal weights reproduce the trained model (on a noisy scan: see the noise gate below).
Direction: **Z-heavy favours repairing defects** (defects fully repaired, the rest stays
closer to the scan, grain included); **Y-heavy favours denoising** (the whole photo denoised,
defects repaired less; Y=1,Z=0 leaves them as scanned).
Unnamed domains get 0; X (the clean target) is not an input style and is rejected.

**Noise gate.** A blind denoiser also smooths a little clean detail, which only pays where
there is noise to remove. So what is called ``restored`` above is ``degraded + g * (network -
degraded)``, formed before the inpainting, with ``g`` = :func:`noise_gate`: 0 when the scan's
estimated noise (:func:`classical.noise_sigma`, finest-scale Haar) is below 2.5 of 255 levels,
1 above 7.5, linear between (the ramp is centred on the classical pipeline's
``MIN_DENOISE_SIGMA``, tuned on other images). On a noise-free scan the method is then the
hybrid one (inpainting on the scan) with the detector run on the network's output. Measured
by make bench (Set12, stage-3 detector at 0.95): ``scratches`` (noise-free) 33.44 -> 34.19 dB
(hybrid 34.23), ``old-photo`` 24.24 -> 24.23, sigma 15 / 25 / 50 unchanged (estimates 15-47
levels). On the real prints of ``old_photos`` the network changes little either way (RMS
0.1-2.7 levels without the gate; their grain is coarse and the estimate reads 0.7-5 levels).
Where the gate is fully closed (g = 0) the network is not run at all and the detector looks at
the scan, which is what it would see anyway up to the network's tiny change: the method then
costs what hybrid costs (Set12 make bench data: ``scratches`` 34.19 -> 34.20 dB, where 4 of the
12 images have g = 0; every other preset identical to 0.01 dB). A lower ramp, so that the grain
of ``old-photo`` images estimated at 2-5 levels is denoised too (2026-11-27, restoration model
of that day, Set12 make bench data): 1.5-4.5 levels gave ``old-photo`` 24.43 -> 24.44 dB and
``scratches`` 35.00 -> 34.80, 0.5-1.5 levels 24.44 and 34.31: the ramp stays.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jax
import numpy as np
from flax import nnx

from restore_cli.errors import CheckpointError
from restore_cli.io import display_path
from restore_cli.models.vae import load_vae
from restore_cli.restoration.classical import noise_sigma
from restore_cli.restoration.domain_weights import DEFAULT_DOMAIN_WEIGHTS, parse_domain_weights
from restore_cli.restoration.colour import luminance, rgb_to_ycc, smooth_chroma, ycc_to_rgb
from restore_cli.restoration.inference_jit import inference_jit
from restore_cli.restoration.inpaint import inpaint
from restore_cli.restoration.tiling import infer_tiled, named_pass, round_up

log = logging.getLogger("restore.restore")

VAE_CHECKPOINT = "vae.safetensors"


#: Detector views (flips/rotations averaged, ``mask_detector.DIHEDRAL``) when ``--mask-views`` is not
#: given: the network methods are the quality ones, and four views flag about half as many pixels on
#: the real prints of ``old_photos`` (0.03-0.64 % instead of 0.05-0.97 %) at 4x the detector's time
#: (+0.3-0.4 s per 512x512 image). Measured on whole images no model trained on
#: (``scripts/whole_image_check.py``: scikit-image's photographs with the bench's presets, mean PSNR
#: at the repair threshold 0.95, 1 -> 4 views): sigma 15 / 25 / 50 +0.22 / +0.10 / +0.04 dB,
#: ``scratches`` +0.04, ``old-photo`` -0.02; on Set12 +0.41 / +0.27 / +0.08, +0.41 and -0.05. On the
#: detector's held-out Train400 crops (``scripts/auto_threshold_sweep.py --views 4``) it is even
#: (-0.01 dB pooled). ``hybrid`` keeps one view: it is the fast method.
NETWORK_MASK_VIEWS = 4

#: Estimated noise (0..255 levels) below which the network's correction outside defects is not
#: applied, and above which it is applied in full (see "Noise gate" in the module docstring).
NOISE_GATE = (2.5, 7.5)


def noise_gate(luma: np.ndarray) -> float:
    """How much of the network's correction outside defects to keep: 0..1 from the scan's noise."""
    low, high = NOISE_GATE
    return float(np.clip((noise_sigma(luma) * 255.0 - low) / (high - low), 0.0, 1.0))


def apply_domain_weights(
    degraded: np.ndarray, restored: np.ndarray, mask: np.ndarray | None, weights: dict[str, float]
) -> np.ndarray:
    """The gated correction of the module docstring; arrays (H, W), mask (H, W) bool/float or None."""
    top = max(weights.values())
    s_y, s_z = weights.get("Y", 0.0) / top, weights.get("Z", 0.0) / top
    m = np.zeros(degraded.shape, np.float32) if mask is None else np.asarray(mask, np.float32).reshape(degraded.shape)
    gate = s_y * (1.0 - m) + s_z * m
    return (degraded + gate * (restored - degraded)).astype(np.float32)


class VAERestorer:
    """A loaded ``train-vae`` model: ``restore_luma(luma, mask)`` for an image of any size."""

    def __init__(self, model: nnx.Module, header: dict[str, Any] | None = None, *, tile: int = 256,
                 overlap: int = 32, batch: int = 1, large: bool = False):
        self.header = dict(header or {})
        self.config = model.cfg
        m = self.config.multiple
        fixed = self.config.fixed_size  # a vector latent takes exactly its training size
        self.tile = fixed or round_up(tile, m)
        self.min_tile = fixed or 0  # the out-of-memory fallback may not go below it (methods.py)
        self.overlap = round_up(overlap, m)  # at most half a tile: see restore_luma
        self.batch, self.compile_count = batch, 0
        self.large = large and not fixed  # infer_tiled may pick 2 x tile + overlap per image
        graphdef, state = nnx.split(model)
        self._state = state

        def apply(state, tiles):
            self.compile_count += 1  # runs only while tracing
            out = nnx.merge(graphdef, state).restore(tiles[..., :1], tiles[..., 1:])
            return jax.numpy.clip(out, 0.0, 1.0)

        self._apply = inference_jit(apply)

    def refresh(self, model: nnx.Module) -> None:
        """Use ``model``'s current weights (same architecture: nothing is recompiled). For validation."""
        self._state = nnx.state(model)

    @classmethod
    def load(cls, path: str | os.PathLike, **kwargs) -> VAERestorer:
        model, header = load_vae(path)
        return cls(model, header, **kwargs)

    def restore_luma(self, luma: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        """Restored luminance (H, W) float32 for ``luma`` (H, W) in [0, 1] and an optional (H, W) defect mask."""
        luma = np.asarray(luma, np.float32).reshape(luma.shape[0], luma.shape[1])
        m = np.zeros_like(luma) if mask is None else np.asarray(mask, np.float32).reshape(luma.shape)
        both = np.stack([luma, m], axis=-1)
        step = self.config.multiple
        overlap = min(self.overlap, max(0, (self.tile // 2 - 1) // step * step))  # tile may shrink on OOM
        with named_pass("network"):
            out = infer_tiled(lambda t: np.asarray(self._apply(self._state, t)), both, tile=self.tile,
                              overlap=overlap, multiple=self.config.multiple, batch=self.batch, out_channels=1,
                              large=self.large)
        return out[:, :, 0]


def restore_pixels(restorer: VAERestorer, pixels: np.ndarray, mask: np.ndarray | None,
                   weights: dict[str, float], detect: Callable[[np.ndarray], np.ndarray] | None = None,
                   ) -> tuple[np.ndarray, np.ndarray | None]:
    """(H, W, 1|3) in [0, 1] -> (restored (H, W, same C), the mask used): weighted luma correction,
    faithful chroma. Without a ``mask``, ``detect(network output luma) -> (H, W) bool`` finds one (see
    the module docstring: the detector looks at the network's output, not at the scan, unless the
    noise gate is closed and the network is not run)."""
    luma = luminance(pixels).astype(np.float32)
    gate = noise_gate(luma)
    if gate == 0.0:  # noise-free: the network's correction would be discarded, so it is not run
        network = np.array(luma, np.float32)  # a copy: the inpainting below works in place
    else:
        network = restorer.restore_luma(luma)  # empty mask channel: see the module docstring
    if mask is None and detect is not None:
        mask = detect(network)
    if gate != 0.0:
        # The noise gate, before the inpainting: on a noise-free scan the fill starts from the scan itself.
        # In place: on a big scan every full-size float plane is ~100 MB.
        if np.shares_memory(network, luma) or not network.flags.writeable:
            network = np.array(network, np.float32)
        network -= luma
        network *= gate
        network += luma
    restored = network[:, :, None]
    # One inpainting for the network's luma and, in colour, the scan's chroma (the solver is linear
    # and per channel, so this equals inpainting the RGB scan and converting afterwards).
    ycc = restored if pixels.shape[2] == 1 else np.concatenate(
        [restored, rgb_to_ycc(np.asarray(pixels, np.float32))[:, :, 1:]], axis=2)
    if mask is not None and np.any(mask):
        ycc = inpaint(ycc, mask, in_place=True)
    out_luma = apply_domain_weights(luma, ycc[:, :, 0], mask, weights)
    if pixels.shape[2] == 1:
        return np.clip(out_luma, 0.0, 1.0)[:, :, None], mask
    for channel in (1, 2):
        plane = np.ascontiguousarray(ycc[:, :, channel])
        smooth_chroma(plane)
        ycc[:, :, channel] = plane
    ycc[:, :, 0] = out_luma
    return ycc_to_rgb(ycc), mask


def vae_checkpoint(checkpoints: Path) -> Path:
    path = Path(checkpoints) / VAE_CHECKPOINT
    if not path.is_file():
        raise CheckpointError(
            f"{display_path(path)}: VAE checkpoint not found; build it with `make checkpoints` or "
            "`restore train-vae ... -o` into that folder (or use --method hybrid)"
        )
    return path


class VAEMethod:
    """``--method vae`` (and ``auto`` when a VAE checkpoint is there): see the module docstring.

    The defect mask comes from ``--masks``, else from the mask detector. Plain ``vae`` runs without
    a mask (warning once) when no mask checkpoint exists; ``auto`` requires one.
    """

    name = "vae"
    bytes_per_pixel = 62  # see methods.Method

    def __init__(self, settings: Any, *, require_detector: bool = False, name: str = "vae"):
        from restore_cli.restoration import methods  # late: methods.py lists this class

        self.name, self.settings = name, settings
        self.weights = parse_domain_weights(settings.domain_weights or DEFAULT_DOMAIN_WEIGHTS)
        self.checkpoint = vae_checkpoint(settings.checkpoints)
        methods.select_device(settings.device)
        self.restorer = VAERestorer.load(self.checkpoint, tile=settings.tile, batch=settings.batch,
                                         large=settings.large_tiles)
        self.masker = None
        has_detector = (Path(settings.checkpoints) / methods.MASK_CHECKPOINT).is_file()
        if not settings.user_masks and (has_detector or require_detector):
            views = settings.mask_views or NETWORK_MASK_VIEWS
            # loads the detector; CheckpointError if missing
            self.masker = methods.Hybrid(dataclasses.replace(settings, mask_views=views))
        elif not settings.user_masks:
            log.warning("no mask model in %s: restoring without a defect mask (the Z weight has no effect)",
                        display_path(settings.checkpoints))

    def recipe(self) -> dict[str, Any]:
        from restore_cli.restoration import methods
        from restore_cli.restoration.sidecar import file_sha256

        recipe = {"method": self.name, "vae_model": file_sha256(self.checkpoint), "domain_weights": self.weights,
                  "noise_gate": list(NOISE_GATE), **methods.tiling_recipe(self.settings)}
        if self.masker is not None:  # the detector runs on the network's output (outputs made before differ)
            recipe.update({k: v for k, v in self.masker.recipe().items() if k != "method"},
                          mask_input="restored, or the scan where the noise gate is closed")
        return recipe

    def restore(self, pixels: np.ndarray, mask: np.ndarray | None):
        from restore_cli.restoration.methods import Restored

        detect = None if self.masker is None else self.masker.predict_mask
        out, mask = restore_pixels(self, pixels, mask, self.weights, detect)
        used = np.zeros(pixels.shape[:2], bool) if mask is None else np.asarray(mask, bool)
        return Restored(out, used)

    def restore_luma(self, luma: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
        """The restorer's, for :func:`restore_pixels`, with smaller tiles after a device out-of-memory error."""
        from restore_cli.restoration.methods import run_with_tile_fallback

        return run_with_tile_fallback(self.restorer, lambda: self.restorer.restore_luma(luma, mask))

    def compile_count(self) -> int:
        return self.restorer.compile_count + (self.masker.compile_count() if self.masker is not None else 0)


def auto_method(settings: Any):
    """``--method auto``: mask detector + VAE when a VAE checkpoint exists, else the hybrid method."""
    from restore_cli.restoration.methods import Auto

    if (Path(settings.checkpoints) / VAE_CHECKPOINT).is_file():
        return VAEMethod(settings, require_detector=not settings.user_masks, name="auto")
    return Auto(settings)
