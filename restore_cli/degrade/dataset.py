"""`restore degrade` as a library call: input images -> a dataset folder.

Layout of the output folder::

    clean/<stem>_v000.png     the crop, 8-bit (gray or RGB)
    degraded/<stem>_v000.png  the same crop, degraded
    masks/<stem>_v000.png     8-bit, 255 where a local defect changed the pixel
    manifest.jsonl            one record per sample, in plan order (source, crop, seed, params)
    summary.json              config, counts, version, elapsed time

Every file is written atomically. All outputs except ``summary.json`` (which records the
elapsed time and worker count) are byte-identical for the same inputs, options and seed,
whatever ``workers`` is: samples are seeded per (input index, variation) and written in order.

Plan: inputs in sorted order, ``variations`` per input (default 1; with ``count`` and no
``variations``, enough variations to reach ``count``), then cut to the first ``count`` samples.
Samples of inputs that fail or are skipped are not replaced by others, so the plan never
depends on what failed. Images smaller than ``size`` are skipped with a warning: padding
would add mirrored content and seams that are not in the mask.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import logging
import math
import multiprocessing
import re
import time
from pathlib import Path

from restore_cli import __version__
from restore_cli.batch import BatchSummary, run_batch
from restore_cli.degrade.config import DegradeConfig
from restore_cli.degrade.samples import SUBFOLDERS, Job, JobResult, render_job
from restore_cli.errors import ExitStatus, InputError, RestoreError, UsageError
from restore_cli.io import DEFAULT_MAX_PIXELS, collect_inputs, display_path, write_bytes_atomic

log = logging.getLogger("restore.degrade")

#: scikit-image's bundled photographs (shipped in its wheel, never downloaded), used without inputs.
BUILTIN_SAMPLES = (
    "astronaut.png", "brick.png", "camera.png", "chelsea.png", "coffee.png", "coins.png",
    "grass.png", "gravel.png", "hubble_deep_field.jpg", "moon.png", "motorcycle_left.png", "rocket.jpg",
)
_OWN_FILES = ("manifest.jsonl", "summary.json")
_SAMPLE_NAME = re.compile(r".+_v[0-9]{3,}\.png|\..+\.partial")  # samples.py's names; write_bytes_atomic's temporaries
#: Samples one ``degrade`` run makes at most (--count, or inputs x --variations): far above any
#: training set here (train-mask's online mode draws fresh ones instead), below what the plan's
#: memory allows.
MAX_SAMPLES = 1_000_000
#: summary.json while the dataset is being written (replaced by the full one at the end).
_UNFINISHED = {"restore_version": __version__, "state": "unfinished"}
_PROGRESS_EVERY = 500  # samples between progress lines on stderr


@dataclasses.dataclass(frozen=True)
class DatasetOptions:
    out: Path
    size: int | None = None
    variations: int | None = None
    count: int | None = None
    colour: str = "keep"  # "keep", "gray" or "rgb"
    seed: int = 0
    workers: int = 1
    max_pixels: int = DEFAULT_MAX_PIXELS
    overwrite: bool = False
    preset: str = "custom"  # recorded in summary.json


@dataclasses.dataclass
class DatasetResult:
    out: Path
    samples: int
    summary: BatchSummary

    @property
    def status(self) -> ExitStatus:
        return self.summary.status


def builtin_inputs() -> list[tuple[Path, str]]:
    """(path, manifest name) of the bundled sample photos that this scikit-image ships."""
    from skimage import data

    folder = Path(data.data_dir)
    return [(folder / name, f"skimage.data/{name}") for name in BUILTIN_SAMPLES if (folder / name).is_file()]


def _unique_stems(rels: list[Path]) -> list[str]:
    """Output stems from relative paths, made unique (also case-insensitively) by a numeric suffix."""
    stems, seen = [], set()
    for rel in rels:
        base = rel.with_suffix("").as_posix().replace("/", "__")
        stem, n = base, 1
        while stem.casefold() in seen:
            stem, n = f"{base}-{n}", n + 1
        seen.add(stem.casefold())
        stems.append(stem)
    return stems


def plan_jobs(inputs: list[Path], config: DegradeConfig, options: DatasetOptions) -> list[Job]:
    if inputs:
        pairs = collect_inputs(inputs)
        entries = [(path, display_path(path)) for path, _ in pairs]
        stems = _unique_stems([rel for _, rel in pairs])
    else:
        entries = builtin_inputs()
        stems = _unique_stems([Path(Path(name).name) for _, name in entries])
        log.info("no input given: using %d sample photos bundled with scikit-image", len(entries))
    if not entries:
        folders = [display_path(p) for p in inputs if p.is_dir()]
        raise UsageError(f"no input images found in {', '.join(folders)} (its sub-folders are not searched)"
                         if folders else "no input images found")
    variations = options.variations or (math.ceil(options.count / len(entries)) if options.count else 1)
    budget = min(options.count if options.count is not None else math.inf, len(entries) * variations)
    if budget > MAX_SAMPLES:  # the plan is made before any sample: a billion filled the memory first
        raise UsageError(f"{budget:,} samples asked for: one run makes at most {MAX_SAMPLES:,} "
                         "(make a bigger set in several runs into different folders)")
    jobs = []
    for index, ((path, source), stem) in enumerate(zip(entries, stems)):
        take = min(variations, budget)
        if take <= 0:
            break
        budget -= take
        jobs.append(Job(index, path, source, stem, tuple(range(take)), config, options.size,
                        options.colour, options.seed, options.max_pixels))
    return jobs


def refuse_overlap(inputs: list[Path], out: Path) -> None:
    """An output folder that is an input, or holds one, would be cleared or mixed into: refuse it."""
    target = out.resolve()
    for item in inputs:
        source = item.resolve()
        if source == target or target in source.parents:
            raise UsageError(f"{display_path(out)}: holds the input {display_path(item)}; "
                             "write the dataset into another folder")


def prepare_output(out: Path, overwrite: bool) -> None:
    """Refuse a non-empty folder unless ``overwrite`` and it holds a dataset; then clear only what
    a dataset writes (its PNG samples, unfinished temporary files and its two record files), so a
    file of the user's in the folder survives, and a folder that is not a dataset is never touched.

    ``summary.json`` is written first, marked unfinished, so a run stopped half-way (Ctrl-C, a full
    disk) leaves a folder that is recognised as a dataset and that ``--overwrite`` replaces.
    """
    if out.exists() and not out.is_dir():
        raise UsageError(f"{display_path(out)}: exists and is not a folder")
    if out.is_dir() and any(out.iterdir()):
        is_dataset = any((out / name).is_file() for name in _OWN_FILES)
        if not is_dataset:
            raise UsageError(f"{display_path(out)}: folder is not empty and holds no dataset (no manifest.jsonl "
                             "or summary.json); choose a new or empty folder")
        if not overwrite:
            raise UsageError(f"{display_path(out)}: holds a dataset{_unfinished_note(out)} "
                             "(pass --overwrite to replace it)")
        log.warning("%s: replacing the previous dataset (--overwrite)", display_path(out))
        for name in SUBFOLDERS:
            for path in (out / name).glob("*") if (out / name).is_dir() else ():
                if _SAMPLE_NAME.fullmatch(path.name) and path.is_file():
                    path.unlink(missing_ok=True)
        for name in _OWN_FILES:
            (out / name).unlink(missing_ok=True)
    try:
        for name in SUBFOLDERS:
            (out / name).mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(out / "summary.json", (json.dumps(_UNFINISHED, indent=2) + "\n").encode())
    except OSError as exc:
        raise RestoreError(f"{display_path(out)}: cannot create the output folder ({exc.strerror or exc})") from None


def _unfinished_note(out: Path) -> str:
    try:
        unfinished = json.loads((out / "summary.json").read_text()).get("state") == _UNFINISHED["state"]
    except (OSError, ValueError, AttributeError):
        return ""
    return ", unfinished (stopped before its end)" if unfinished else ""


def _results(jobs: list[Job], workers: int, pool_box: list):
    """Job results in plan order, computed here or by 'spawn' worker processes."""
    if workers <= 1 or len(jobs) <= 1:
        return map(render_job, jobs)
    pool = concurrent.futures.ProcessPoolExecutor(
        min(workers, len(jobs)), mp_context=multiprocessing.get_context("spawn")
    )
    pool_box.append(pool)
    return pool.map(render_job, jobs)


def make_dataset(inputs: list[Path], config: DegradeConfig, options: DatasetOptions) -> DatasetResult:
    """Write the dataset described in the module docstring; per-file problems are reported, not fatal."""
    if options.seed < 0:
        raise UsageError(f"--seed must be >= 0, got {options.seed}")
    started = time.perf_counter()
    jobs = plan_jobs(inputs, config, options)
    refuse_overlap([job.path for job in jobs] + inputs, options.out)
    prepare_output(options.out, options.overwrite)
    records: list[dict] = []
    reduced: dict[str, int] = {}  # "alpha" / "16-bit": how many inputs lost it
    planned = sum(len(job.variations) for job in jobs)

    def write(result: JobResult) -> bool:
        job = result.job
        if result.error is not None:
            raise InputError(job.source, result.error)
        if result.skipped is not None:
            log.warning("%s: skipped (%s)", job.source, result.skipped)
            return False
        try:
            for folder, name, data in result.files:
                write_bytes_atomic(options.out / folder / name, data)
        except OSError as exc:
            raise RestoreError(f"{display_path(options.out)}: cannot write ({exc.strerror or exc})") from None
        for what in result.reduced:
            reduced[what] = reduced.get(what, 0) + 1
        before = len(records)
        records.extend(result.records)
        log.debug("%s: %d sample(s)", job.source, len(result.records))
        if len(records) // _PROGRESS_EVERY > before // _PROGRESS_EVERY:
            log.info("%d of %d samples written", len(records), planned)
        return True

    pools: list[concurrent.futures.ProcessPoolExecutor] = []
    try:
        summary = run_batch(_results(jobs, options.workers, pools), write)
    finally:
        for pool in pools:
            pool.shutdown(wait=True, cancel_futures=True)
    manifest = "".join(json.dumps(r, sort_keys=True) + "\n" for r in records)
    write_bytes_atomic(options.out / "manifest.jsonl", manifest.encode())
    elapsed = time.perf_counter() - started
    report = {
        "restore_version": __version__,
        "state": "complete",
        "preset": options.preset,
        "config": config.to_dict(),
        "options": {"size": options.size, "variations": options.variations, "count": options.count,
                    "colour": options.colour, "seed": options.seed, "workers": options.workers},
        "counts": {"samples": len(records), "images_done": summary.done, "images_failed": summary.failed,
                   "images_skipped": summary.skipped, "images_planned": len(jobs), "samples_planned": planned},
        "errors": summary.errors,
        "elapsed_s": round(elapsed, 3),
    }
    write_bytes_atomic(options.out / "summary.json", (json.dumps(report, indent=2) + "\n").encode())
    if reduced:  # once per run, not per file: a folder of 16-bit scans would repeat it hundreds of times
        log.warning("datasets are 8-bit grey or RGB: %s", ", ".join(
            f"{count} input(s) {'lost their alpha channel' if what == 'alpha' else 'were 16-bit, written with 8'}"
            for what, count in sorted(reduced.items())))
    if not records:  # nothing for a trainer down the pipe: fatal, and no path on stdout
        raise RestoreError(f"{display_path(options.out)}: no samples written ({summary.line('image')})")
    log.info("%d samples from %s in %.1f s", len(records), summary.line("image"), elapsed)
    return DatasetResult(options.out, len(records), summary)
