"""``restore restore``: run one method over files and folders, safely, resumably, in any order of kills.

The order of operations is what makes a nightly run over an archive safe:

1. plan (inputs, output names, shard) and check the folder rules: usage errors before any work;
2. take the output folder's lock (status 4 at once if another run has it), then remove
   ``.partial`` files a killed run left behind: only a lock holder may do that;
3. build the method (loads checkpoints; a missing one is fatal, status 1, before any file;
   where the output folder does not exist yet, this comes first, so nothing is created);
4. per file: skip it if its sidecar record says the output is current, else read, restore,
   write the output atomically, save the mask, and write the record last.

Per-file problems (unreadable input, missing user mask, 16-bit input asked for as JPEG)
fail that file only, through :func:`restore_cli.batch.run_batch`; the exit status is then 3.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import errno
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import numpy as np

from restore_cli.batch import BatchSummary, run_batch
from restore_cli.errors import ExitStatus, InputError, RestoreError, UsageError
from restore_cli.io import (
    DEFAULT_MAX_PIXELS, IMAGE_SUFFIXES, JPEG_QUALITY, Header, Image, check_storable, collect_inputs, display_path,
    images_below, read_header, read_image, write_gray8, write_image, write_text_stream,
)
from restore_cli.log import printable, progress_enabled
from restore_cli.restoration import sidecar
from restore_cli.restoration.domain_weights import parse_domain_weights
from restore_cli.restoration.jobs import (
    Job, check_masks_folder, check_output_folder, check_suffix, locate_user_mask, parse_shard, plan_jobs, read_user_mask,
    single_output,
)
from restore_cli.restoration.lock import OutputLock, remove_partials
from restore_cli.restoration.methods import (
    DEFAULT_METHOD, DEVICES, MASK_SCALES, MASK_VIEWS, MAX_TILE, METHODS, MIN_TILE, Method, MethodSettings, parse_size,
    plan_tiles,
)
from restore_cli.restoration.tiling import TileListener, tile_progress

log = logging.getLogger("restore.restore")

#: Write errors that end the run rather than one file: the disk or quota is full, or read-only.
OUTPUT_FULL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS})


@dataclasses.dataclass
class RestoreOptions:
    inputs: list[Path]
    output: Path
    output_is_folder: bool = False  # "-o x.png/": a folder, though its name looks like an image's
    method: str = DEFAULT_METHOD
    recursive: bool = False
    fmt: str = "same"
    suffix: str = ""
    jpeg_quality: int = JPEG_QUALITY
    in_place: bool = False
    masks: Path | None = None
    save_masks: Path | None = None
    mask_threshold: float | None = None
    mask_views: int | None = None  # None: the method's default (vae_method.NETWORK_MASK_VIEWS, hybrid 1)
    mask_scales: int | None = None  # None: by image size (mask_detector.auto_scales)
    tile: int = 256
    max_memory: str | None = None
    device: str = "auto"
    domain_weights: str | None = None
    checkpoints: Path | None = None
    overwrite: bool = False
    fail_fast: bool = False
    shard: str | None = None
    max_pixels: int = DEFAULT_MAX_PIXELS


def _settings(options: RestoreOptions) -> MethodSettings:
    if options.method not in METHODS:
        raise UsageError(f"--method {options.method!r}: choose one of {', '.join(METHODS)}")
    if options.checkpoints is not None and options.checkpoints.exists() and not options.checkpoints.is_dir():
        raise UsageError(f"--checkpoints {display_path(options.checkpoints)}: not a folder (it names the folder "
                         "that holds mask_unet.safetensors and vae.safetensors)")
    if not MIN_TILE <= options.tile <= MAX_TILE or options.tile % 16:
        raise UsageError(f"--tile {options.tile}: must be a multiple of 16 from {MIN_TILE} to {MAX_TILE}")
    if options.mask_threshold is not None and not 0.0 < options.mask_threshold < 1.0:
        raise UsageError(f"--mask-threshold {options.mask_threshold}: must be between 0 and 1")
    if options.mask_views is not None and options.mask_views not in MASK_VIEWS:
        raise UsageError(f"--mask-views {options.mask_views}: choose one of {', '.join(map(str, MASK_VIEWS))}")
    if options.mask_scales is not None and options.mask_scales not in MASK_SCALES:
        raise UsageError(f"--mask-scales {options.mask_scales}: choose one of {', '.join(map(str, MASK_SCALES))}")
    if options.device not in DEVICES:
        raise UsageError(f"--device {options.device!r}: choose one of {', '.join(DEVICES)}")
    if options.domain_weights:  # validated for every method (the network's methods parse them again)
        parse_domain_weights(options.domain_weights)
        if options.method in ("hybrid", "classical"):
            log.warning("--domain-weights: no effect with --method %s (only the restoration network uses them)",
                        options.method)
    if options.masks is not None and not options.masks.is_dir():
        raise UsageError(f"--masks {display_path(options.masks)}: no such folder")
    tile, batch = plan_tiles(options.tile, parse_size(options.max_memory) if options.max_memory else None)
    extra = {"checkpoints": options.checkpoints} if options.checkpoints else {}
    return MethodSettings(
        mask_threshold=options.mask_threshold, mask_views=options.mask_views, mask_scales=options.mask_scales,
        user_masks=options.masks is not None, tile=tile, batch=batch,
        large_tiles=not options.max_memory, device=options.device, domain_weights=options.domain_weights, **extra,
    )


class _Run:
    """State shared by the per-file steps of one run (kept out of the module so runs do not leak)."""

    def __init__(self, options: RestoreOptions, method: Method, json_out: IO[str] | None, claimed: dict[Path, Path]):
        self.options, self.method, self.json_out = options, method, json_out
        self.base_recipe = method.recipe()
        self.claimed = claimed  # output or mask path -> the input that claimed it (see claim_names)
        self.on_tiles: TileListener | None = None  # set by _progress on a terminal
        self.counts: collections.Counter[str] = collections.Counter()  # records emitted, by status

    def emit(self, job: Job, status: str, seconds: float, error: str | None = None, coverage: float | None = None) -> None:
        output = self.options.output / job.rel_output
        self.counts[status] += 1
        if self.json_out is not None:
            record = {"input": display_path(job.source), "output": display_path(output), "status": status,
                      "error": error, "seconds": round(seconds, 3), "defect_coverage": coverage}
            write_text_stream(self.json_out, json.dumps(record) + "\n", "the --json records")
        if status == "ok":
            log.info("%s -> %s (%.2f s, defects %.2f %%)", display_path(job.source), display_path(output),
                     seconds, 100 * (coverage or 0.0))
        elif status == "skipped":
            log.info("%s: skipped (%s)", display_path(job.source), error or f"{display_path(output)} is up to date")

    def process(self, job: Job) -> bool:
        start = time.perf_counter()
        try:
            return self._process(job, start)
        except InputError as exc:
            error = exc
        except RestoreError:
            raise  # fatal for the whole run (e.g. a corrupt checkpoint)
        except MemoryError:
            error = InputError(job.source, "not enough memory to restore this image")
        except OSError as exc:
            where = f" ({display_path(exc.filename)})" if exc.filename else ""
            error = InputError(job.source, f"{exc.strerror or exc}{where}")
            if exc.errno in OUTPUT_FULL:  # every later file would fail the same way: stop here
                self.emit(job, "failed", time.perf_counter() - start, error=str(error))
                raise RestoreError(f"{display_path(self.options.output)}: cannot write ({exc.strerror}); stopped at "
                                   f"{display_path(job.source)}: a rerun skips the files already done") from None
        except Exception as exc:  # a bug or a library failure on one odd image must not stop an archive run
            log.debug("traceback for %s", display_path(job.source), exc_info=True)
            error = InputError(job.source, f"restoration failed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
        self.emit(job, "failed", time.perf_counter() - start, error=str(error))
        raise error

    def _process(self, job: Job, start: float) -> bool:
        opts = self.options
        output = opts.output / job.rel_output
        first = self.claimed.setdefault(output.resolve(), job.source)
        if first != job.source:
            raise InputError(job.source, f"would overwrite {display_path(output)}, the output of {display_path(first)}")
        mask_out = mask_path(opts, job)
        if mask_out is not None:  # x.png and x.jpg both have the mask x.png
            first = self.claimed.setdefault(mask_out.resolve(), job.source)
            if mask_out.resolve() == output.resolve():
                raise InputError(job.source, f"its mask would overwrite its result {display_path(output)} "
                                             "(choose another --save-masks folder)")
            if first != job.source:
                raise InputError(job.source, f"its mask would overwrite {display_path(mask_out)}, the mask of "
                                             f"{display_path(first)} (restore them into separate runs)")
        record_file = sidecar.record_path(opts.output, job.rel_output)
        if opts.in_place and job.source.resolve() != output.resolve():
            # With --in-place --suffix, an earlier run's outputs sit among the inputs: not new work
            # (said in its record and the log: before, --json had no record for them).
            if sidecar.find_result_record(opts.output, job.rel) is not None:
                self.emit(job, "skipped", time.perf_counter() - start,
                          error="an earlier in-place run's result: not restored again")
                return False
        if not job.source.is_file():
            read_image(job.source)  # raises the precise InputError (missing, a folder, ...)
        recipe = dict(self.base_recipe)
        if opts.jpeg_quality != JPEG_QUALITY and IMAGE_SUFFIXES.get(job.rel_output.suffix.lower()) == "JPEG":
            recipe["jpeg_quality"] = opts.jpeg_quality  # absent at the default: earlier records stay current
        mask_source = None
        if opts.masks is not None:
            mask_source = locate_user_mask(opts.masks, job)
            recipe["user_mask"] = sidecar.file_sha256(mask_source)
        record = sidecar.find_result_record(opts.output, job.rel_output)
        if not opts.overwrite and sidecar.is_current(record, job.source, output, recipe, mask_out):
            self.emit(job, "skipped", time.perf_counter() - start, coverage=(record or {}).get("defect_coverage"))
            return False
        if not opts.overwrite and output.exists() and output.resolve() != job.source.resolve():
            if record is None:  # not ours: a scan, another tool's result (or a mask restore saved there)
                saved_mask = sidecar.mask_record_path(opts.output, job.rel_output).is_file()
                what = "is a mask restore saved there" if saved_mask else "was not written by restore"
                raise InputError(job.source, f"{display_path(output)} exists and {what} "
                                             "(pass --overwrite to replace it)")
            if sidecar.edited_since(record, output):  # ours, then retouched: the edit would be lost
                raise InputError(job.source, f"{display_path(output)} was changed since restore wrote it "
                                             "(pass --overwrite to replace it)")
        rel_mask = None if mask_out is None else mask_out.relative_to(opts.save_masks)
        mask_record_file = None if rel_mask is None else sidecar.mask_record_path(opts.save_masks, rel_mask)
        if (not opts.overwrite and rel_mask is not None
                and sidecar.mask_not_ours(sidecar.find_mask_record(opts.save_masks, rel_mask), record, mask_out)):
            raise InputError(job.source, f"--save-masks: {display_path(mask_out)} exists and is not a mask restore "
                                         "saved for it (pass --overwrite to replace it)")
        before = sidecar.snapshot(job.source)
        header = read_header(job.source)  # refusals that need no pixels come before decoding them
        if header is not None:
            check_memory(job.source, header, self.method.bytes_per_pixel, self.method.name)
            check_extra_frames(job.source, output, header.frames)
        image = read_image(job.source, max_pixels=opts.max_pixels)
        try:
            check_storable(output, image)  # before the models run, not after
        except InputError as exc:
            raise InputError(job.source, f"cannot write {display_path(output)}: {exc.reason}") from None
        if image.frames > 1:
            log.warning("%s: holds %d images (pages or frames); only the first is restored into %s",
                        display_path(job.source), image.frames, display_path(output))
        user_mask = None if mask_source is None else read_user_mask(mask_source, job, image.pixels.shape, opts.max_pixels)
        output_shape = image.pixels.shape[:2]
        with tile_progress(self.on_tiles):
            restored = self.method.restore(image.pixels, user_mask)
        pixels, mask = restored.pixels, restored.mask
        del restored, user_mask
        if not np.isfinite(pixels).all():  # written out, NaN would be black: never a silent "done"
            raise InputError(job.source, "the model gave non-finite values (a damaged checkpoint, or a device fault?); "
                                         "nothing was written")
        # Replace the pixels without Image.with_pixels: it would make two more full-size copies.
        image = dataclasses.replace(image, pixels=np.clip(pixels, 0.0, 1.0, out=pixels))
        del pixels
        if mask is None:  # a method that ran without a defect mask
            mask = np.zeros(output_shape, bool)
        coverage = float(np.count_nonzero(mask)) / max(mask.size, 1)
        if coverage >= 1.0:
            log.warning("%s: its defect mask covers the whole image; nothing to inpaint from (left as it was)",
                        display_path(job.source))
        extra = {"input_path": display_path(job.source), "defect_coverage": round(coverage, 6)}
        if output.resolve() != job.source.resolve():
            extra["replaces"] = sidecar.fingerprint(output)

        def record_result(finished: Path, fields: dict) -> None:
            sidecar.write(record_file, before, finished, recipe, {**extra, **fields})

        def record_mask(finished: Path) -> None:
            sidecar.write_mask_record(mask_record_file, finished, mask_out, display_path(job.source))

        try:
            write_recorded(output, image, opts.jpeg_quality, mask_out, mask, record_result, record_mask)
        except InputError as exc:  # e.g. 16 bits or alpha asked for as JPEG: name the input, not the output
            raise InputError(job.source, f"cannot write {display_path(output)}: {exc.reason}") from None
        self.emit(job, "ok", time.perf_counter() - start, coverage=round(coverage, 6))
        return True


def mask_path(options: RestoreOptions, job: Job) -> Path | None:
    """Where ``--save-masks`` puts a job's mask (a PNG named after the input, whatever its format)."""
    return None if options.save_masks is None else options.save_masks / job.rel.parent / f"{job.rel.stem}.png"


def claim_names(options: RestoreOptions, jobs: list[Job]) -> dict[Path, Path]:
    """Each output and mask path -> the input that claims it: the first in the order an unsharded run
    meets them. Claimed for every shard's files before any is written, so x.png and x.jpg (one mask
    x.png, or one output with --format png) fail the same way whichever shards they fall in (before,
    each shard wrote its own over the other's), and a shard cleans up only temporaries it owns."""
    claimed: dict[Path, Path] = {}
    for job in jobs:
        for path in (options.output / job.rel_output, mask_path(options, job)):
            if path is not None:
                claimed.setdefault(path.resolve(), job.source)
    return claimed


def write_recorded(output: Path, image: Image, jpeg_quality: int, mask_out: Path | None, mask: np.ndarray,
                   record_result: Callable[[Path, dict], None], record_mask: Callable[[Path], None]) -> None:
    """Write a result (and its mask at ``mask_out``) with their records, each record just before
    its file's rename: the mask is finished, then the result; ``record_result(finished, fields)``
    (``fields`` names the mask), the result's rename, ``record_mask(finished)``, the mask's rename.
    So no kill leaves a file the next run would take for someone else's."""

    def write_result(mask_tmp: Path | None = None) -> None:
        fields = {"mask": None if mask_tmp is None else sidecar.fingerprint(mask_tmp)}
        write_image(output, image, jpeg_quality=jpeg_quality,
                    before_replace=lambda finished: record_result(finished, fields))
        if mask_tmp is not None:
            record_mask(mask_tmp)

    if mask_out is None:
        write_result()
    else:  # the mask's rename comes last: write_result runs on the finished mask
        write_gray8(mask_out, np.where(mask, np.uint8(255), np.uint8(0)), before_replace=write_result)


def memory_available() -> int:
    """Bytes this process could still get without the kernel's out-of-memory killer: free RAM
    (reclaimable cache included) plus free swap."""
    import psutil

    try:
        return int(psutil.virtual_memory().available + psutil.swap_memory().free)
    except (OSError, RuntimeError, AttributeError):  # no /proc (a sandbox): do not guess, do not refuse
        return 1 << 62


def check_memory(source: Path, header: Header, bytes_per_pixel: int, method: str = "") -> None:
    """InputError, before decoding, for an image the method would need more memory for than there is.

    Why: the out-of-memory killer ends the whole process without a word, so a nightly run would
    die at the same big scan every night and never reach the files after it. Refusing that one
    file with a reason keeps the batch going (exit status 3).
    """
    if bytes_per_pixel <= 0:
        return
    size = (header.width, header.height)
    need, have = size[0] * size[1] * bytes_per_pixel, memory_available()
    lighter = "; --method hybrid needs a third less (it does not denoise)" if method in ("auto", "vae") else ""
    if need > have:
        raise InputError(source, f"{size[0]}x{size[1]} needs about {need / 2**30:.1f} GiB of memory to restore, "
                                 f"{have / 2**30:.1f} GiB is free (RAM and swap){lighter}")


def check_extra_frames(source: Path, output: Path, frames: int) -> None:
    """A file holding several images (TIFF pages or thumbnail, animation) is restored as its first image
    (the runner warns): refuse to overwrite the original (``--in-place`` without ``--suffix``), which
    would drop the other images for good. Called before decoding: a big scan is not decoded to be refused.
    """
    if frames > 1 and output.resolve() == source.resolve():
        raise InputError(source, f"holds {frames} images (pages or frames) and only the first would be kept: "
                                 "not overwritten (write to another folder, or use --suffix)")


def restore_files(options: RestoreOptions, json_out: IO[str] | None = None, console: Any = None) -> ExitStatus:
    """Restore every input into ``options.output``; returns OK (0) or PARTIAL (3), raises RestoreError otherwise."""
    started = time.perf_counter()
    settings = _settings(options)
    shard = parse_shard(options.shard)
    check_suffix(options.suffix)
    pairs = collect_inputs(options.inputs, recursive=options.recursive)
    single = None if options.output_is_folder else single_output(
        options.inputs, pairs, options.output, fmt=options.fmt, suffix=options.suffix, shard=options.shard,
        in_place=options.in_place)
    if single is not None:  # -o names the result: its folder is the output folder, its name the job's output
        options = dataclasses.replace(options, output=options.output.parent)
        jobs = [single]
    else:
        check_output_folder(options.inputs, pairs, options.output, options.recursive, options.in_place)
        jobs = plan_jobs(pairs, options.fmt, options.suffix, shard)
    check_masks_folder(options.inputs, pairs, options.save_masks, options.output if single is None else None,
                       options.masks)
    masks = options.save_masks  # written (and cleaned up) too, so locked too; one folder may hold the other
    masks = None if masks is None or masks.resolve() == options.output.resolve() else masks
    with contextlib.ExitStack() as locks:
        # Locks that need no new folder come first: a run refused with status 4 then makes none.
        output_lock = OutputLock(options.output, shard, ours=() if masks is None else (masks,))
        masks_lock = None if masks is None else OutputLock(masks, shard, ours=(options.output,))
        locks.callback(output_lock.release)
        output_lock.take_above()
        if masks_lock is not None:
            locks.callback(masks_lock.release)
            masks_lock.take_above()
            if masks.is_dir():  # an existing one before anything is made
                masks_lock.take()
                masks_lock = None
        # A folder no other run can hold yet: build the method first, so that a missing or damaged
        # checkpoint leaves no empty output folder behind; an existing one is locked first (below).
        method = None if options.output.exists() else METHODS[options.method](settings)
        try:
            options.output.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RestoreError(f"{display_path(options.output)}: cannot create the output folder "
                               f"({exc.strerror})") from None
        output_lock.take()
        if masks_lock is not None:
            masks_lock.take()
        only_own = shard is not None or single is not None  # other writers' temporaries may be there
        claimed = claim_names(options, jobs if shard is None else plan_jobs(pairs, options.fmt, options.suffix, None))
        own_outputs = [job.rel_output for job in jobs
                       if claimed[(options.output / job.rel_output).resolve()] == job.source]
        own_masks = [] if options.save_masks is None else [
            job.rel.with_suffix(".png") for job in jobs if claimed[mask_path(options, job).resolve()] == job.source]
        owned = {options.output: own_outputs if only_own else None, options.save_masks: own_masks if only_own else None}
        for folder in (options.output, options.save_masks):
            # One file's folder may be any folder (a home directory): not walked, only its own temporaries.
            walk = single is None or folder != options.output
            if folder is not None and (removed := remove_partials(folder, owned[folder], walk=walk)):
                log.info("%s: removed %d unfinished file(s) of an interrupted run", display_path(folder), removed)
        if not jobs:
            nested = not options.recursive and any(item.is_dir() and images_below(item) for item in options.inputs)
            log.warning("no images to restore%s%s", " in this shard" if shard else "",
                        " (sub-folders are read with -r)" if nested else "")
        if method is None:  # after the lock: a concurrent run must exit at once
            method = METHODS[options.method](settings)
        run = _Run(options, method, json_out, claimed)
        try:
            summary = run_batch(_progress(jobs, console, run), run.process, fail_fast=options.fail_fast,
                                total=len(jobs))
        except RestoreError as exc:  # fatal (a full disk): the records still end with a summary that says so
            if json_out is not None:
                counts = run.counts
                stopped = BatchSummary(done=counts["ok"], skipped=counts["skipped"], failed=counts["failed"])
                stopped.not_tried = len(jobs) - stopped.handled
                with contextlib.suppress(RestoreError):  # the records' own stream may be what failed
                    _write_summary(json_out, stopped, time.perf_counter() - started, method, exc.status, str(exc))
            raise
    seconds = time.perf_counter() - started
    log.debug("%s: %d model compilation(s), tile %d, batch %d", method.name, method.compile_count(),
              settings.tile, settings.batch)
    if json_out is not None:
        _write_summary(json_out, summary, seconds, method, summary.status)
    shown = options.output if single is None else options.output / single.rel_output
    line = f"restore: {summary.line()} in {seconds:.1f} s -> {display_path(shown)}"
    if console is not None:
        console.print(printable(line), markup=False, highlight=False, soft_wrap=True)
    else:
        log.warning("%s", line)  # made printable by the handler's filter
    return summary.status


def _write_summary(json_out: IO[str], summary: BatchSummary, seconds: float, method: Method, status: int,
                   error: str | None = None) -> None:
    """The last --json record: the counts, and the exit status (with the error of a fatal stop)."""
    record = {"summary": True, "done": summary.done, "skipped": summary.skipped, "failed": summary.failed,
              "not_tried": summary.not_tried, "seconds": round(seconds, 3), "compile_count": method.compile_count(),
              "status": int(status)}
    if error is not None:
        record["error"] = error
    write_text_stream(json_out, json.dumps(record) + "\n", "the --json records")


def _progress(jobs: list[Job], console: Any, run: _Run | None = None):
    """The jobs, with a progress bar on an interactive terminal only (never in cron logs).

    A second bar follows the current image's model passes tile by tile, each named as
    :func:`~restore_cli.restoration.tiling.named_pass` calls it ("network", "detector, view 2/4",
    "detector at 1/2 size, view 1/4"; an unnamed one "pass N"), so a big scan's minutes show
    movement and which pass runs.
    """
    if console is None or not progress_enabled() or not jobs or not log.isEnabledFor(logging.INFO):
        yield from jobs
        return
    from rich.progress import Progress

    with Progress(console=console, transient=True) as bar:
        task = bar.add_task("restoring", total=len(jobs))
        for job in jobs:
            tiles = bar.add_task(f"  {job.rel.name}", total=None)
            state = {"passes": 0, "last": 0}

            def on_tiles(done: int, total: int, what: str | None, tiles=tiles, state=state,
                         name=job.rel.name) -> None:
                if state["passes"] == 0 or done <= state["last"]:  # the count went back: a new pass
                    state["passes"] += 1
                state["last"] = done
                bar.update(tiles, completed=done, total=total,
                           description=f"  {name}: {what or 'pass ' + str(state['passes'])}")

            if run is not None:
                run.on_tiles = on_tiles
            yield job
            bar.remove_task(tiles)
            bar.advance(task)
        if run is not None:
            run.on_tiles = None
