"""From the command line's inputs to a list of jobs: output names, shards, folder rules, masks.

Kept apart from the runner so each rule is a small pure function that tests can call.

* Output name: the input's path relative to the folder it was found in (``--recursive``
  mirrors sub-folders), stem + ``--suffix``, extension of ``--format`` (``same`` keeps the
  input's own extension). Two inputs that would land on one output name are an error for
  the second, never a silent overwrite.
* Shards: ``--shard I/N`` (1 <= I <= N) keeps the inputs whose relative path hashes to
  I - 1 modulo N (sha1 of the path's bytes). Hashing, unlike "every N-th file", keeps a
  file in the same shard when other files are added to the archive, and needs no
  coordination between machines: every file is in exactly one shard.
* Folder safety: the output may not be a folder that holds inputs (nor, with
  ``--recursive``, lie inside an input folder) unless ``--in-place``.
* One file: ``restore restore old.jpg -o fixed.jpg`` (one input file, ``-o`` with an image
  extension and not an existing folder) writes exactly that file, in the format its extension
  names (:func:`single_output`); the run's records and lock sit in its folder as for a folder.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import math
import os
from pathlib import Path

import numpy as np

from restore_cli.errors import InputError, UsageError
from restore_cli.io import IMAGE_SUFFIXES, defect_mask, display_path, read_image

log = logging.getLogger("restore.restore")

#: ``--format`` choices and the file extension each writes (``same`` keeps the input's).
FORMATS = {"same": None, "png": ".png", "jpg": ".jpg", "jpeg": ".jpg", "tiff": ".tif", "tif": ".tif"}


@dataclasses.dataclass(frozen=True)
class Job:
    source: Path  # the input file
    rel: Path  # its path relative to the folder it came from
    rel_output: Path  # the output's path relative to the output folder


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """``"2/4"`` -> (2, 4); None for no sharding. Raises UsageError for anything else."""
    if not text:
        return None
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise UsageError(f"--shard {text!r}: expected I/N, e.g. 1/4") from None
    if count < 1 or not 1 <= index <= count:
        raise UsageError(f"--shard {text!r}: need 1 <= I <= N")
    return index, count


def shard_of(rel: Path, count: int) -> int:
    """0-based shard of a relative input path (stable across runs, machines and added files)."""
    digest = hashlib.sha1(os.fsencode(rel.as_posix())).digest()
    return int.from_bytes(digest[:8], "big") % count


def check_suffix(suffix: str) -> None:
    """``--suffix`` is part of a file name: a path separator in it would write outside the output folder."""
    if "/" in suffix or "\\" in suffix or "\0" in suffix:
        raise UsageError(f"--suffix {suffix!r}: no '/', '\\' or NUL (it is appended to each file name)")


def output_name(rel: Path, fmt: str, suffix: str) -> Path:
    ext = FORMATS[fmt] or rel.suffix
    return rel.with_name(f"{rel.stem}{suffix}{ext}")


def plan_jobs(pairs: list[tuple[Path, Path]], fmt: str, suffix: str, shard: tuple[int, int] | None) -> list[Job]:
    if fmt not in FORMATS:
        raise UsageError(f"--format {fmt!r}: choose one of {', '.join(FORMATS)}")
    jobs = [Job(path, rel, output_name(rel, fmt, suffix)) for path, rel in pairs]
    if shard is not None:
        index, count = shard
        jobs = [job for job in jobs if shard_of(job.rel, count) == index - 1]
    return jobs


#: Image files this tool cannot write: ``-o photo.gif`` for one input is a mistake, not a folder's name.
OTHER_IMAGE_SUFFIXES = frozenset({
    ".gif", ".heic", ".heif", ".avif", ".jp2", ".j2k", ".jxl", ".psd", ".svg", ".ico", ".pdf", ".dng", ".cr2",
    ".nef", ".arw", ".raw", ".exr", ".hdr", ".pbm", ".pgm", ".ppm", ".tga",
})


def single_output(inputs: list[Path], pairs: list[tuple[Path, Path]], output: Path, *, fmt: str, suffix: str,
                  shard: str | None, in_place: bool) -> Job | None:
    """The one job of ``restore restore FILE -o NEW_FILE``, or None when ``output`` is a folder.

    ``output`` names a file when its extension is an image format's and no folder of that name
    exists. UsageError when that cannot mean one result: several inputs or a folder, or options
    that name outputs inside a folder (--format, --suffix, --shard), or the input itself without
    ``--in-place``.
    """
    if output.suffix.lower() in OTHER_IMAGE_SUFFIXES and not output.is_dir() and len(pairs) == 1:
        raise UsageError(f"-o {display_path(output)}: cannot write {output.suffix} images; name a PNG, JPEG, TIFF, "
                         "BMP or WebP file, or a folder")
    if output.suffix.lower() not in IMAGE_SUFFIXES or output.is_dir():
        return None
    if any(item.is_dir() for item in inputs) or len(pairs) != 1:  # one file given twice is one file
        raise UsageError(f"-o {display_path(output)} names one file, but the input is "
                         f"{'a folder' if any(item.is_dir() for item in inputs) else f'{len(pairs)} files'}: "
                         "give -o a folder for several results")
    if fmt != "same" or suffix or shard:
        raise UsageError(f"-o {display_path(output)} names the result itself: --format, --suffix and --shard "
                         "are for output folders (the extension decides the format)")
    source, rel = pairs[0]
    if output.resolve() == source.resolve() and not in_place:
        raise UsageError(f"-o {display_path(output)} is the input itself: pass --in-place to overwrite it")
    return Job(source, rel, Path(output.name))


def _input_folders(inputs: list[Path], pairs: list[tuple[Path, Path]]) -> set[Path]:
    """Every folder that holds an input: the folders given, and each input file's own folder."""
    return {path.resolve().parent for path, _ in pairs if path.exists()} | {
        item.resolve() for item in inputs if item.is_dir()}


def check_output_folder(inputs: list[Path], pairs: list[tuple[Path, Path]], output: Path, recursive: bool, in_place: bool) -> None:
    """UsageError if ``output`` is a file, or would mix results into the inputs' folders and
    ``--in-place`` is not given."""
    if output.exists() and not output.is_dir():  # before: "cannot create the output folder", status 1
        raise UsageError(f"-o {display_path(output)}: exists and is not a folder (name a folder for the results"
                         f"{'' if output.suffix.lower() in IMAGE_SUFFIXES else ', or an image file for one result'})")
    if in_place:
        return
    target = output.resolve()
    if target in _input_folders(inputs, pairs):
        raise UsageError(
            f"-o {display_path(output)} is an input folder: results would mix with the originals "
            "(choose another folder, or pass --in-place)"
        )
    if recursive:
        for item in inputs:
            if item.is_dir() and target.is_relative_to(item.resolve()):
                raise UsageError(
                    f"-o {display_path(output)} is inside the input folder {display_path(item)}, which "
                    "--recursive reads: the next run would restore the results again (use --in-place to insist)"
                )


def check_masks_folder(inputs: list[Path], pairs: list[tuple[Path, Path]], save_masks: Path | None,
                       output: Path | None, user_masks: Path | None = None) -> None:
    """UsageError if ``--save-masks`` would write over originals or results: masks are PNGs named
    after the inputs, so in an input folder they replace ``x.png`` itself (even with --in-place),
    and in the output folder the restored ``x.png`` (``output`` None: one file's result, which
    the runner compares with its mask path itself)."""
    if save_masks is None:
        return
    if save_masks.exists() and not save_masks.is_dir():
        raise UsageError(f"--save-masks {display_path(save_masks)}: exists and is not a folder")
    if user_masks is not None and save_masks.resolve() == user_masks.resolve():
        raise UsageError(f"--save-masks {display_path(save_masks)} is the --masks folder: the masks written would "
                         "replace the ones given (choose another folder)")
    target = save_masks.resolve()
    if target in _input_folders(inputs, pairs):
        raise UsageError(f"--save-masks {display_path(save_masks)} is an input folder: the masks, named after the "
                         "images, would replace them (choose another folder)")
    if output is not None and target == output.resolve():
        raise UsageError(f"--save-masks {display_path(save_masks)} is the output folder: the masks would replace "
                         "the restored images (choose another folder)")


def locate_user_mask(masks: Path, job: Job) -> Path:
    """The user's mask file for an input: same relative folder and stem, PNG preferred, any image extension."""
    folder = masks / job.rel.parent
    for ext in [".png", *sorted(set(IMAGE_SUFFIXES) - {".png"})]:
        candidate = folder / (job.rel.stem + ext)
        if candidate.is_file():
            return candidate
    raise InputError(job.source, f"no mask for it in {display_path(folder)} (expected {job.rel.stem}.png)")


def read_user_mask(path: Path, job: Job, image_shape: tuple[int, ...], max_pixels: int) -> np.ndarray:
    """A user mask as bool (H, W) (:func:`restore_cli.io.defect_mask`). Must match the image's size."""
    mask_image = read_image(path, max_pixels=max_pixels)
    if mask_image.pixels.shape[:2] != tuple(image_shape[:2]):
        h, w = mask_image.pixels.shape[:2]
        raise InputError(
            job.source, f"mask {display_path(path)} is {w}x{h} but the image is {image_shape[1]}x{image_shape[0]}"
        )
    mask = defect_mask(mask_image)
    brightest = float(mask_image.pixels.max())
    if not mask.any() and brightest > 0:  # a soft brush at half strength marked nothing, silently
        shown = math.floor(1000 * brightest) / 10  # rounded down: 127 of 255 is 49.8 %, under the 50 % rule
        log.warning("%s: marks no defect (its brightest pixel is %.1f%% of white; defects are drawn at 50%% or "
                    "more): nothing is inpainted", display_path(path), shown)
    return mask


__all__ = ["FORMATS", "Job", "parse_shard", "shard_of", "plan_jobs", "single_output", "check_output_folder", "check_masks_folder", "check_suffix", "locate_user_mask", "read_user_mask"]
