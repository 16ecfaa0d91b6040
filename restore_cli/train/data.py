"""Training batches for every trainer (mask U-Net, VAE): one contract, four sources, a prefetcher.

Batch contract
--------------
A batch is a dict of host numpy arrays, NHWC, float32, always the same shapes within a run
(so the jitted step compiles once)::

    {"degraded": (B, H, W, 1) in [0, 1],   # network input: luminance of the damaged photo
     "clean":    (B, H, W, 1) in [0, 1],   # luminance of the undamaged photo
     "mask":     (B, H, W, 1) in {0, 1}}   # 1 = local defect (scratch, crack, dust)

Luminance only: colour is restored separately, and one channel keeps the networks cheap.

Sources
-------
* :class:`PairSource` - a ``restore degrade`` folder (``clean/``, ``degraded/``, ``masks/``,
  paired by file name); each sample is a random ``crop`` with random flips/rot90.
* :class:`OnlineSource` - a folder of clean images plus a ``DegradeConfig``: every sample is
  a fresh crop degraded afresh by the engine, so the model never sees the same sample twice.
* :class:`ZoomedSource` - either of them with a share of the samples enlarged, as a scan at a
  higher resolution shows them (``restore train-mask --zoom``).
* :class:`MixedSource` - one source with a share of its samples drawn from another over the
  same images (``restore train-mask --free-share``: crops without any defect).

Determinism
-----------
:class:`Batches` makes batch ``k`` as a pure function of ``(seed, k)``: the image order is a
seeded permutation per epoch (``SeedSequence([seed, 1, epoch])``) and every random choice
inside the batch draws from ``np.random.default_rng(SeedSequence([seed, 0, k]))``. ``--resume`` at step k therefore gets
exactly the batches an uninterrupted run would have got, with no data-loader state to save.
:func:`validation_set` uses its own seed stream and no augmentation, so it is fixed.

:class:`Prefetcher` (from :mod:`.prefetch`, re-exported here) computes the next few batches
while the jitted step runs: in a background thread (numpy and the engine release the GIL for
most of their work), or with ``--data-workers N`` in N forked processes, same bytes either way.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
from PIL import Image

from restore_cli.errors import UsageError
from restore_cli.io import (
    DEFAULT_MAX_PIXELS, defect_mask, display_path, list_images, read_header, read_image, usable_images,
)
from restore_cli.restoration.tiling import pad_to
from restore_cli.train.prefetch import Prefetcher  # noqa: F401  (part of this module's API)

log = logging.getLogger("restore.train")
Batch = dict[str, np.ndarray]
BATCH_KEYS = ("degraded", "clean", "mask")
_LUMA = np.array([0.299, 0.587, 0.114], np.float32)  # BT.601, as evaluate.metrics.luminance
_VAL_STREAM = 0x5A11  # seed-sequence word that separates validation draws from training draws
_CACHE_BYTES = 2 << 30  # decoded images kept in memory up to this much, then re-read on demand


def to_luma(pixels: np.ndarray) -> np.ndarray:
    """(H, W, C) float in [0, 1] -> (H, W) float32 luminance."""
    if pixels.ndim == 2:
        return pixels.astype(np.float32, copy=False)
    if pixels.shape[2] == 1:
        return pixels[:, :, 0].astype(np.float32, copy=False)
    return (pixels[:, :, :3] @ _LUMA).astype(np.float32)


class _Cache:
    """Decoded arrays by key while they fit in ``_CACHE_BYTES``; beyond that, callers re-read."""

    def __init__(self) -> None:
        self.items: dict[object, tuple[np.ndarray, ...]] = {}
        self.bytes = 0
        self.lock = threading.Lock()

    def get(self, key: object, load: Callable[[], tuple[np.ndarray, ...]]) -> tuple[np.ndarray, ...]:
        with self.lock:
            hit = self.items.get(key)
        if hit is not None:
            return hit
        value = load()
        size = sum(a.nbytes for a in value)
        with self.lock:
            if self.bytes + size <= _CACHE_BYTES:
                self.items[key] = value
                self.bytes += size
        return value


def _fingerprint(parts: Sequence[object]) -> str:
    return hashlib.sha256(json.dumps(list(parts), sort_keys=True, default=str).encode()).hexdigest()[:16]


def _file_list_parts(paths: Sequence[Path]) -> list[object]:
    return [(p.name, p.stat().st_size) for p in paths]


def crop_and_augment(
    rng: np.random.Generator, arrays: Sequence[np.ndarray], crop: int, augment: bool = True
) -> list[np.ndarray]:
    """The same random ``crop`` x ``crop`` window (and flip/rot90 if ``augment``) of every (H, W) array.

    Arrays smaller than ``crop`` are reflect-padded first, so tiny images still make full crops.
    """
    h, w = arrays[0].shape[:2]
    out = [pad_to(a[:, :, None], max(h, crop), max(w, crop))[:, :, 0] for a in arrays]
    y = int(rng.integers(0, max(h, crop) - crop + 1))
    x = int(rng.integers(0, max(w, crop) - crop + 1))
    out = [a[y : y + crop, x : x + crop] for a in out]
    if augment:
        k, flip = int(rng.integers(0, 4)), bool(rng.integers(0, 2))
        out = [np.rot90(a[:, ::-1] if flip else a, k) for a in out]
    return [np.ascontiguousarray(a, dtype=np.float32) for a in out]


class Source(Protocol):
    """Anything that turns (rng, image index) into one (degraded, clean, mask) crop of (H, W) arrays."""

    def __len__(self) -> int: ...

    def sample(self, rng: np.random.Generator, index: int, crop: int, augment: bool) -> tuple[np.ndarray, ...]: ...

    def fingerprint(self) -> str: ...


def _unfinished(root: Path) -> bool:
    """Whether ``root/summary.json`` says the degrade run that made it did not finish."""
    try:
        return json.loads((root / "summary.json").read_text(encoding="utf-8")).get("state") == "unfinished"
    except (OSError, ValueError, AttributeError):
        return False


class PairSource:
    """A ``restore degrade`` output folder, optionally restricted to some file names."""

    def __init__(self, root: Path, names: Sequence[str] | None = None, max_pixels: int = DEFAULT_MAX_PIXELS,
                 online_option: str = "--online"):
        self.root = Path(root)
        if not self.root.is_dir():
            raise UsageError(f"{display_path(self.root)}: {'not a folder' if self.root.exists() else 'no such folder'}"
                             f" (give a `restore degrade` output folder, or use {online_option} CLEAN_DIR)")
        for sub in ("clean", "degraded", "masks"):
            if not (self.root / sub).is_dir():
                raise UsageError(
                    f"{display_path(self.root)}: not a degrade folder (no {sub}/ inside); "
                    f"make one with `restore degrade`, or use {online_option} CLEAN_DIR"
                )
        if _unfinished(self.root):  # degrade marks a run stopped half-way so that it is not trusted
            raise UsageError(f"{display_path(self.root)}: an unfinished dataset (its degrade run was stopped before "
                             "the end); make it again with `restore degrade ... --overwrite`")
        all_names = [p.name for p in list_images(self.root / "degraded")]
        self.names = list(all_names if names is None else names)
        missing = [n for n in self.names if not (self.root / "masks" / n).is_file() or not (self.root / "clean" / n).is_file()]
        if missing:
            raise UsageError(f"{display_path(self.root)}: {missing[0]} has no matching clean/ or masks/ file")
        # Decoded up front, as --online folders are (io.usable_images): a sample with one unreadable
        # file is left out by name here instead of stopping the run at the batch that draws it.
        readable = [{p.name for p in usable_images([self.root / sub / n for n in self.names], max_pixels)}
                    for sub in ("degraded", "clean", "masks")]
        self.names = [n for n in self.names if all(n in names for names in readable) and self._same_size(n)]
        if not self.names:
            raise UsageError(f"{display_path(self.root / 'degraded')}: no images")
        self.max_pixels = max_pixels
        self._cache = _Cache()

    def _same_size(self, name: str) -> bool:
        """Whether the sample's three files agree in size (checked from their headers up front: a
        mismatched one stopped a run hours in, at the batch that first drew it)."""
        sizes = {(h.width, h.height) if (h := read_header(self.root / sub / name)) else None
                 for sub in ("degraded", "clean", "masks")}
        if len(sizes) > 1:
            log.warning("%s: skipped (differs in size between clean/, degraded/ and masks/)",
                        display_path(self.root / "degraded" / name))
        return len(sizes) == 1

    def has_defects(self) -> bool:
        """Whether any mask marks a defect (reading masks until one does). A dataset made with a
        preset without local defects (``gaussian``, ``grain``) has none: a detector trained on it
        learns to mark nothing, and its validation F1 reads 1 (nothing to find, nothing found)."""
        return any(np.any(self._cache.get(name, lambda: self._load(name))[2]) for name in self.names)

    def __len__(self) -> int:
        return len(self.names)

    def subset(self, names: Sequence[str]) -> PairSource:
        other = PairSource.__new__(PairSource)
        other.__dict__.update(self.__dict__, names=list(names))
        return other

    def _load(self, name: str) -> tuple[np.ndarray, ...]:
        read = lambda sub: read_image(self.root / sub / name, self.max_pixels)  # noqa: E731
        degraded, clean = to_luma(read("degraded").pixels), to_luma(read("clean").pixels)
        mask = defect_mask(read("masks"))  # as restore and evaluate read masks: 0/1 files too
        if not degraded.shape == clean.shape == mask.shape:
            raise UsageError(f"{display_path(self.root)}: {name} differs in size between clean/degraded/masks")
        return degraded, clean, mask.astype(np.float32)

    def sample(self, rng: np.random.Generator, index: int, crop: int, augment: bool) -> tuple[np.ndarray, ...]:
        name = self.names[index]
        return tuple(crop_and_augment(rng, self._cache.get(name, lambda: self._load(name)), crop, augment))

    def fingerprint(self) -> str:
        return _fingerprint(["pairs", *_file_list_parts([self.root / "degraded" / n for n in self.names])])


class OnlineSource:
    """Clean images degraded on the fly: a ``region`` (<= image) is degraded, then cropped.

    Degrading a region rather than the crop keeps the engine's size-relative settings
    (scratch length is a fraction of the diagonal, dust counts are per image) close to those
    of a real photo of ``region`` pixels, instead of cramming a whole photo's damage into a crop.

    ``config`` is one ``DegradeConfig`` or a tuple of them (a mixture): each sample then draws
    one of them uniformly from its own rng, so a detector sees clean, noisy and aged prints alike.
    """

    def __init__(self, paths: Sequence[Path], config: object, region: int = 256, max_pixels: int = DEFAULT_MAX_PIXELS,
                 option: str = "--online"):
        from restore_cli.degrade.engine import degrade  # imported late: only online training needs it

        self._degrade = degrade
        self.paths = list(paths)
        if not self.paths:  # option: how the trainer's command line names the folder, for messages
            raise UsageError(f"{option}: no clean images found")
        self.config, self.region, self.max_pixels = config, region, max_pixels
        self._cache = _Cache()

    @classmethod
    def from_folder(cls, folder: Path, config: object, region: int = 256, max_pixels: int = DEFAULT_MAX_PIXELS,
                    option: str = "--online") -> OnlineSource:
        if not Path(folder).is_dir():
            raise UsageError(f"{option} {display_path(folder)}: not a folder of clean images")
        return cls(usable_images(list_images(Path(folder)), max_pixels), config, region, max_pixels, option)

    def __len__(self) -> int:
        return len(self.paths)

    def subset(self, indices: Sequence[int]) -> OnlineSource:
        other = OnlineSource.__new__(OnlineSource)
        other.__dict__.update(self.__dict__, paths=[self.paths[i] for i in indices])
        return other

    def with_config(self, config: object) -> OnlineSource:
        """The same images (and cache) degraded by another config or mixture."""
        other = OnlineSource.__new__(OnlineSource)
        other.__dict__.update(self.__dict__, config=config)
        return other

    def sample(self, rng: np.random.Generator, index: int, crop: int, augment: bool) -> tuple[np.ndarray, ...]:
        path = self.paths[index]
        (clean,) = self._cache.get(path, lambda: (to_luma(read_image(path, self.max_pixels).pixels),))
        side = max(crop, min(self.region, *clean.shape))
        (region,) = crop_and_augment(rng, [clean], side, augment)
        config = self.config
        if isinstance(config, tuple):  # a mixture: one member per sample (a single config draws nothing)
            config = config[int(rng.integers(len(config)))]
        result = self._degrade(region[:, :, None], config, rng)
        mask = np.asarray(result.mask, np.float32)
        return tuple(crop_and_augment(rng, [to_luma(result.degraded), region, mask], crop, augment=False))

    def fingerprint(self) -> str:
        configs = self.config if isinstance(self.config, tuple) else (self.config,)
        cfg = [c.to_dict() if hasattr(c, "to_dict") else repr(c) for c in configs]
        cfg = cfg[0] if len(cfg) == 1 else cfg  # a single config keeps its old fingerprint (resume stays valid)
        return _fingerprint(["online", self.region, cfg, *_file_list_parts(self.paths)])


class ZoomedSource:
    """Another source's samples, a share of them as a scan made at a higher resolution would show them.

    Why: a detector trained on one scale learns defects 1-4 px wide; the same scratch on a print
    scanned at 2-4x the resolution is 2-4x wider and the picture around it smoother, and it is
    missed (bench section ``scan_scale``). With probability ``prob`` a sample is drawn at side
    ``ceil(crop / s)`` and enlarged to ``crop`` (image planes bicubic, clipped to [0, 1]; the
    mask bilinear, kept where >= 1/4: the defect and the soft fringe the enlargement gives it,
    as in the bench's truth), with ``s`` log-uniform in [1, ``max_zoom``]; the others pass
    through unchanged. Damage drawn before the enlargement is enlarged with the picture, grain
    included, as a scanner sees it.
    """

    MIN_SIDE = 16  # the smallest sample enlarged (a 160 px crop at 4x starts from 40 px)

    def __init__(self, source: Source, max_zoom: float, prob: float):
        self.source, self.max_zoom, self.prob = source, float(max_zoom), float(prob)

    def __len__(self) -> int:
        return len(self.source)

    def sample(self, rng: np.random.Generator, index: int, crop: int, augment: bool) -> tuple[np.ndarray, ...]:
        zoom = math.exp(rng.uniform(0.0, math.log(self.max_zoom)))
        if rng.random() >= self.prob:
            return self.source.sample(rng, index, crop, augment)
        small = max(self.MIN_SIDE, math.ceil(crop / zoom))
        degraded, clean, mask = self.source.sample(rng, index, small, augment)
        return (enlarge(degraded, crop, Image.BICUBIC), enlarge(clean, crop, Image.BICUBIC),
                (enlarge(mask, crop, Image.BILINEAR) >= 0.25).astype(np.float32))

    def fingerprint(self) -> str:
        return _fingerprint(["zoomed", self.max_zoom, self.prob, self.source.fingerprint()])


class MixedSource:
    """``source``'s samples, a share ``prob`` of them drawn from ``other`` (the same images) instead.

    Why (``restore train-mask --free-share``): every member of the online mixture puts defects in
    every crop, so the detector never saw a photo without one, while most of a real print and
    every Gaussian-noise benchmark image has none; with ``other`` = the same mixture without
    local defects, a share of the crops teaches it to flag nothing there.
    """

    def __init__(self, source: Source, other: Source, prob: float):
        if len(other) != len(source):
            raise ValueError("MixedSource: both sources must hold the same images")
        self.source, self.other, self.prob = source, other, float(prob)

    def __len__(self) -> int:
        return len(self.source)

    def sample(self, rng: np.random.Generator, index: int, crop: int, augment: bool) -> tuple[np.ndarray, ...]:
        chosen = self.other if rng.random() < self.prob else self.source
        return chosen.sample(rng, index, crop, augment)

    def fingerprint(self) -> str:
        return _fingerprint(["mixed", self.prob, self.source.fingerprint(), self.other.fingerprint()])


def enlarge(plane: np.ndarray, side: int, method: int) -> np.ndarray:
    """A float (H, W) plane resized to ``side`` x ``side`` by PIL, clipped to [0, 1]."""
    from restore_cli.restoration.mask_detector import resize_plane  # late: loads the detector's JAX stack

    return np.clip(resize_plane(plane, side, side, method), 0.0, 1.0)


def split_indices(count: int, val_fraction: float, val_count: int | None, seed: int) -> tuple[list[int], list[int]]:
    """Seeded train/validation split of ``count`` images; one image only -> it serves both (logged)."""
    if count < 2:
        log.warning("only %d image: validating on the training image", count)
        return list(range(count)), list(range(count))
    n_val = val_count if val_count is not None else max(1, round(count * val_fraction))
    if n_val >= count:  # asked for all of them: at least one image must train
        log.warning("%d validation images asked of %d: holding out %d, training on 1", n_val, count, count - 1)
    n_val = min(max(n_val, 1), count - 1)
    order = np.random.default_rng(np.random.SeedSequence([seed, _VAL_STREAM])).permutation(count)
    return sorted(order[n_val:].tolist()), sorted(order[:n_val].tolist())


def _stack(samples: list[tuple[np.ndarray, ...]]) -> Batch:
    return {key: np.stack([s[i] for s in samples])[..., None] for i, key in enumerate(BATCH_KEYS)}


class Batches:
    """Batch ``step`` of a run, as a pure function of ``(seed, step)`` (see the module docstring)."""

    def __init__(self, source: Source, batch: int, crop: int, seed: int, augment: bool = True):
        self.source, self.batch, self.crop, self.seed, self.augment = source, batch, crop, seed, augment

    @property
    def steps_per_epoch(self) -> int:
        """Steps that show every image once (one crop each)."""
        return max(1, math.ceil(len(self.source) / self.batch))

    def indices(self, step: int) -> list[int]:
        n, first = len(self.source), step * self.batch
        out, perms = [], {}
        for j in range(first, first + self.batch):
            epoch = j // n
            if epoch not in perms:
                perms[epoch] = np.random.default_rng(np.random.SeedSequence([self.seed, 1, epoch])).permutation(n)
            out.append(int(perms[epoch][j % n]))
        return out

    def __call__(self, step: int) -> Batch:
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, 0, step]))
        return _stack([self.source.sample(rng, i, self.crop, self.augment) for i in self.indices(step)])


def validation_set(source: Source, count: int, batch: int, crop: int, seed: int) -> list[Batch]:
    """A fixed list of batches: ``count`` samples (rounded up to whole batches) cycling over the images."""
    total = max(1, math.ceil(count / batch)) * batch
    samples = []
    for i in range(total):
        rng = np.random.default_rng(np.random.SeedSequence([seed, _VAL_STREAM, i]))
        samples.append(source.sample(rng, i % len(source), crop, augment=False))
    return [_stack(samples[k : k + batch]) for k in range(0, total, batch)]
