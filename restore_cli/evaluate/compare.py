"""Pair result images with references and masks by name and score them into records.

One result folder is one *method* (a model, a checkpoint, a baseline). ``x.png`` in a
result folder is compared with the reference whose stem is ``x`` (``x.png``, ``x.tif``,
...), so methods that write different formats still line up. With ``recursive`` the key is
the path below the folder without its suffix (``sub/x``), so the tree ``restore -r`` mirrors
pairs with the reference tree it came from. A single result *file* (what ``restore IMG -o
OUT.png`` prints) is a method of one image; a single reference file is then its reference,
whatever its name. Every file goes through :func:`restore_cli.batch.run_batch`: a result
without a reference, a size mismatch or an unreadable file fails that file only, is named on
stderr, and the run ends with exit 3.

Mask scores belong to the image key, not to a method (one detector feeds every method), so
they are attached to every record of that key; predicted masks whose key has no result get a
record of their own with ``method = None``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

from restore_cli.batch import BatchSummary, run_batch
from restore_cli.errors import InputError, RestoreError, UsageError
from restore_cli.evaluate import metrics
from restore_cli.evaluate.records import EvaluationReport, ImageRecord, Method
from restore_cli.io import DEFAULT_MAX_PIXELS, defect_mask, display_path, images_below, list_images, read_image

log = logging.getLogger("restore.evaluate")


def image_key(path: Path, root: Path) -> str:
    """The name ``path`` pairs by: its path below ``root`` without the suffix (``x``, ``sub/x``);
    a file given on its own (``path == root``) pairs by its stem."""
    if path == root:
        return path.stem
    rel = path.relative_to(root)
    return (rel.parent / rel.stem).as_posix()


def image_index(location: Path, recursive: bool = False) -> dict[str, list[Path]]:
    """Image files of a folder (or the one file given) grouped by key; several per key when
    ``x.png`` and ``x.tif`` both exist."""
    if location.is_file():
        return {location.stem: [location]}
    index: dict[str, list[Path]] = {}
    for path in list_images(location, recursive):
        index.setdefault(image_key(path, location), []).append(path)
    return index


def shown_name(key: str, path: Path) -> str:
    """How messages and records name a file: its path below the folder given (``sub/x.png``)."""
    return display_path(key + path.suffix)


def _hint_recursive(locations: list[Path], recursive: bool) -> str:
    """The end of a "nothing found" message when the images are in sub-folders (read with -r)."""
    if recursive or not any(location.is_dir() and images_below(location) for location in locations):
        return ""
    return "; its images are in sub-folders: add -r (--recursive)"


def counterpart_index(location: Path, keys: Iterable[str], recursive: bool = False) -> dict[str, list[Path]]:
    """:func:`image_index` of a reference or true-mask location; one file serves every key."""
    if location.is_file():
        return {key: [location] for key in keys}
    return image_index(location, recursive)


def _warn_unmatched(what: str, scored: set[str], expected: dict[str, list[Path]], noun: str, effect: str) -> None:
    """Say when a method (or the predicted masks) has nothing for some of the expected files: two
    methods scored on different images are not comparable, and a missing result is easy to miss."""
    missing = sorted(key for key in expected if key not in scored)
    if missing:
        shown = ", ".join(shown_name(key, expected[key][0]) for key in missing[:3])
        shown += ", ..." if len(missing) > 3 else ""
        log.warning("%s: nothing for %d of the %d %ss (%s); %s", what, len(missing), len(expected), noun, shown,
                    effect)


def method_names(locations: list[Path]) -> list[Method]:
    """Folder (or file) names, made unique with the parent's name (or a number) when two share one."""
    names = [f.resolve().name or display_path(f) for f in locations]
    out: list[Method] = []
    for location, name in zip(locations, names, strict=True):
        if names.count(name) > 1:
            name = f"{location.resolve().parent.name}/{name}"
        while name in {m.name for m in out}:
            name += "'"
        out.append(Method(name=display_path(name), location=location))
    return out


def _check_location(location: Path | None, option: str, file_ok: bool = False) -> None:
    """UsageError unless ``location`` is a folder (or, where ``file_ok``, a file)."""
    if location is None or location.is_dir() or (file_ok and location.is_file()):
        return
    if not location.exists():
        raise UsageError(f"{option} {display_path(location)}: no such {'file or folder' if file_ok else 'folder'}")
    raise UsageError(f"{option} {display_path(location)}: not a {'file or folder' if file_ok else 'folder'}")


def _check_single(counterpart: Path | None, option: str, sides: list[Path], what: str) -> None:
    """A single reference (true-mask) file pairs with single files only: against a folder of
    several images every one would be scored against the same picture, whatever its name."""
    if counterpart is not None and counterpart.is_file():
        folders = [side for side in sides if side.is_dir()]
        if folders:
            raise UsageError(f"{option} {display_path(counterpart)} is a file, and {display_path(folders[0])} a "
                             f"folder: give a folder of {what}s, paired by name, or a single file to compare with it")


def _counterpart(key: str, path: Path, index: dict[str, list[Path]], location: Path, what: str,
                 hint: str = "") -> Path:
    found = index.get(key, [])
    if not found:
        raise InputError(path, f"no {what} named {display_path(key)}.* in {display_path(location)}{hint}")
    if len(found) > 1:
        names = ", ".join(shown_name(key, p) for p in found)
        raise InputError(path, f"ambiguous {what}: several files in {display_path(location)} share its name ({names})")
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
    recursive: bool = False,
) -> EvaluationReport:
    """Score every image of every result folder or file (and every predicted mask). Never prints; logs only.

    Raises UsageError for option problems (a path that is neither file nor folder, --masks
    without --true-masks) and RestoreError when there is nothing at all to evaluate.
    """
    if (masks is None) != (true_masks is None):
        raise UsageError("--masks and --true-masks go together: give both or neither")
    for location in results:
        _check_location(location, "result", file_ok=True)
    for location, option in ((reference, "--reference"), (masks, "--masks"), (true_masks, "--true-masks")):
        _check_location(location, option, file_ok=True)
    _check_single(reference, "--reference", results, "reference image")
    _check_single(true_masks, "--true-masks", [masks] if masks is not None else [], "true mask")
    methods = method_names(results)
    indexes = [image_index(m.location, recursive) for m in methods]
    items = [(m, key, path) for m, index in zip(methods, indexes) for key, paths in index.items() for path in paths]
    if not items and masks is None:
        raise RestoreError(f"no images to evaluate in {', '.join(display_path(f) for f in results)}"
                           + _hint_recursive(results, recursive))
    for method, index in zip(methods, indexes):
        if index and _hint_recursive([method.location], recursive):
            log.warning("%s: the images in its sub-folders are not read (add -r to score them too)",
                        display_path(method.location))
    if reference is None and items:
        log.info("no --reference given: PSNR and SSIM are not computed")
    ref_index = (counterpart_index(reference, {key for _, key, _ in items}, recursive)
                 if reference is not None else {})
    ref_hint = _hint_recursive([reference], recursive) if reference is not None and not ref_index else ""
    records: list[ImageRecord] = []
    seen: dict[tuple[str, str], Path] = {}

    def score(item: tuple[Method, str, Path]) -> None:
        method, key, path = item
        if (method.name, key) in seen:
            raise InputError(path, f"same name stem as {display_path(seen[method.name, key].name)} in this folder; "
                                   "scored only once")
        seen[method.name, key] = path
        rec = ImageRecord(file=shown_name(key, path), stem=key, method=method.name, path=path)
        if reference is not None:
            ref_path = _counterpart(key, path, ref_index, reference, "reference image", ref_hint)
            rec.psnr, rec.ssim, rec.luminance = score_image(path, ref_path, max_pixels)
        records.append(rec)

    summary = run_batch(items, score, fail_fast=fail_fast)
    for method in methods if reference is not None and reference.is_dir() else ():  # a file matches any name
        if method.location.is_file():  # one result file covers one reference image, by design
            continue
        _warn_unmatched(method.name, {rec.stem for rec in records if rec.method == method.name}, ref_index,
                        "reference image", "its means are over the rest only")
    if masks is not None and true_masks is not None and not (fail_fast and summary.failed):
        _score_masks(masks, true_masks, records, summary, max_pixels, fail_fast, recursive)
    return EvaluationReport(methods, records, summary, reference, masks, true_masks, recursive)


def _score_masks(
    masks: Path, true_masks: Path, records: list[ImageRecord], summary: BatchSummary, max_pixels: int,
    fail_fast: bool, recursive: bool,
) -> None:
    """Score each predicted mask, attach it to the records of its key, and fold failures into ``summary``."""
    pred_index = image_index(masks, recursive)
    true_index = counterpart_index(true_masks, pred_index, recursive)
    pred_files = [(key, path) for key, paths in pred_index.items() for path in paths]
    true_hint = "" if true_index else _hint_recursive([true_masks], recursive)
    if not pred_files:
        message = f"{display_path(masks)}: no mask images found{_hint_recursive([masks], recursive)}"
        if not records:  # masks were all there was to evaluate
            raise RestoreError(message)
        log.warning("%s", message)
    scored: dict[str, dict] = {}
    files_by_key: dict[str, Path] = {}

    def score(item: tuple[str, Path]) -> None:
        key, path = item
        if key in scored:
            raise InputError(path, "same name stem as another mask in this folder; scored only once")
        true_path = _counterpart(key, path, true_index, true_masks, "true mask", true_hint)
        scored[key] = score_mask(path, true_path, max_pixels)
        files_by_key[key] = path

    mask_summary = run_batch(pred_files, score, fail_fast=fail_fast)
    if true_masks.is_dir():  # a file matches any name
        _warn_unmatched(display_path(masks), set(scored), true_index, "true mask",
                        "the mask means are over the rest only")
    summary.failed += mask_summary.failed
    summary.errors.extend(mask_summary.errors)
    with_result = set()
    for rec in records:
        if rec.stem in scored:
            rec.mask = scored[rec.stem]
            with_result.add(rec.stem)
    for key, scores in scored.items():
        if key not in with_result:
            records.append(ImageRecord(file=shown_name(key, files_by_key[key]), stem=key, method=None, path=None,
                                       mask=scores))
            summary.done += 1
