"""What every section shares: the run's context, the `restore` command, the Set12 subset, scoring.

The benchmark drives the tool the way a user does: test data comes from ``restore degrade``
and every method runs through ``restore restore`` in a subprocess, so the numbers include
exactly what a user pays (image I/O, the same code path, the same defaults). Only the
scoring is a library call (:func:`restore_cli.evaluate.evaluate_folders`, the function
behind ``restore evaluate``), which avoids re-parsing JSON for every table.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

#: Set12 proper. Anything else in the folder (e.g. stray test_*.png files) is not Set12 and is ignored.
SET12_NAME = re.compile(r"^(0[1-9]|1[0-2])\.png$")
SEED = 0
REPO = Path(__file__).resolve().parents[2]
#: Top-level folders of OUT that hold regenerated data, not results (each gets a "*" .gitignore).
SCRATCH = ("data", "runs")


class BenchError(RuntimeError):
    """A step of the benchmark could not run; the message ends up in the results as the reason."""


@dataclasses.dataclass
class Context:
    data: Path  # DATA: holds set12/, old_photos/, train400/
    out: Path  # OUT: results.*, data/, runs/, contact sheet
    quick: bool = False
    repo: Path = REPO
    #: Test hooks: limit Set12 to this many images and the sigmas to these (None = defaults).
    max_images: int | None = None
    sigmas: tuple[int, ...] | None = None
    big_size: tuple[int, int] | None = None  # (width, height) of the "big scan" in the speed section
    methods: list[str] | None = None  # only these restore methods (None: every one in METHODS)
    models: Path | None = None  # --checkpoints: score the models in this folder instead of the shipped ones

    def log(self, message: str) -> None:
        print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    @property
    def checkpoints(self) -> Path:
        return self.models or self.repo / "checkpoints"

    def checkpoint_args(self) -> list[object]:
        """``restore restore`` flags that pick this run's models (none for the shipped ones)."""
        return [] if self.models is None else ["--checkpoints", self.models]

    def path(self, *parts: str, fresh: bool = False) -> Path:
        """A folder under OUT; ``fresh`` empties it first (restore skips outputs it already made)."""
        folder = self.out.joinpath(*parts)
        if fresh and folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def prepare(self) -> None:
        """Create OUT and its scratch folders; each scratch folder ignores itself in git (only results are kept)."""
        for name in SCRATCH:
            folder = self.out / name
            folder.mkdir(parents=True, exist_ok=True)
            ignore = folder / ".gitignore"
            if not ignore.exists():
                ignore.write_text("# made by bench.run: generated data and raw outputs, not results\n*\n",
                                  encoding="utf-8")

    def set12(self) -> list[Path]:
        """The Set12 images used: 01..12.png (3 in quick mode), in name order."""
        folder = self.data / "set12"
        if not folder.is_dir():
            raise BenchError(f"{folder} not found (pass --data DIR holding set12/)")
        files = sorted(p for p in folder.iterdir() if SET12_NAME.match(p.name))
        if not files:
            raise BenchError(f"no 01.png..12.png in {folder}")
        limit = self.max_images or (3 if self.quick else None)
        return files[:limit] if limit else files

    def ignored_set12(self) -> list[str]:
        folder = self.data / "set12"
        return sorted(p.name for p in folder.iterdir() if p.is_file() and not SET12_NAME.match(p.name))


# ----------------------------------------------------------------- the restore command


def restore_command() -> list[str]:
    """The installed ``restore`` entry point beside this interpreter (else the module, same code)."""
    exe = Path(sys.executable).parent / "restore"
    if exe.exists():
        return [str(exe)]
    return [sys.executable, "-c", "from restore_cli.cli import main; main()"]


@dataclasses.dataclass
class Completed:
    stdout: str
    stderr: str
    seconds: float
    returncode: int


def run_restore(args: list[object], ctx: Context | None = None, ok_codes: tuple[int, ...] = (0,),
                stdin: str | None = None) -> Completed:
    """Run ``restore ARGS``; raise BenchError with the tail of stderr when it fails."""
    cmd = restore_command() + [os.fspath(a) if isinstance(a, Path) else str(a) for a in args]
    if ctx is not None:
        ctx.log("$ restore " + " ".join(cmd[len(restore_command()):]))
    start = time.perf_counter()
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True, input=stdin, cwd=ctx.repo if ctx else None)
    seconds = time.perf_counter() - start
    if proc.returncode not in ok_codes:
        tail = " | ".join(line for line in proc.stderr.strip().splitlines()[-3:])
        raise BenchError(f"`restore {' '.join(cmd[len(restore_command()):][:2])} ...` exit {proc.returncode}: {tail}")
    return Completed(proc.stdout, proc.stderr, seconds, proc.returncode)


@functools.cache
def has_command(name: str) -> bool:
    """Whether this checkout's `restore` has a sub-command (other engineers add them as they go)."""
    try:
        run_restore([name, "--help"])
    except BenchError:
        return False
    return True


# ----------------------------------------------------------------- test data


@dataclasses.dataclass
class DataSet:
    """One degraded copy of a clean folder, as ``restore degrade`` writes it."""

    name: str
    clean: Path
    degraded: Path
    masks: Path

    def images(self) -> list[Path]:
        return sorted(p for p in self.degraded.iterdir() if p.suffix.lower() == ".png")


def clean_subset(ctx: Context) -> Path:
    """OUT/data/set12: copies of the Set12 images in use, so every command sees exactly that set."""
    folder = ctx.path("data", "set12" + ("-quick" if ctx.quick else ""), fresh=True)
    for path in ctx.set12():
        shutil.copy2(path, folder / path.name)
    return folder


def degrade_set(ctx: Context, name: str, clean: Path, preset: str, options: list[str] = ()) -> DataSet:
    """``restore degrade CLEAN --preset P OPTIONS --seed 0 -o OUT/data/NAME`` (whole images, one variation)."""
    if not has_command("degrade"):
        raise BenchError("`restore degrade` is not in this checkout yet")
    out = ctx.path("data", name, fresh=True)
    done = run_restore(["degrade", clean, "--preset", preset, *options, "--seed", SEED, "--gray", "-o", out], ctx)
    root = Path(done.stdout.strip().splitlines()[-1]) if done.stdout.strip() else out
    data = DataSet(name, root / "clean", root / "degraded", root / "masks")
    for folder in (data.clean, data.degraded):
        if not folder.is_dir():
            raise BenchError(f"`restore degrade` wrote no {folder.name}/ folder in {root}")
    return data


# ----------------------------------------------------------------- scoring


def score(results: Path, reference: Path, masks: Path | None = None, true_masks: Path | None = None) -> dict:
    """Means of ``restore evaluate`` over one result folder: psnr, ssim (+ iou, f1, precision, recall)."""
    from restore_cli.evaluate import evaluate_folders

    report = evaluate_folders([results], reference=reference, masks=masks, true_masks=true_masks)
    if report.summary.failed:
        raise BenchError(f"evaluate: {report.summary.failed} file(s) failed: {report.summary.errors[0]}")
    means = report.method_means(report.methods[0].name)
    out = {"images": means["images"], "PSNR": means["psnr_mean"], "SSIM": means["ssim_mean"]}
    pooled = report.mask_summary()
    if pooled is not None:
        for key in ("iou", "f1", "precision", "recall"):
            out[key] = pooled[f"{key}_mean"]
        out["pooled_f1"] = pooled["pooled"]["f1"]
    return out
