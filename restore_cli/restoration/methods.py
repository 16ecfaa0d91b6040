"""The restoration methods, by name: ``METHODS[name](settings)`` builds one, ``.restore()`` runs it.

Adding a method = writing a class with the five members of :class:`Method` and adding one
line to :data:`METHODS`. There is no registry or decorator on purpose: this dict is the
whole list, greppable, and ``restore restore --method`` offers exactly its keys.

A method is built once per run (it loads its checkpoints and compiles its models then) and
called once per image with float32 pixels (H, W, 1|3) in [0, 1] and, optionally, the
user's own defect mask. Model-based methods run their networks through
:func:`restore_cli.restoration.tiling.infer_tiled` (the mask detector does) with the
run's fixed tile shape, so a folder of mixed sizes compiles each model once per tile size.

A missing checkpoint is a :class:`CheckpointError` naming the file and ``make checkpoints``:
never a silent fallback to another method, so a result always means what its name says.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np

from restore_cli.errors import CheckpointError, RestoreError, UsageError
from restore_cli.io import display_path
from restore_cli.restoration.classical import restore_classical
from restore_cli.restoration.colour import luminance
from restore_cli.restoration.inpaint import inpaint
from restore_cli.restoration.sidecar import file_sha256

T = TypeVar("T")
log = logging.getLogger("restore.restore")

#: Where ``make checkpoints`` puts the shipped models (``--checkpoints`` overrides it).
CHECKPOINT_DIR = Path(__file__).resolve().parents[2] / "checkpoints"
MASK_CHECKPOINT = "mask_unet.safetensors"
DEVICES = ("auto", "cpu", "gpu")
MIN_TILE = 128
#: The largest --tile: its large tile (2 x 1024 + 32 px) already needs gigabytes on a GPU; 8192
#: aborted the process (std::bad_alloc) on a 24 GB machine for a 50x40 image.
MAX_TILE = 1024
#: Rough inference memory per tile pixel for the shipped U-Nets (activations + XLA workspace),
#: used only to turn ``--max-memory`` into a tile size and batch. Deliberately pessimistic.
BYTES_PER_TILE_PIXEL = 2048
#: --mask-views choices: the first 1, 2, 4 or 8 of restore_cli.restoration.mask_detector.DIHEDRAL.
MASK_VIEWS = (1, 2, 4, 8)
#: --mask-scales choices: coarser halvings the detector also looks at (MaskDetector.probabilities).
MASK_SCALES = (0, 1, 2, 3, 4)


@dataclasses.dataclass(frozen=True)
class MethodSettings:
    """What the command line says about *how* to restore (not which files)."""

    mask_threshold: float | None = None  # None: the mask checkpoint's repair threshold
    mask_views: int | None = None  # detector flips/rotations averaged, one of MASK_VIEWS; None: the method's own
    mask_scales: int | None = None  # coarser halvings the detector also looks at, one of MASK_SCALES; None: by size
    user_masks: bool = False  # --masks DIR given: every image brings its own mask
    tile: int = 256  # the runner's (MaskDetector's own is 384): little padding waste on small images
    batch: int = 1
    large_tiles: bool = True  # also offer 2 x tile + overlap per image (infer_tiled); off under --max-memory
    device: str = "auto"
    domain_weights: str | None = None  # parsed and validated by the vae method
    checkpoints: Path = CHECKPOINT_DIR


def tiling_recipe(settings: MethodSettings) -> dict[str, Any]:
    """The tile plan, for the recipe of a method whose networks tile the image: the detector's
    mask depends on the tile size (GroupNorm statistics per tile, see mask_detector.py), so a
    rerun with another --tile or --max-memory redoes the file. Empty at the defaults, so records
    made before this (2026-11-29) stay current."""
    default = MethodSettings()
    if settings.tile == default.tile and settings.large_tiles == default.large_tiles:
        return {}
    return {"tile": settings.tile, "large_tiles": settings.large_tiles}


@dataclasses.dataclass
class Restored:
    pixels: np.ndarray  # (H, W, C) float32 in [0, 1], same shape as the input
    mask: np.ndarray | None  # (H, W) bool: the defects that were filled (None: ran without a mask)


class Method(Protocol):
    name: str
    #: Peak memory per image pixel on top of the loaded models, for the runner's check before it
    #: decodes an image (see runner.check_memory). Measured with bench/restore_big.py on 8-bit RGB
    #: scans of 3 and 12 megapixels (2026-11-27: auto 56, hybrid 36, classical 38 bytes per
    #: pixel; a 6000x4000 scan agreed within 2 %), plus 10 %.
    bytes_per_pixel: int

    def recipe(self) -> dict[str, Any]:
        """Everything that changes the output pixels (settings, checkpoint sha256s), JSON-able."""

    def restore(self, pixels: np.ndarray, mask: np.ndarray | None) -> Restored: ...

    def compile_count(self) -> int:
        """Model compilations so far (0 for methods without a network)."""


# ----------------------------------------------------------------------------- helpers


def parse_size(text: str) -> int:
    """``"1.5G"``, ``"800M"``, ``"2GiB"``, ``"1e9"`` -> bytes (binary units)."""
    match = re.fullmatch(r"\s*([0-9.]+(?:e[0-9]+)?)\s*([kmgt]?)(?:i?b)?\s*", text.lower())
    if not match:
        raise UsageError(f"--max-memory {text!r}: expected a size such as 1.5G or 800M")
    value = float(match.group(1)) * 1024 ** " kmgt".index(match.group(2) or " ")
    if value < 64 * 2**20:
        raise UsageError(f"--max-memory {text!r}: at least 64M is needed")
    return int(value)


def plan_tiles(tile: int, max_memory: int | None) -> tuple[int, int]:
    """(tile, batch) for a memory budget: half of it for network activations, the rest for images.

    Tiles shrink by halves (not below 128) until one fits; the batch then fills the budget (<= 8).
    """
    if max_memory is None:
        return tile, 1
    budget = max_memory // 2
    while tile > MIN_TILE and tile * tile * BYTES_PER_TILE_PIXEL > budget:
        tile //= 2
    return tile, int(min(8, max(1, budget // (tile * tile * BYTES_PER_TILE_PIXEL))))


def select_device(device: str) -> None:
    """Point JAX at the requested device before any model is built (must run before JAX starts)."""
    if device not in DEVICES:
        raise UsageError(f"--device {device!r}: choose one of {', '.join(DEVICES)}")
    import jax

    if device == "cpu":
        jax.config.update("jax_platforms", "cpu")
    elif device == "gpu":
        try:
            jax.devices("gpu")
        except RuntimeError:
            raise RestoreError("--device gpu: JAX sees no GPU on this machine (use --device auto or cpu)") from None


def is_out_of_memory(exc: BaseException) -> bool:
    text = f"{type(exc).__name__} {exc}"
    return "RESOURCE_EXHAUSTED" in text or "out of memory" in text.lower()


def with_smaller_tiles_on_oom(call: Callable[[int], T], tile: int, drop_large: Callable[[], bool] | None = None,
                              min_tile: int = MIN_TILE) -> tuple[T, int]:
    """``call(tile)``; on a device out-of-memory error, retry: first without the large tile when
    ``drop_large()`` says it just switched one off, then with half the tile (not below ``min_tile``).

    Returns the result and the tile that worked, which the caller keeps for the next images
    (each new tile size is one more compilation). Not exercised on a device by the CPU-only
    test suite (a fake error stands in).
    """
    while True:
        try:
            return call(tile), tile
        except Exception as exc:  # XLA raises its own runtime error class; match on the message
            if not is_out_of_memory(exc):
                raise
            if drop_large is not None and drop_large():
                log.warning("device out of memory with the large tiles; retrying with %d px tiles only", tile)
                continue
            if tile // 2 < min_tile:
                raise
            log.warning("device out of memory with %d px tiles; retrying with %d px", tile, tile // 2)
            tile //= 2


class TiledModel(Protocol):
    """What the out-of-memory fallback changes on a loaded network (MaskDetector, VAERestorer)."""

    tile: int  # tile side in pixels, set smaller after an out-of-memory error
    large: bool  # whether infer_tiled may also use the large tile
    min_tile: int  # smallest tile the network accepts (0: any; a vector-latent VAE: its training size)


def run_with_tile_fallback(model: TiledModel, call: Callable[[], T]) -> T:
    """``call()``, which runs ``model`` (a MaskDetector or VAERestorer), under the out-of-memory
    policy of :func:`with_smaller_tiles_on_oom`: the large tile goes first, then the tile halves,
    not below MIN_TILE nor ``model.min_tile`` (a vector-latent VAE takes only its training size).
    The tiles that worked stay set on ``model`` for the next images.
    """

    def run(tile: int) -> T:
        if tile != model.tile:  # smaller tiles only, from now on: one more compilation, once
            model.tile, model.large = tile, False
        return call()

    def drop_large() -> bool:
        was_on, model.large = model.large, False
        return was_on

    return with_smaller_tiles_on_oom(run, model.tile, drop_large, min_tile=max(MIN_TILE, model.min_tile))[0]


def mask_checkpoint(settings: MethodSettings) -> Path:
    path = settings.checkpoints / MASK_CHECKPOINT
    if not path.is_file():
        raise CheckpointError(
            f"{display_path(path)}: mask model checkpoint not found; build it with `make checkpoints` "
            "(or give your own masks with --masks DIR, or use --method classical)"
        )
    return path


# ----------------------------------------------------------------------------- methods


class Classical:
    """Classical defect mask, biharmonic inpainting, NL-means on luminance, mild tonal stretch."""

    name = "classical"
    bytes_per_pixel = 42

    def __init__(self, settings: MethodSettings):
        self.settings = settings

    def recipe(self) -> dict[str, Any]:
        return {"method": self.name}

    def restore(self, pixels: np.ndarray, mask: np.ndarray | None) -> Restored:
        out, used = restore_classical(pixels, mask)
        return Restored(out, used)

    def compile_count(self) -> int:
        return 0


class Hybrid:
    """Learned defect mask (or the user's) -> biharmonic inpainting of every channel under it."""

    name = "hybrid"
    bytes_per_pixel = 40

    def __init__(self, settings: MethodSettings):
        self.settings = settings
        self.views = settings.mask_views or 1  # the fast method: one detector pass unless asked
        self.detector = None
        self.checkpoint: Path | None = None
        if not settings.user_masks:
            self.checkpoint = mask_checkpoint(settings)
            select_device(settings.device)
            from restore_cli.restoration.mask_detector import MaskDetector

            self.detector = MaskDetector.load(self.checkpoint, tile=settings.tile, batch=settings.batch,
                                              large=settings.large_tiles, views=self.views,
                                              scales=settings.mask_scales)

    def recipe(self) -> dict[str, Any]:
        recipe: dict[str, Any] = {"method": self.name}
        if self.checkpoint is not None:
            recipe["mask_model"] = file_sha256(self.checkpoint)
            threshold = self.settings.mask_threshold
            recipe["mask_threshold"] = self.detector.repair_threshold if threshold is None else threshold
            if self.views != 1:  # absent for one view, so hybrid outputs made before views existed stay current
                recipe["mask_views"] = self.views
            if self.settings.mask_scales != 0:  # absent for none, as before scales existed
                recipe["mask_scales"] = "auto" if self.settings.mask_scales is None else self.settings.mask_scales
            recipe.update(tiling_recipe(self.settings))
        return recipe

    def predict_mask(self, luma: np.ndarray) -> np.ndarray:
        if self.detector is None:
            raise RestoreError("internal: no mask detector and no user mask")
        detector = self.detector
        return run_with_tile_fallback(
            detector, lambda: np.asarray(detector.repair_mask(luma, threshold=self.settings.mask_threshold), bool))

    def restore(self, pixels: np.ndarray, mask: np.ndarray | None) -> Restored:
        if mask is None:
            mask = self.predict_mask(luminance(pixels))
        return Restored(inpaint(pixels, mask), mask)

    def compile_count(self) -> int:
        return int(getattr(self.detector, "compile_count", 0) or 0)


class Auto(Hybrid):
    """``auto`` when no VAE checkpoint exists: hybrid (see :func:`_auto` for the full rule)."""

    name = "auto"


def _vae(settings: MethodSettings) -> Method:
    """Mask (--masks, else the detector when present) + the train-vae restorer; see :mod:`.vae_method`."""
    from restore_cli.restoration.vae_method import VAEMethod  # jax/flax only when a model is used

    return VAEMethod(settings)


def _auto(settings: MethodSettings) -> Method:
    """The best method whose checkpoints exist: mask detector + VAE restorer, else hybrid."""
    from restore_cli.restoration.vae_method import auto_method

    return auto_method(settings)


#: Every ``--method``: name -> builder. Add a method by adding an entry here.
METHODS: dict[str, Callable[[MethodSettings], Method]] = {
    "classical": Classical,
    "hybrid": Hybrid,
    "vae": _vae,
    "auto": _auto,
}
#: What ``restore restore`` does without ``--method``: the restoration network where its checkpoint is
#: there (denoising, deblurring, partial repair), then inpainting under the detector's repair mask.
#: Chosen by make bench (Set12, 2026-11-26): it beats hybrid at sigma 15/25/50 by 6-11 dB and on
#: ``old-photo`` by 1.2 dB, and is within 0.05 dB of it on the noise-free ``scratches`` preset; it
#: is ~3-4x slower (see the README), so ``--method hybrid`` stays the fast choice for clean scans.
DEFAULT_METHOD = "auto"
