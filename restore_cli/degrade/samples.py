"""Turn one input image into its degraded samples (runs in worker processes: no logging, no writes).

Each (input index, variation) pair gets its own generator,
``np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(index, variation)))``, which
picks the crop and then every degradation. Samples therefore never depend on processing order
or on ``--workers``, and any single sample can be regenerated from the manifest alone.
"""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import numpy as np
from PIL import Image as PILImage

from restore_cli.degrade.config import DegradeConfig
from restore_cli.degrade.engine import degrade
from restore_cli.degrade.global_effects import LUMA
from restore_cli.errors import InputError
from restore_cli.io import read_image, to_integer

SUBFOLDERS = ("clean", "degraded", "masks")


@dataclasses.dataclass(frozen=True)
class Job:
    """One input image and the variations to make of it. Picklable, for 'spawn' worker processes."""

    index: int
    path: Path
    source: str  # as written in the manifest
    stem: str  # unique output name stem
    variations: tuple[int, ...]
    config: DegradeConfig
    size: int | None
    colour: str  # "keep", "gray" or "rgb"
    seed: int
    max_pixels: int


@dataclasses.dataclass
class JobResult:
    """Encoded files ``(subfolder, name, png bytes)`` and manifest records, or why there are none."""

    job: Job
    files: list[tuple[str, str, bytes]] = dataclasses.field(default_factory=list)
    records: list[dict] = dataclasses.field(default_factory=list)
    error: str | None = None  # the input could not be read (an InputError reason)
    skipped: str | None = None  # readable, but not usable with these options
    reduced: tuple[str, ...] = ()  # what of the input a dataset cannot keep: "alpha", "16-bit"


def sample_rng(seed: int, index: int, variation: int) -> np.random.Generator:
    """The generator of one sample: the same for a given (seed, input index, variation) everywhere."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(index, variation)))


def convert_colour(pixels: np.ndarray, colour: str) -> np.ndarray:
    """``gray``: Rec. 709 luminance (1 channel); ``rgb``: gray inputs repeated to 3; ``keep``: as is."""
    if colour == "gray" and pixels.shape[2] == 3:
        return (pixels @ LUMA)[:, :, None]
    if colour == "rgb" and pixels.shape[2] == 1:
        return np.repeat(pixels, 3, axis=2)
    return pixels


def png_bytes(array: np.ndarray) -> bytes:
    """An 8-bit (H, W) or (H, W, 1|3) array encoded as PNG (deterministic bytes)."""
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    buffer = io.BytesIO()
    PILImage.fromarray(np.ascontiguousarray(array)).save(buffer, format="PNG")
    return buffer.getvalue()


def render_job(job: Job) -> JobResult:
    """Read the image, then crop and degrade it once per variation; encode the three PNGs of each."""
    result = JobResult(job)
    try:
        image = read_image(job.path, job.max_pixels)
    except InputError as exc:
        result.error = exc.reason
        return result
    result.reduced = tuple(what for what, lost in (("alpha", image.alpha is not None), ("16-bit", image.bit_depth == 16))
                           if lost)  # datasets are 8-bit grey or RGB: said once per run by the writer
    pixels = convert_colour(image.pixels, job.colour)
    height, width = pixels.shape[:2]
    if job.size is not None and (height < job.size or width < job.size):
        result.skipped = f"{width}x{height} is smaller than --size {job.size}"
        return result
    for variation in job.variations:
        rng = sample_rng(job.seed, job.index, variation)
        crop_h, crop_w = (job.size, job.size) if job.size else (height, width)
        top, left = int(rng.integers(0, height - crop_h + 1)), int(rng.integers(0, width - crop_w + 1))
        clean = np.ascontiguousarray(pixels[top : top + crop_h, left : left + crop_w])
        sample = degrade(clean, job.config, rng)
        name = f"{job.stem}_v{variation:03d}.png"
        result.files += [
            ("clean", name, png_bytes(to_integer(clean, 8))),
            ("degraded", name, png_bytes(to_integer(sample.degraded, 8))),
            ("masks", name, png_bytes(sample.mask.astype(np.uint8) * 255)),
        ]
        result.records.append({
            "name": name,
            "source": job.source,
            "input_index": job.index,
            "variation": variation,
            "seed": job.seed,
            "spawn_key": [job.index, variation],
            "crop": {"left": left, "top": top, "width": crop_w, "height": crop_h},
            "channels": int(clean.shape[2]),
            "mask_fraction": round(float(sample.mask.mean()), 6),
            "params": sample.params,
        })
    return result
