"""Restore methods as a user runs them: ``restore restore ... --method M --json``, one subprocess per run.

Which methods exist is read from ``restore_cli.restoration.methods.METHODS`` at run time,
so a method added there shows up in every table without touching the benchmark. A method
that cannot run gets a row that says why: "not available" for a missing checkpoint (the
expected state before ``make checkpoints``), "failed" for anything else.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path

from bench.sections.common import REPO, BenchError, Context, DataSet, run_restore, score


def method_names(ctx: Context | None = None) -> list[str]:
    """Every ``--method`` the checkout offers, in METHODS order: new methods appear here by themselves."""
    from restore_cli.restoration.methods import METHODS

    names = list(METHODS)
    if ctx is not None and ctx.methods is not None:
        names = [m for m in names if m in ctx.methods]
    return names


#: Non-default settings measured beside the defaults, a row each: label -> (method, extra flags).
#: ``auto`` averages 4 detector views by default (vae_method.NETWORK_MASK_VIEWS); this row is what
#: one view (the default before 2026-11-27, and hybrid's) gives, so the trade stays on record.
VARIANTS = {
    "auto, 1 detector view": ("auto", ("--mask-views", "1")),
}


def variant_rows(ctx: Context, inputs: Path, runs: Path, scorer: Callable[[MethodRun], dict]) -> list[dict]:
    """A table row per :data:`VARIANTS` entry whose method this run measures: ``scorer``'s scores, or why not."""
    rows = []
    for label, (method, extra) in VARIANTS.items():
        if method not in method_names(ctx):
            continue
        ctx.log(f"{runs.name}: {label}")
        row = {"method": label, "note": " ".join(extra)}
        try:
            result = run_method(ctx, method, inputs, runs / re.sub(r"[^a-z0-9]+", "-", label.lower()), extra=extra)
            rows.append({**row, **scorer(result), "s_per_image": result.s_per_image})
        except Exception as exc:  # noqa: BLE001 - a variant that cannot run is a row saying why
            rows.append({**row, "note": method_unavailable(exc)})
    return rows


def true_mask_row(ctx: Context, label: str, method: str, data: DataSet, out: Path) -> dict:
    """``method`` given the masks ``restore degrade`` drew (``--masks``): a row with PSNR/SSIM, or why not."""
    ctx.log(f"{out.parent.name}: {label}")
    try:
        result = run_method(ctx, method, data.degraded, out, user_masks=data.masks)
        scores = score(result.output, data.clean)
    except Exception as exc:  # noqa: BLE001 - a reference that cannot run is a row saying why
        return {"method": label, "note": method_unavailable(exc)}
    return {"method": label, "PSNR": scores["PSNR"], "SSIM": scores["SSIM"], "s_per_image": result.s_per_image}


def default_method() -> str:
    from restore_cli.restoration.methods import DEFAULT_METHOD

    return DEFAULT_METHOD


@dataclasses.dataclass
class MethodRun:
    """One ``restore restore --json`` run: where it wrote, and what it said about itself."""

    output: Path
    masks: Path
    wall_s: float  # the whole command, including interpreter start, imports and compilation
    image_seconds: list[float]  # per restored image, as the runner measured it
    compile_count: int | None
    records: list[dict]

    @property
    def s_per_image(self) -> float | None:
        return sum(self.image_seconds) / len(self.image_seconds) if self.image_seconds else None


def run_method(ctx: Context, method: str | None, inputs: Path, out: Path, user_masks: Path | None = None,
               extra: Sequence[str] = ()) -> MethodRun:
    """``restore restore INPUTS -o OUT/restored [--method M] --save-masks OUT/masks --json``, from scratch.

    ``method=None`` runs the default method (no --method), as a user who just types the command.
    Outputs are removed first: restore skips images whose outputs are current, which would time nothing.
    """
    if out.exists():
        shutil.rmtree(out)
    restored, masks = out / "restored", out / "masks"
    args: list[object] = ["restore", inputs, "-o", restored, "--save-masks", masks, "--json", "--verbose",
                          *ctx.checkpoint_args(), *extra]  # a later --checkpoints in extra wins
    if method is not None:
        args += ["--method", method]
    if user_masks is not None:
        args += ["--masks", user_masks]
    done = run_restore(args, ctx, ok_codes=(0, 3))  # 3: some images failed; their records say why
    records = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    images = [r for r in records if not r.get("summary")]
    failed = [r for r in images if r.get("status") == "failed"]
    if failed:
        raise BenchError(f"{len(failed)} image(s) failed, first: {failed[0].get('error')}")
    summary = next((r for r in records if r.get("summary")), {})
    return MethodRun(restored, masks, done.seconds, [float(r["seconds"]) for r in images if r.get("status") == "ok"],
                     summary.get("compile_count"), images)


def method_unavailable(exc: BaseException) -> str:
    """The note for a method that did not run: 'not available' for a missing checkpoint, else 'failed'."""
    text = str(exc)
    missing = re.search(r"([^\s:]+\.safetensors): [^;|]*not found", text)
    if missing:
        path = Path(missing.group(1))
        shown = path.relative_to(REPO) if path.is_relative_to(REPO) else path
        return f"not available: {shown} not found (make checkpoints)"
    return f"failed: {text[:300]}"
