"""Pair result images with references and masks by file-name stem and score them into records.

One result folder is one *method* (a model, a checkpoint, a baseline). ``x.png`` in a
result folder is compared with the reference whose stem is ``x`` (``x.png``, ``x.tif``,
...), so methods that write different formats still line up. Every file goes through
:func:`restore_cli.batch.run_batch`: a result without a reference, a size mismatch or an
unreadable file fails that file only, is named on stderr, and the run ends with exit 3.

Mask scores belong to the image stem, not to a method (one detector feeds every
method), so they are attached to every record of that stem; predicted masks whose stem
has no result get a record of their own with ``method = None``.
"""

from __future__ import annotations

import logging
from pathlib import Path

from restore_cli.batch import BatchSummary, run_batch
from restore_cli.errors import InputError, RestoreError, UsageError
from restore_cli.evaluate import metrics
from restore_cli.evaluate.records import EvaluationReport, ImageRecord, Method
from restore_cli.io import DEFAULT_MAX_PIXELS, defect_mask, display_path, list_images, read_image

log = logging.getLogger("restore.evaluate")


def stem_index(folder: Path) -> dict[str, list[Path]]:
    """Image files of ``folder`` grouped by stem (several when ``x.png`` and ``x.tif`` both exist)."""
    index: dict[str, list[Path]] = {}
    for path in list_images(folder):
        index.setdefault(path.stem, []).append(path)
    return index


def _warn_unmatched(what: str, scored: set[str], expected: dict[str, list[Path]], noun: str, effect: str) -> None:
    """Say when a method (or the predicted masks) has nothing for some of the expected files: two
    methods scored on different images are not comparable, and a missing result is easy to miss."""
    missing = sorted(stem for stem in expected if stem not in scored)
    if missing:
        shown = ", ".join(expected[stem][0].name for stem in missing[:3]) + (", ..." if len(missing) > 3 else "")
        log.warning("%s: nothing for %d of the %d %ss (%s); %s", what, len(missing), len(expected), noun, shown,
                    effect)


def method_names(folders: list[Path]) -> list[Method]:
    """Folder names, made unique with the parent's name (or a number) when two folders share one."""
    names = [f.resolve().name or display_path(f) for f in folders]
    out: list[Method] = []
    for folder, name in zip(folders, names, strict=True):
        if names.count(name) > 1:
            name = f"{folder.resolve().parent.name}/{name}"
        while name in {m.name for m in out}:
            name += "'"
        out.append(Method(name=display_path(name), folder=folder))
    return out


def _check_folder(folder: Path | None, option: str) -> None:
    if folder is not None and not folder.is_dir():
        raise UsageError(f"{option} {display_path(folder)}: not a folder")


def _counterpart(path: Path, index: dict[str, list[Path]], folder: Path, what: str) -> Path:
    found = index.get(path.stem, [])
    if not found:
        raise InputError(path, f"no {what} named {display_path(path.stem)}.* in {display_path(folder)}")
    if len(found) > 1:
        names = ", ".join(display_path(p.name) for p in found)
        raise InputError(path, f"ambiguous {what}: several files in {display_path(folder)} share its name ({names})")
    return found[0]


def _same_size(a_path: Path, a, b_path: Path, b, what: str) -> None:
    if (a.width, a.height) != (b.width, b.height):
        raise InputError(
            a_path,
            f"size {a.width}x{a.height} does not match the {what} "
            f"{display_path(b_path)} ({b.width}x{b.height})",
        )


def score_image(path: Path, ref_path: Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[float, float, bool]:
    """(PSNR, SSIM, compared-on-luminance) of one result against its reference file."""
    result, ref = read_image(path, max_pixels), read_image(ref_path, max_pixels)
    _same_size(path, result, ref_path, ref, "reference")
    a, b = result.pixels, ref.pixels
    on_luma = result.channels != ref.channels
    if on_luma:
        log.info(
            "%s: %s result vs %s reference %s: comparing luminance (BT.601)",
            display_path(path), _channels(result.channels), _channels(ref.channels), display_path(ref_path),
        )
        a, b = metrics.luminance(a), metrics.luminance(b)
    try:
        return metrics.psnr(a, b), metrics.ssim(a, b), on_luma
    except ValueError as exc:
        raise InputError(path, str(exc)) from None


def _channels(n: int) -> str:
    return "grey" if n == 1 else "RGB" if n == 3 else f"{n}-channel"


def score_mask(pred_path: Path, true_path: Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> dict:
    """Mask scores of one predicted mask PNG against its ground-truth mask (255 = defect)."""
    pred, true = read_image(pred_path, max_pixels), read_image(true_path, max_pixels)
    _same_size(pred_path, pred, true_path, true, "true mask")
    return metrics.mask_scores(defect_mask(pred), defect_mask(true))


def evaluate_folders(
    results: list[Path],
    reference: Path | None = None,
    masks: Path | None = None,
    true_masks: Path | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    fail_fast: bool = False,
) -> EvaluationReport:
    """Score every image of every result folder (and every predicted mask). Never prints; logs only.

    Raises UsageError for option problems (a path that is not a folder, --masks without
    --true-masks) and RestoreError when there is nothing at all to evaluate.
    """
    if (masks is None) != (true_masks is None):
        raise UsageError("--masks and --true-masks go together: give both or neither")
    for folder in results:
        _check_folder(folder, "result folder")
    _check_folder(reference, "--reference")
    _check_folder(masks, "--masks")
    _check_folder(true_masks, "--true-masks")
    methods = method_names(results)
    items = [(m, p) for m in methods for p in list_images(m.folder)]
    if not items and masks is None:
        raise RestoreError(f"no images to evaluate in {', '.join(display_path(f) for f in results)}")
    if reference is None and items:
        log.info("no --reference given: PSNR and SSIM are not computed")
    ref_index = stem_index(reference) if reference is not None else {}
    records: list[ImageRecord] = []
    seen: dict[tuple[str, str], Path] = {}

    def score(item: tuple[Method, Path]) -> None:
        method, path = item
        key = (method.name, path.stem)
        if key in seen:
            raise InputError(path, f"same name stem as {display_path(seen[key].name)} in this folder; scored only once")
        seen[key] = path
        rec = ImageRecord(file=display_path(path.name), stem=path.stem, method=method.name, path=path)
        if reference is not None:
            ref_path = _counterpart(path, ref_index, reference, "reference image")
            rec.psnr, rec.ssim, rec.luminance = score_image(path, ref_path, max_pixels)
        records.append(rec)

    summary = run_batch(items, score, fail_fast=fail_fast)
    for method in methods:
        _warn_unmatched(method.name, {rec.stem for rec in records if rec.method == method.name}, ref_index,
                        "reference image", "its means are over the rest only")
    if masks is not None and true_masks is not None and not (fail_fast and summary.failed):
        _score_masks(masks, true_masks, records, summary, max_pixels, fail_fast)
    return EvaluationReport(methods, records, summary, reference, masks, true_masks)


def _score_masks(
    masks: Path, true_masks: Path, records: list[ImageRecord], summary: BatchSummary, max_pixels: int, fail_fast: bool
) -> None:
    """Score each predicted mask, attach it to the records of its stem, and fold failures into ``summary``."""
    true_index = stem_index(true_masks)
    pred_files = list_images(masks)
    if not pred_files:
        log.warning("%s: no mask images found", display_path(masks))
    scored: dict[str, dict] = {}
    files_by_stem: dict[str, Path] = {}

    def score(path: Path) -> None:
        if path.stem in scored:
            raise InputError(path, "same name stem as another mask in this folder; scored only once")
        scored[path.stem] = score_mask(path, _counterpart(path, true_index, true_masks, "true mask"), max_pixels)
        files_by_stem[path.stem] = path

    mask_summary = run_batch(pred_files, score, fail_fast=fail_fast)
    _warn_unmatched(display_path(masks), set(scored), true_index, "true mask", "the mask means are over the rest only")
    summary.failed += mask_summary.failed
    summary.errors.extend(mask_summary.errors)
    with_result = set()
    for rec in records:
        if rec.stem in scored:
            rec.mask = scored[rec.stem]
            with_result.add(rec.stem)
    for stem, scores in scored.items():
        if stem not in with_result:
            path = files_by_stem[stem]
            records.append(ImageRecord(file=display_path(path.name), stem=stem, method=None, path=None, mask=scores))
            summary.done += 1
