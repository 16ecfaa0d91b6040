"""Set12 with synthetic old-photo damage: restoration quality and how well each method finds the defects.

Three ``restore degrade`` presets, seed 0: ``scratches`` (scratches, cracks and dust only, so
the true mask explains every change), ``old-photo`` (the same local defects plus fading,
blur, grain, noise, JPEG...) and ``grain`` (film grain only, 0.5-3 px: what real prints carry
most, and correlated noise, which a denoiser trained on white noise leaves in place; its true
mask is empty, so any flagged pixel is a false alarm). Every method in ``METHODS`` runs
through ``restore restore``; its ``--save-masks`` output is scored against the true masks
``restore degrade`` wrote.

Three reference rows show what a perfect detector would buy, using restore's own code path
with ``--masks TRUE_MASKS`` (the user-mask option):

* ``classical + true mask``: ``--method classical``: biharmonic inpainting under the given
  mask, then NL-means on luminance and the classical method's mild tonal stretch;
* ``hybrid inpainting + true mask``: ``--method hybrid``: biharmonic inpainting only (no
  checkpoint needed when the mask is given);
* ``vae + true mask``: ``--method vae``: the default method's restoration network and
  inpainting, without the detector (a row saying why where its checkpoint is missing).

Mask scores are per-image means (IoU, F1, precision, recall); reference rows have none
(their mask *is* the truth). The methods inpaint under the detector's *repair* threshold
(chosen for PSNR, see :mod:`restore_cli.train.mask`); the row ``hybrid @ best-F1 threshold``
runs hybrid at the threshold chosen for F1 instead, so the detector's own F1 is on record.
"""

from __future__ import annotations

from bench.report import Table
from bench.sections.common import Context, DataSet, clean_subset, degrade_set, score
from bench.sections.runs import method_names, method_unavailable, run_method, true_mask_row, variant_rows

NAME = "old_photo"
PRESETS = ("scratches", "old-photo", "grain")
#: Reference rows: label -> the method whose code path is run with the true masks.
TRUE_MASK_REFERENCES = {
    "classical + true mask (reference)": "classical",
    "hybrid inpainting + true mask (reference)": "hybrid",
    "vae + true mask (reference)": "vae",  # the default method without its detector's errors
}
COLUMNS = ["method", "PSNR", "SSIM", "iou", "f1", "precision", "recall", "pooled_f1", "s_per_image", "note"]


def run(ctx: Context) -> list[Table]:
    clean = clean_subset(ctx)
    tables = []
    for preset in PRESETS:
        data = degrade_set(ctx, preset, clean, preset)
        tables.append(preset_table(ctx, data, preset))
    tables[-1].notes.append(
        "Data: `restore degrade SET12 --preset P --seed 0 --gray` (whole images, one variation). "
        "Mask scores: predicted (`--save-masks`) vs `restore degrade`'s masks, mean over images "
        "(an image with no true defect scores 0 precision for any false alarm); pooled F1 counts all pixels at once. "
        "s/image: the runner's per-image time (start-up and compilation excluded)."
    )
    return tables


def preset_table(ctx: Context, data: DataSet, preset: str) -> Table:
    n = len(data.images())
    table = Table(f"Set12, `{preset}` preset ({n} images)", columns=COLUMNS)
    damaged = score(data.degraded, data.clean)
    table.add(method="damaged input", PSNR=damaged["PSNR"], SSIM=damaged["SSIM"])
    runs = ctx.out / "runs" / preset
    for method in method_names(ctx):
        ctx.log(f"old_photo {preset}: restore --method {method}")
        try:
            result = run_method(ctx, method, data.degraded, runs / method)
            scores = score(result.output, data.clean, masks=result.masks, true_masks=data.masks)
        except Exception as exc:  # noqa: BLE001 - a method that cannot run is a row saying why
            table.add(method=method, note=method_unavailable(exc))
            continue
        table.add(method=method, **_pick(scores), s_per_image=result.s_per_image)
    scorer = lambda result: _pick(score(result.output, data.clean, masks=result.masks, true_masks=data.masks))  # noqa: E731
    for row in variant_rows(ctx, data.degraded, runs, scorer):
        table.add(**row)
    if "hybrid" in method_names(ctx):
        _f1_threshold_row(ctx, table, data, runs)
    for label, method in TRUE_MASK_REFERENCES.items():
        if method not in method_names():
            table.add(method=label, note=f"not available: no method {method!r} in METHODS")
            continue
        if method in method_names(ctx):
            table.add(**true_mask_row(ctx, label, method, data, runs / f"{method}-true-mask"))
    return table


def _pick(scores: dict) -> dict:
    return {k: scores.get(k) for k in ("PSNR", "SSIM", "iou", "f1", "precision", "recall", "pooled_f1")}


def _f1_threshold_row(ctx: Context, table: Table, data: DataSet, runs) -> None:
    """Hybrid with ``--mask-threshold`` = the mask checkpoint's best-F1 threshold (when it has one)."""
    from restore_cli.models.checkpoint import read_header
    from restore_cli.restoration.methods import MASK_CHECKPOINT

    label = "hybrid @ best-F1 threshold"
    try:
        header = read_header(ctx.checkpoints / MASK_CHECKPOINT)
        threshold = float(header["threshold"])
        ctx.log(f"old_photo: {label} ({threshold})")
        result = run_method(ctx, "hybrid", data.degraded, runs / "hybrid-f1-threshold",
                            extra=["--mask-threshold", str(threshold)])
        scores = score(result.output, data.clean, masks=result.masks, true_masks=data.masks)
    except Exception as exc:  # noqa: BLE001 - a row saying why
        table.add(method=label, note=method_unavailable(exc))
        return
    table.add(method=label, **_pick(scores), s_per_image=result.s_per_image, note=f"threshold {threshold:g}")
