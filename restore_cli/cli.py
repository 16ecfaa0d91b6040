"""The `restore` command line: each command is Annotated options, a docstring and one library call.

Conventions shared by every command:
- stdout carries only pipeline output (a path, or --json records); logs and progress go to stderr;
- a command whose input argument is omitted reads paths from stdin when stdin is a pipe;
- domain errors (:class:`RestoreError`) become one line on stderr and a documented exit status.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import stat
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Optional

import typer
from typer._click import exceptions as click_errors  # typer is pinned: its bundled click's errors

from restore_cli import __version__
from restore_cli.errors import ExitStatus, RestoreError, UsageError
from restore_cli.io import DEFAULT_MAX_PIXELS, read_paths_from_stdin, write_text_stream
from restore_cli.log import printable, setup_logging, stderr_console

EXIT_STATUSES_HELP = (
    "Exit status: 0 all done; 1 fatal error; 2 usage error; "
    "3 finished but some files failed; 4 output folder locked by another run; "
    "130 interrupted (Ctrl-C); 143 terminated (SIGTERM)."
)

app = typer.Typer(
    name="restore",
    help=(
        "Bring damaged old photographs back: find scratches, cracks and dust, fill them in, "
        "remove noise; make training data, train and evaluate the models.\n\n"
        "Pipeline examples:\n\n"
        "\b\n"
        "  restore degrade photos/ --size 256 --variations 4 -o data | restore train-mask -o mask.safetensors\n"
        "  find scans -name '*.tif' | restore restore -o restored/ --json > log.jsonl\n\n"
        + EXIT_STATUSES_HELP
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)

# ----------------------------------------------------------------- shared options (defined once)
Verbose = Annotated[bool, typer.Option("--verbose", "-v", help="More detail on stderr (compile counts, timings).")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="Only warnings, errors and the final summary on stderr.")]
Recursive = Annotated[
    bool, typer.Option("--recursive", "-r", help="Descend into sub-folders (restore mirrors them in its output; "
                                                 "evaluate pairs files by their path below each folder).")
]
Seed = Annotated[int, typer.Option(min=0, help="Seed that fixes every random choice (same seed, same bytes).")]
MaxPixels = Annotated[
    int, typer.Option(min=1, help="Refuse images with more pixels than this (decompression-bomb guard).")
]
Workers = Annotated[int, typer.Option(min=1, help="Worker processes (results do not depend on it).")]
# Trainers: the dataset argument, resumable state and its cadence are the same for every model.
TrainDataset = Annotated[
    Optional[Path],
    typer.Argument(help="A `restore degrade` folder (clean/, degraded/, masks/); read from stdin when piped.",
                   show_default=False),
]
Resume = Annotated[bool, typer.Option(help="Continue exactly from OUTPUT's .last.safetensors.")]
DataWorkers = Annotated[
    Optional[int],
    typer.Option(min=0, help="Processes drawing training batches (Linux); 0 = one thread (default: 0 on a CPU, up to 8 "
                             "spare cores on a GPU). The batches do not depend on it.", show_default=False),
]
CheckpointEvery = Annotated[
    Optional[int], typer.Option(min=1, help="Validate and write the resumable state every N steps.")
]
TimeLimit = Annotated[
    Optional[float],
    typer.Option(min=0.0, help="Stop cleanly after this many minutes (validate, write the resumable state and, "
                               "if it improved, the best checkpoint); --resume continues the same run.",
                 show_default=False),
]
StopAt = Annotated[
    Optional[int],
    typer.Option(min=1, help="Stop cleanly at this step of the --steps schedule, as --time-limit does but "
                             "reproducibly; --resume continues the same run.", show_default=False),
]
__all__ = ["app", "main", "DEFAULT_MAX_PIXELS", "Verbose", "Quiet", "Seed", "MaxPixels", "Workers"]


class Terminated(KeyboardInterrupt):
    """SIGTERM (``kill``, ``timeout``, a scheduler ending a job), stopping the command as Ctrl-C does."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated


def run_library_call(call: Callable[[], object], verbose: bool = False, quiet: bool = False) -> None:
    """Run one library call and turn its result or domain error into an exit status.

    SIGTERM is handled like Ctrl-C (what is finished stays whole: atomic outputs, and training
    writes the resumable state of the step it stopped on) and exits with 143, 128 + its number,
    instead of Python's default of dying where it stands; a SIGTERM the caller set to be ignored
    stays ignored.
    """
    setup_logging(verbose=verbose, quiet=quiet)
    previous = signal.getsignal(signal.SIGTERM)
    if previous is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        status = call()
    except RestoreError as exc:
        stderr_console.print(f"error: {printable(str(exc))}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(int(exc.status)) from None
    except Terminated:
        stderr_console.print("terminated", markup=False)
        raise typer.Exit(128 + signal.SIGTERM) from None
    except KeyboardInterrupt:
        stderr_console.print("interrupted", markup=False)
        raise typer.Exit(130) from None
    except BrokenPipeError:  # `... | head`: the reader left; nothing to say to it
        with contextlib.suppress(OSError, ValueError, AttributeError):  # nor at exit, when Python flushes stdout
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise typer.Exit(int(ExitStatus.FATAL)) from None
    finally:
        if previous is signal.SIG_DFL:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
    raise typer.Exit(int(status) if isinstance(status, int) else int(ExitStatus.OK))


def _piped(stream) -> bool:
    """Whether ``stream`` is a pipe, socket or file: something that was meant to be read, unlike a
    terminal or /dev/null."""
    try:
        mode = os.fstat(stream.fileno()).st_mode
    except (OSError, ValueError, AttributeError):
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or stat.S_ISREG(mode)


def check_open_range(option: str, value: float | None, low: float, high: float = math.inf) -> None:
    """UsageError unless ``value`` (when given) lies strictly between ``low`` and ``high``; NaN never does."""
    if value is not None and not low < value < high:
        bound = f"between {low:g} and {high:g}" if math.isfinite(high) else f"above {low:g}"
        raise UsageError(f"{option} must be {bound}, got {value:g}")


def check_finite(option: str, value: float | None, minimum: float = -math.inf) -> None:
    """UsageError unless ``value`` (when given) is a finite number at least ``minimum``: NaN and
    infinity ran and then failed as "diverged", or were written into a checkpoint's JSON header."""
    if value is not None and not (math.isfinite(value) and value >= minimum):
        raise UsageError(f"{option} must be a finite number{'' if math.isinf(minimum) else f' >= {minimum:g}'}, "
                         f"got {value:g}")


def paths_or_stdin(given: list[Path] | None, what: str, required: bool = True) -> list[Path]:
    """The paths given on the command line, else those piped on stdin (one per line).

    Without ``required`` a command has a default for no input (degrade: the bundled sample
    photos), but a pipe that gave no paths is an error all the same: in
    ``find ... | restore degrade`` it means the command before found nothing.
    """
    if given:
        return list(given)
    if sys.stdin is not None and not sys.stdin.isatty():
        piped = read_paths_from_stdin(sys.stdin)
        if piped:
            return piped
        if _piped(sys.stdin):
            raise UsageError(f"no {what} given: stdin is a pipe that gave no paths (did the command before it "
                             "find nothing?)")
    if required:
        raise UsageError(f"no {what} given: pass it as an argument or pipe its path on stdin")
    return []


def stdout_stream(what: str):
    """sys.stdout for ``what`` (--json records, a path), or a clear error where it was closed (``>&-``)."""
    if sys.stdout is None:
        raise UsageError(f"stdout is closed: nowhere to write {what}")
    return sys.stdout


def print_path(path: Path) -> None:
    """The one line a producer writes on stdout, for the next command in a pipeline."""
    write_text_stream(stdout_stream(f"the path of {path}"), f"{path}\n", f"the path of {path}")


def minutes_to_s(minutes: float | None) -> float | None:
    return None if minutes is None else minutes * 60.0


def training_dataset(dataset: Path | None, online_source: Path | None) -> Path | None:
    """The one DATASET folder of a trainer: the argument, else a path piped on stdin; none with online training."""
    if online_source is not None:
        return dataset
    folders = paths_or_stdin([dataset] if dataset else None, "DATASET folder")
    if len(folders) > 1:
        raise UsageError(f"a trainer takes one DATASET folder, got {len(folders)}")
    return folders[0]


def version_callback(value: bool) -> None:
    if value:
        sys.stdout.write(f"restore {__version__}\n")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        Optional[bool], typer.Option("--version", callback=version_callback, is_eager=True, help="Print the version.")
    ] = None,
) -> None:
    """restore: old-photo restoration toolchain."""


# ----------------------------------------------------------------- commands
# Each command below is: Annotated options + a docstring with an example + one library call.
# Keep the library free of Typer: it raises RestoreError subclasses and logs to "restore.*".


@app.command()
def degrade(
    inputs: Annotated[
        Optional[list[Path]],
        typer.Argument(help="Photos or folders of photos (read from stdin when omitted and piped; "
                            "else scikit-image's bundled sample photos).", show_default=False),
    ] = None,
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Output folder: clean/, degraded/, masks/, manifest.jsonl, summary.json.")
    ] = ...,
    preset: Annotated[
        str, typer.Option(help="old-photo: defects + ageing, grain, noise, blur, JPEG; scratches: local defects only; "
                               "gaussian: Gaussian noise only; grain: film grain only.")
    ] = "old-photo",
    sigma: Annotated[Optional[float], typer.Option(help="Fixed Gaussian noise sigma, 0..255 units.")] = None,
    size: Annotated[
        Optional[int], typer.Option(min=8, help="Random SIZE x SIZE crops; smaller images are skipped. Default: whole images.")
    ] = None,
    variations: Annotated[
        Optional[int], typer.Option(min=1, help="Degraded variants per input (default 1, or enough to reach --count).")
    ] = None,
    count: Annotated[Optional[int], typer.Option(min=1, help="Stop after this many samples in all.")] = None,
    gray: Annotated[
        Optional[bool],
        typer.Option("--gray/--rgb", help="Convert inputs to gray or RGB (default: keep each image's).", show_default=False),
    ] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace the dataset in a non-empty output folder.")] = False,
    scratch_kinds: Annotated[
        Optional[str], typer.Option(metavar="KINDS", help="Comma list of linear, broken, curved, cracks; 'none' for no scratches.")
    ] = None,
    scratch_count: Annotated[Optional[str], typer.Option(metavar="LOW,HIGH", help="Scratches per sample.")] = None,
    width_range: Annotated[Optional[str], typer.Option(metavar="LOW,HIGH", help="Scratch width in pixels.")] = None,
    dust: Annotated[Optional[bool], typer.Option("--dust/--no-dust", help="Dust and spots.", show_default=False)] = None,
    dust_count: Annotated[Optional[str], typer.Option(metavar="LOW,HIGH", help="Dust spots per sample.")] = None,
    noise_prob: Annotated[Optional[float], typer.Option(help="Probability of Gaussian noise.")] = None,
    grain_prob: Annotated[Optional[float], typer.Option(help="Probability of film grain.")] = None,
    blur_prob: Annotated[Optional[float], typer.Option(help="Probability of blur.")] = None,
    resample_prob: Annotated[Optional[float], typer.Option(help="Probability of down-up resampling.")] = None,
    jpeg_prob: Annotated[Optional[float], typer.Option(help="Probability of JPEG compression.")] = None,
    jpeg_quality: Annotated[Optional[str], typer.Option(metavar="LOW,HIGH", help="JPEG quality (1..100).")] = None,
    fade_prob: Annotated[Optional[float], typer.Option(help="Probability of fading (contrast, black level).")] = None,
    sepia_prob: Annotated[Optional[float], typer.Option(help="Probability of sepia toning (RGB only).")] = None,
    settings: Annotated[
        Optional[list[str]],
        typer.Option("--set", metavar="KEY=VALUE", help="Any setting as KEY=VALUE, e.g. dust.radius_range=1,5 (repeatable; "
                                   "all keys are in summary.json).", show_default=False),
    ] = None,
    seed: Seed = 0,
    workers: Workers = 1,
    max_pixels: MaxPixels = DEFAULT_MAX_PIXELS,
    verbose: Verbose = False,
    quiet: Quiet = False,
) -> None:
    """Make training/benchmark data: clean crops, degraded copies and exact defect masks.

    The mask marks scratches, cracks and dust (255); global effects (noise, blur, JPEG, fading)
    are applied afterwards and never marked. Prints only the output folder, so it pipes:

    \b
      restore degrade photos/ -o data --size 256 --variations 4 | restore train-mask -o mask.safetensors
    """
    from restore_cli.degrade.config import from_preset
    from restore_cli.degrade.dataset import DatasetOptions, make_dataset

    def call() -> int:
        config = from_preset(preset, {
            "noise.sigma_range": sigma, "scratches.kinds": scratch_kinds, "scratches.count_range": scratch_count,
            "scratches.width_range": width_range, "dust.enabled": dust, "dust.count_range": dust_count,
            "noise.prob": noise_prob, "grain.prob": grain_prob, "blur.prob": blur_prob,
            "resample.prob": resample_prob, "jpeg.prob": jpeg_prob, "jpeg.quality_range": jpeg_quality,
            "fade.prob": fade_prob, "sepia.prob": sepia_prob,
        }, settings or ())
        options = DatasetOptions(
            out=out, size=size, variations=variations, count=count,
            colour="keep" if gray is None else "gray" if gray else "rgb", seed=seed, workers=workers,
            max_pixels=max_pixels, overwrite=overwrite, preset=preset,
        )
        result = make_dataset(paths_or_stdin(inputs, "input", required=False), config, options)
        print_path(result.out)
        return int(result.status)

    run_library_call(call, verbose=verbose, quiet=quiet)


@app.command()
def evaluate(
    results: Annotated[
        Optional[list[Path]],
        typer.Argument(help="Result folders, one per method/model, or single result files (read from stdin when "
                            "omitted and piped).", show_default=False),
    ] = None,
    reference: Annotated[
        Optional[Path], typer.Option(help="Clean reference images, paired with results by name stem (PSNR, SSIM); "
                                          "a single file for single result files.")
    ] = None,
    masks: Annotated[
        Optional[Path], typer.Option(help="Predicted defect masks (PNG, 255 = defect); needs --true-masks.")
    ] = None,
    true_masks: Annotated[Optional[Path], typer.Option(help="Ground-truth defect masks, paired by name stem.")] = None,
    inputs: Annotated[
        Optional[Path], typer.Option(help="Degraded originals, shown beside the results in the --html viewer.")
    ] = None,
    json_out: Annotated[
        bool, typer.Option("--json", help="One JSON record per image on stdout, then a summary record.")
    ] = False,
    html: Annotated[
        Optional[Path], typer.Option(help="Write a static side-by-side viewer page here (open it in a browser).")
    ] = None,
    curves: Annotated[
        Optional[list[Path]],
        typer.Option(help="Training curves for the viewer: a PNG, a metrics JSONL, or a checkpoint/run folder "
                          "with one beside it. Repeatable."),
    ] = None,
    recursive: Recursive = False,
    max_pixels: MaxPixels = DEFAULT_MAX_PIXELS,
    verbose: Verbose = False,
    quiet: Quiet = False,
) -> None:
    """Score restored images (PSNR, SSIM) and detected masks (IoU, F1, precision, recall).

    Results are paired with references by file-name stem (x.png with x.tif; with -r, by the path
    below each folder). A table goes to stderr; --json writes records on stdout. Examples:

    \b
      restore evaluate out/unet out/bm3d --reference data/clean --inputs data/degraded --html report.html
      restore restore scan.png -o fixed.png | restore evaluate --reference clean.png
    """
    from restore_cli.evaluate import run_evaluation

    run_library_call(
        lambda: run_evaluation(
            paths_or_stdin(results, "result folder or file", required=masks is None),
            reference=reference, masks=masks, true_masks=true_masks, inputs=inputs, html=html,
            curves=curves or (), json_out=stdout_stream('the --json records') if json_out else None, console=stderr_console,
            detail=not quiet, max_pixels=max_pixels, recursive=recursive,
        ),
        verbose=verbose,
        quiet=quiet,
    )


@app.command("train-mask")
def train_mask(
    dataset: TrainDataset = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="Checkpoint to write (the best model by val F1).")] = ...,
    online: Annotated[
        Optional[Path], typer.Option(help="Train on clean images here, degraded afresh for every batch (no DATASET).")
    ] = None,
    preset: Annotated[str, typer.Option(help="Training preset: tiny (smoke test) or default.")] = "default",
    widths: Annotated[
        Optional[str], typer.Option(help="U-Net channels per level, finest first, e.g. 32,64,128,192,256 (default: "
                                         "the preset's 16,32,64,96,128); not with --init.", show_default=False)
    ] = None,
    epochs: Annotated[Optional[float], typer.Option(help="Passes over the training images (with --steps: whichever ends first).")] = None,
    steps: Annotated[Optional[int], typer.Option(min=1, help="Optimizer steps in total (default: the preset's).")] = None,
    batch: Annotated[Optional[int], typer.Option(min=1, help="Crops per step (default: the preset's, 16; a multiple of the device count).")] = None,
    crop: Annotated[Optional[int], typer.Option(min=1, help="Crop side in pixels (default: the preset's, 96).")] = None,
    lr: Annotated[Optional[float], typer.Option(help="Peak learning rate (warm-up, then cosine decay).")] = None,
    loss: Annotated[Optional[str], typer.Option(help="bce-dice (default), focal or bce.")] = None,
    init: Annotated[
        Optional[Path], typer.Option(help="Fine-tune: start from this mask checkpoint's weights (its architecture wins).")
    ] = None,
    val_fraction: Annotated[Optional[float], typer.Option(help="Fraction of the images held out for validation.")] = None,
    val_count: Annotated[Optional[int], typer.Option(min=1, help="Hold out this many images instead of --val-fraction.")] = None,
    split_seed: Annotated[
        Optional[int], typer.Option(help="Seed of the held-out split and validation crops "
                                         "(default: the --init checkpoint's, else --seed).")
    ] = None,
    zoom: Annotated[
        Optional[float], typer.Option(help="Scan-resolution augmentation: a share of the crops (--zoom-prob) enlarged "
                                           "by up to this factor, damage included (default 1: off).", show_default=False)
    ] = None,
    zoom_prob: Annotated[Optional[float], typer.Option(help="Share of the crops --zoom enlarges (default 0.5).",
                                                       show_default=False)] = None,
    free_share: Annotated[
        Optional[float], typer.Option(help="With --online: this share of the training crops gets the mixture's "
                                           "global damage but no defect (default 0).", show_default=False)
    ] = None,
    grain: Annotated[
        bool, typer.Option("--grain", help="With --online: also draw a quarter of the samples with film grain "
                                           "(the grain preset, 0.5-3 px) over the defects, so grain is not taken "
                                           "for dust.")
    ] = False,
    distill_views: Annotated[
        Optional[int], typer.Option(min=0, help="With --init: also learn that model's mean over this many "
                                                "flips/rotations (1-4; default 0: off), so one detector pass "
                                                "does what --mask-views N does.", show_default=False)
    ] = None,
    distill_share: Annotated[
        Optional[float], typer.Option(help="Share of the loss given to the --distill-views term, 0..1 (default 0.5; "
                                           "1: that term alone, the true masks unused).", show_default=False)
    ] = None,
    resume: Resume = False,
    checkpoint_every: CheckpointEvery = None,
    data_workers: DataWorkers = None,
    time_limit: TimeLimit = None,
    stop_at: StopAt = None,
    seed: Seed = 0,
    max_pixels: MaxPixels = DEFAULT_MAX_PIXELS,
    verbose: Verbose = False,
    quiet: Quiet = False,
) -> None:
    """Train the scratch/dust detector (a small U-Net); print the checkpoint path on stdout.

    Beside the checkpoint: NAME.last.safetensors (resumable state), NAME.metrics.jsonl and
    NAME.curves.png. Examples:

    \b
      restore degrade photos/ --preset scratches -o data | restore train-mask -o mask.safetensors

    \b
      restore train-mask --online photos/ -o mask.safetensors --steps 4000
    """
    import dataclasses

    def call() -> None:
        from restore_cli.train.mask import MASK_PRESETS, MaskTrainConfig, train_mask as run, with_widths

        if preset not in MASK_PRESETS:
            raise UsageError(f"--preset: unknown preset {preset!r} (choose from {', '.join(MASK_PRESETS)})")
        check_open_range("--lr", lr, 0.0)
        check_open_range("--val-fraction", val_fraction, 0.0, 1.0)
        check_open_range("--epochs", epochs, 0.0)
        given = {"epochs": epochs, "steps": steps, "batch": batch, "crop": crop, "lr": lr, "loss": loss,
                 "val_fraction": val_fraction, "val_images": val_count, "checkpoint_every": checkpoint_every,
                 "init": None if init is None else str(init), "split_seed": split_seed,
                 "zoom": zoom, "zoom_prob": zoom_prob, "free_share": free_share,
                 "distill_views": distill_views, "distill_share": distill_share, "grain": grain or None}
        changes = {k: v for k, v in given.items() if v is not None}
        if epochs is not None and steps is None:
            changes["steps"] = None  # --epochs alone decides the length
        if checkpoint_every is not None:
            changes["eval_every"] = checkpoint_every
        if widths is not None:
            if init is not None:
                raise UsageError("--widths: a fine-tune keeps the --init checkpoint's architecture; leave one out")
            changes["arch"] = with_widths(MASK_PRESETS[preset].arch, widths)
        config: MaskTrainConfig = dataclasses.replace(MASK_PRESETS[preset], seed=seed, **changes)
        print_path(run(training_dataset(dataset, online), output, config, online=online, resume=resume, max_pixels=max_pixels,
                       data_workers=data_workers, time_limit_s=minutes_to_s(time_limit), stop_at=stop_at).checkpoint)

    run_library_call(call, verbose=verbose, quiet=quiet)


@app.command("restore")
def restore_command(
    inputs: Annotated[
        Optional[list[Path]],
        typer.Argument(help="Image files or folders (read from stdin, one per line, when omitted and piped).",
                       show_default=False),
    ] = None,
    output: Annotated[str, typer.Option(  # str, not Path: Path drops the trailing slash of "-o fixed.png/"
        "--output", "-o", help="Folder for the restored images; for one input file, also the result's own "
                               "name (-o fixed.jpg: its extension picks the format; fixed.jpg/ is a folder).",
        show_default=False, metavar="PATH")] = ...,
    method: Annotated[
        str, typer.Option(help="auto (default: vae when its checkpoint exists, else hybrid), vae (restoration model, "
                               "then inpainting under the learned mask), hybrid (learned mask + inpainting: fast), "
                               "classical (no model).")
    ] = "auto",
    recursive: Recursive = False,
    fmt: Annotated[
        str, typer.Option("--format", help="Output format: same (as the input), png, jpg or tiff.")
    ] = "same",
    suffix: Annotated[str, typer.Option(help="Appended to each output file's stem, e.g. _restored.")] = "",
    jpeg_quality: Annotated[
        int, typer.Option(min=1, max=100, help="Quality of JPEG outputs (chroma as the input JPEG had it, else "
                                               "4:4:4); lower for smaller files.")
    ] = 95,
    in_place: Annotated[
        bool, typer.Option("--in-place", help="Allow writing into an input folder (overwrites originals without --suffix).")
    ] = False,
    masks: Annotated[
        Optional[Path], typer.Option(help="Use your own defect masks (255 = defect), paired by name stem.")
    ] = None,
    save_masks: Annotated[
        Optional[Path], typer.Option(help="Also write the defect masks here as PNG (a folder; not --masks' own).")
    ] = None,
    mask_threshold: Annotated[
        Optional[float],
        typer.Option(help="Defect probability from which a pixel is repaired (default: the mask checkpoint's "
                          "repair threshold)."),
    ] = None,
    mask_views: Annotated[
        Optional[int], typer.Option(help="Average the detector over this many flips/rotations of each image "
                                         "(1, 2, 4 or 8): fewer false alarms on thin natural lines, one detector "
                                         "pass per view. Default: 4 for auto and vae, 1 for hybrid (the fast method).")
    ] = None,
    mask_scales: Annotated[
        Optional[int], typer.Option(help="Also run the detector on this many halvings of each image (0-4) and keep "
                                         "the highest probability: for high-resolution scans, whose defects are wider "
                                         "than the 1-4 px it was trained on (more false alarms; see the README). "
                                         "Default: by size, 0 under 1024 px on the shorter side, 1 to 2047, 2 to "
                                         "4095, then 3. Use 0 for big scans whose defects are hairline-thin.",
                                         show_default=False)
    ] = None,
    tile: Annotated[int, typer.Option(help="Tile side for the networks (multiple of 16, 128 to 1024); 2 x tile + 32 is used "
                                           "where it computes fewer pixels (not with --max-memory).")] = 256,
    max_memory: Annotated[
        Optional[str], typer.Option(help="Memory budget for the networks, e.g. 1.5G: picks tile size and batch.")
    ] = None,
    device: Annotated[str, typer.Option(help="auto, cpu or gpu.")] = "auto",
    domain_weights: Annotated[
        Optional[str], typer.Option(help="vae/auto: mix of restoration domains, e.g. Y=0.5,Z=0.5.")
    ] = None,
    checkpoints: Annotated[
        Optional[Path], typer.Option(help="Folder holding the model checkpoints (default: the shipped ones).")
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Redo files whose outputs are already up to date.")] = False,
    fail_fast: Annotated[
        bool, typer.Option(help="Stop at the first file that fails (the summary counts the files not tried).")
    ] = False,
    shard: Annotated[
        Optional[str], typer.Option(help="I/N: only the inputs whose relative path hashes to shard I of N (1-based).")
    ] = None,
    json_out: Annotated[
        bool, typer.Option("--json", help="One JSON record per file on stdout, then a summary record.")
    ] = False,
    max_pixels: MaxPixels = DEFAULT_MAX_PIXELS,
    verbose: Verbose = False,
    quiet: Quiet = False,
) -> None:
    """Restore damaged photos: find scratches and dust, fill them in, keep size, depth, alpha and metadata.

    Prints the output folder (or file) on stdout, for the next command; with --json, one record
    per file instead. Reruns skip outputs that are up to date (records in OUTPUT/.restore/) and
    redo what changed; a run started while another writes the same folder exits with status 4. Examples:

    \b
      restore restore scans/ -r -o restored/ --method classical --suffix _restored
      restore restore grandma.tif -o grandma-restored.tif
      restore restore damaged/ -o restored/ | restore evaluate --reference originals/
    """
    from restore_cli.restoration.runner import RestoreOptions, restore_files

    def call() -> object:
        options = RestoreOptions(
            inputs=paths_or_stdin(inputs, "input image or folder"), output=Path(output),
            output_is_folder=output.endswith(("/", os.sep, "/.", os.sep + ".")), method=method,
            recursive=recursive, fmt=fmt, suffix=suffix, jpeg_quality=jpeg_quality, in_place=in_place, masks=masks,
            save_masks=save_masks,
            mask_threshold=mask_threshold, mask_views=mask_views, mask_scales=mask_scales, tile=tile,
            max_memory=max_memory, device=device,
            domain_weights=domain_weights, checkpoints=checkpoints, overwrite=overwrite, fail_fast=fail_fast,
            shard=shard, max_pixels=max_pixels,
        )
        status = restore_files(options, json_out=stdout_stream('the --json records') if json_out else None,
                               console=stderr_console)
        if not json_out and Path(output).exists():  # a producer: the next command reads where the results are
            print_path(Path(output))
        return status

    run_library_call(call, verbose=verbose, quiet=quiet)


@app.command("train-vae")
def train_vae(
    dataset: TrainDataset = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="Checkpoint to write (the best model by val PSNR).")] = ...,
    clean: Annotated[
        Optional[Path], typer.Option(help="Train on clean images here, degraded afresh every batch (no DATASET).")
    ] = None,
    real: Annotated[Optional[Path], typer.Option(help="Real old photos (domain Z): unpaired random crops.")] = None,
    arch: Annotated[
        Optional[str], typer.Option(help="simple, unet, resblock (the original family) or translation (default).")
    ] = None,
    preset: Annotated[str, typer.Option(help="default (restoration), cr6 (the original's values) or tiny (smoke test).")] = "default",
    epochs: Annotated[Optional[int], typer.Option(min=1, help="Passes over the training images (replaces the preset's steps).")] = None,
    steps: Annotated[Optional[int], typer.Option(min=1, help="Optimizer steps in total (wins over --epochs).")] = None,
    batch: Annotated[Optional[int], typer.Option(min=1, help="Crops per step (a multiple of the device count).")] = None,
    crop: Annotated[Optional[int], typer.Option(min=8, help="Crop side in pixels.")] = None,
    lr: Annotated[Optional[float], typer.Option(help="Peak learning rate.")] = None,
    optimizer: Annotated[Optional[str], typer.Option(help="adam, adamax, sgd or adamw.")] = None,
    beta_schedule: Annotated[Optional[str], typer.Option(help="KL weight schedule: linear-step, cosine, sigmoid or cyclic.")] = None,
    beta_start: Annotated[Optional[float], typer.Option(help="KL weight at the start.")] = None,
    beta_max: Annotated[Optional[float], typer.Option(help="Largest KL weight.")] = None,
    anneal_epochs: Annotated[Optional[float], typer.Option(help="linear-step: epochs between raises; cyclic: cycle length.")] = None,
    domain_weight: Annotated[Optional[str], typer.Option(help="Loss weight per domain, e.g. X=1,Y=1,Z=0.5 (unnamed: 1).")] = None,
    e2e_from: Annotated[
        Optional[float], typer.Option(help="translation: fraction of the run trained Wan-style (VAEs + mapping) before end-to-end.")
    ] = None,
    degrade: Annotated[
        Optional[str],
        typer.Option(help="Online damage for --clean: a degrade preset or 'defects' (default); 'a+b' mixes them."),
    ] = None,
    mask_input: Annotated[
        Optional[bool], typer.Option("--mask-input/--no-mask-input",
                                     help="Give the network the true defect mask (default) or an empty one.")
    ] = None,
    init: Annotated[
        Optional[Path], typer.Option(help="Fine-tune: start from this train-vae checkpoint's weights (its architecture wins).")
    ] = None,
    width: Annotated[
        Optional[int], typer.Option(min=1, help="translation: channels of every convolution (default 64; the cost "
                                                "grows with its square).", show_default=False)
    ] = None,
    map_blocks: Annotated[
        Optional[int], typer.Option(min=0, help="translation: residual blocks of the latent mapping (default 4).",
                                    show_default=False)
    ] = None,
    val: Annotated[Optional[Path], typer.Option(help="Clean validation images, noised at --val-sigma with a fixed seed.")] = None,
    val_sigma: Annotated[Optional[float], typer.Option(min=0.0, max=255.0, help="Noise sigma (0..255) of the --val images (default 25).")] = None,
    checkpoint_every: CheckpointEvery = None,
    resume: Resume = False,
    data_workers: DataWorkers = None,
    time_limit: TimeLimit = None,
    stop_at: StopAt = None,
    seed: Seed = 0,
    max_pixels: MaxPixels = DEFAULT_MAX_PIXELS,
    verbose: Verbose = False,
    quiet: Quiet = False,
) -> None:
    """Train the VAE family or the latent-translation restorer; print the checkpoint path on stdout.

    Beside the checkpoint: NAME.last.safetensors (resumable state), NAME.metrics.jsonl,
    NAME.steps.jsonl (every step's losses) and NAME.curves.png. Examples:

    \b
      restore train-vae --clean train400/ --real old_photos/ --val set12/ -o vae.safetensors

    \b
      restore degrade photos/ -o data | restore train-vae --arch simple --preset cr6 -o cr6.safetensors
    """

    def call() -> None:
        from restore_cli.restoration.vae_method import parse_domain_weights
        from restore_cli.train.vae import train_vae as run
        from restore_cli.train.vae_config import resolve

        check_open_range("--lr", lr, 0.0)
        check_finite("--beta-start", beta_start, 0.0)
        check_finite("--beta-max", beta_max, 0.0)
        check_open_range("--anneal-epochs", anneal_epochs, 0.0)
        if degrade is not None and clean is None:
            raise UsageError("--degrade draws online damage for --clean; a DATASET brings its own (leave it out)")
        weights = None
        if domain_weight is not None:
            parsed = parse_domain_weights(domain_weight, ("X", "Y", "Z"), missing=1.0, option="--domain-weight")
            weights = (parsed["X"], parsed["Y"], parsed["Z"])
        config = resolve(
            preset, arch, epochs=epochs, steps=steps, batch=batch, crop=crop, lr=lr, optimizer=optimizer,
            beta_schedule=beta_schedule, beta_start=beta_start, beta_max=beta_max, anneal_epochs=anneal_epochs,
            domain_weights=weights, e2e_from=e2e_from, val_sigma=val_sigma, checkpoint_every=checkpoint_every,
            eval_every=checkpoint_every, degrade=degrade, mask_input=mask_input,
            init=None if init is None else str(init), width=width, map_blocks=map_blocks,
        )
        print_path(run(training_dataset(dataset, clean), output, config, clean=clean, real=real, val=val, resume=resume, seed=seed,
                       max_pixels=max_pixels, data_workers=data_workers, time_limit_s=minutes_to_s(time_limit), stop_at=stop_at))

    run_library_call(call, verbose=verbose, quiet=quiet)


def main(args: list[str] | None = None) -> None:
    """The ``restore`` entry point: a mistake on the command line is one line on stderr and status 2.

    Typer would print a usage block of four lines or more for it, which breaks the one-line-per-
    problem logs of cron jobs and pipelines; the help it points to is named in the line instead.
    Everything else (help, exit statuses of the commands) is Typer's own.
    """
    try:
        status = app(args=args, prog_name="restore", standalone_mode=False)
    except click_errors.NoArgsIsHelpError as exc:  # bare `restore`: the help, as before
        exc.show()
        status = int(ExitStatus.USAGE)
    except click_errors.ClickException as exc:
        where = exc.ctx.command_path if isinstance(exc, click_errors.UsageError) and exc.ctx else None
        hint = f" (see '{where} -h')" if where else ""
        message = printable(" ".join(exc.format_message().split()))
        stderr_console.print(f"error: {message}{hint}", markup=False, highlight=False, soft_wrap=True)
        status = exc.exit_code
    except typer.Abort:  # Ctrl-C or end of input while Typer itself was reading
        stderr_console.print("interrupted", markup=False)
        status = 130
    status = status if isinstance(status, int) else int(ExitStatus.OK)
    if status in (130, 128 + signal.SIGTERM):
        # Stopped by a signal: everything to keep is written (atomic files, training state) and the
        # workers are joined. Interpreter shutdown would now tear down a JAX runtime that may be mid-
        # compilation in its own threads, which segfaulted (status 139 instead of 130 / 143).
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError, AttributeError):
                stream.flush()
        os._exit(status)
    sys.exit(status)


if __name__ == "__main__":
    main()
