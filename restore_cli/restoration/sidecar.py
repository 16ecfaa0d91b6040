"""Idempotency records: ``OUTPUT/.restore/<output path>.json`` says how each output was made.

A nightly run over an archive must redo only what changed. A record holds the input's
sha256, the *recipe* (method settings that change pixels, model checkpoint hashes, a user
mask's hash), the restore version beside it, and the output's size and mtime. A file is
skipped only if its output exists unmodified and the recipe, version and input content
match; anything else is redone. Execution details that do not change the result beyond
blending noise (tile size, batch, device, memory budget) are deliberately not in the recipe.

Hashing a whole archive every night would be slow, so an input whose size and
mtime_ns equal the record's is trusted without re-hashing (the rsync rule); a touched
file is hashed and still skipped if its bytes are the same.

The record is written (atomically) when the output is finished but not yet renamed into
place; the rename keeps size and mtime, so the record is true of the output the moment it
appears. Before, it was written after the rename, and a run killed between the two left an
output without a record, which the next run refused as "not written by restore". A run
stopped before the rename leaves the file it was replacing, which the record names under
``replaces``, so the next run redoes it instead of taking it for a retouched result.

A mask saved with ``--save-masks`` has a record of its own, ``MASKS/.restore/NAME.mask.json``
(written just before the mask's rename, as the result's is), so any later run, whatever its
output folder, tells it from a user's file of the same name, which it does not replace without
--overwrite; the result's record names the mask too (``mask``), so a deleted or changed mask is
made again.
``output_sha256`` lets an in-place run recognise its own output when it comes back as an
input, and a rerun refuse (without --overwrite) an output edited since it was written, as it
refuses one it never wrote.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from restore_cli import __version__
from restore_cli.io import file_stamp, write_bytes_atomic
from restore_cli.restoration.lock import STATE_DIR

_HASH_CACHE: dict[tuple[str, int, int], str] = {}


RESULT_RECORD, MASK_RECORD = ".json", ".mask.json"  # a mask's record apart: one folder may hold both


def record_path(output_root: Path, rel_output: Path) -> Path:
    return output_root / STATE_DIR / (rel_output.as_posix() + RESULT_RECORD)


def mask_record_path(masks_root: Path, rel_mask: Path) -> Path:
    return masks_root / STATE_DIR / (rel_mask.as_posix() + MASK_RECORD)


def find_result_record(output_root: Path, rel_output: Path) -> dict[str, Any] | None:
    """The record of ``output_root / rel_output``: see :func:`_find`."""
    return _find(output_root, rel_output, RESULT_RECORD,
                 lambda record, path: _unchanged(path, record.get("output"), record.get("output_sha256")))


def find_mask_record(masks_root: Path, rel_mask: Path) -> dict[str, Any] | None:
    """The record of the saved mask ``masks_root / rel_mask``: see :func:`_find`."""
    return _find(masks_root, rel_mask, MASK_RECORD, lambda record, path: _matches(path, record.get("mask")))


def _find(root: Path, rel: Path, suffix: str, describes) -> dict[str, Any] | None:
    """A file's record: in ``root``'s own state folder, or in that of any folder on the file's path
    (an archive restored with -r into A, then one roll of it again into A/roll: each run writes its
    records where it was pointed, so one file has records in both). The one that describes the
    file there now wins; else the first found, ``root``'s own before the others."""
    target = Path(os.path.abspath(root / rel))
    places = [Path(os.path.abspath(root)) / STATE_DIR / (rel.as_posix() + suffix)]
    places += [folder / STATE_DIR / (target.relative_to(folder).as_posix() + suffix) for folder in target.parents]
    found, exists = [], target.is_file()
    for place in dict.fromkeys(places):  # root's own record comes again among the parents
        record = load(place) if place.is_file() else None
        if record is None:
            continue
        if exists and describes(record, target):
            return record
        found.append(record)
    return found[0] if found else None


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes, read in 1 MiB blocks (cached per path, size and mtime within a run)."""
    st = path.stat()
    key = (os.fspath(path), st.st_size, st.st_mtime_ns)
    if key not in _HASH_CACHE:
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                digest.update(block)
        _HASH_CACHE[key] = digest.hexdigest()
    return _HASH_CACHE[key]


def load(path: Path) -> dict[str, Any] | None:
    """The record at ``path``, or None if there is none or it is unreadable (then the file is redone)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _unchanged(path: Path, stat: Any, sha256: Any) -> bool:
    """Same size and mtime as recorded (no read), else same bytes (one read)."""
    if file_stamp(path) == stat:
        return True
    return path.is_file() and file_sha256(path) == sha256


def fingerprint(path: Path) -> dict[str, Any] | None:
    """A file's stamp and sha256, as records name the masks and the files an output replaces."""
    return {"stamp": file_stamp(path), "sha256": file_sha256(path)} if path.is_file() else None


def _matches(path: Path, expected: Any) -> bool:
    """Whether ``path`` is the file a :func:`fingerprint` describes."""
    return isinstance(expected, dict) and _unchanged(path, expected.get("stamp"), expected.get("sha256"))


def is_current(record: dict[str, Any] | None, input_path: Path, output_path: Path, recipe: dict[str, Any],
               mask_path: Path | None = None) -> bool:
    """True when ``output_path`` (and the saved mask at ``mask_path``) is exactly what this recipe
    makes from ``input_path`` now."""
    recipe = json.loads(json.dumps(recipe))  # compare as stored (tuples become lists)
    if not record or record.get("recipe") != recipe or record.get("restore_version") != __version__:
        return False
    if not _unchanged(output_path, record.get("output"), record.get("output_sha256")):
        return False
    if mask_path is not None and not _matches(mask_path, record.get("mask")):
        return False
    if _unchanged(input_path, record.get("input"), record.get("input_sha256")):
        return True
    # An in-place run's output *is* the next run's input: recognise it instead of restoring twice.
    same_file = input_path.resolve() == output_path.resolve()
    return same_file and file_sha256(input_path) == record.get("output_sha256")


def edited_since(record: dict[str, Any] | None, output_path: Path) -> bool:
    """True when ``output_path`` exists and is not the file the record says restore wrote there: the
    user retouched the result (or another tool replaced it), which a rerun must not throw away."""
    if not record or not output_path.is_file():
        return False
    return not _unchanged(output_path, record.get("output"), record.get("output_sha256")) and not _matches(
        output_path, record.get("replaces"))  # a run stopped before its rename left the file it was replacing


def mask_not_ours(mask_record: dict[str, Any] | None, result_record: dict[str, Any] | None, mask_path: Path) -> bool:
    """True when a file at ``mask_path`` is not the mask its record says restore saved there (nor
    the one it was replacing): a user's file that happens to share the name."""
    if not mask_path.is_file():
        return False
    if mask_record is None:  # masks saved before they had records: the result's record cannot tell either
        return not (result_record is not None and "mask" not in result_record)
    return not (_matches(mask_path, mask_record.get("mask")) or _matches(mask_path, mask_record.get("replaces")))


def write_mask_record(path: Path, finished: Path, mask_path: Path, input_path: str) -> None:
    """Record that the finished mask (still under its temporary name) is about to replace ``mask_path``."""
    _save(path, {"restore_version": __version__, "input_path": input_path, "mask": fingerprint(finished),
                 "replaces": fingerprint(mask_path)})


def _save(path: Path, record: dict[str, Any]) -> None:
    write_bytes_atomic(path, (json.dumps(record, indent=1, sort_keys=True) + "\n").encode())


def snapshot(input_path: Path) -> dict[str, Any]:
    """The input's stat and sha256, taken *before* processing (an in-place run overwrites it)."""
    return {"input": file_stamp(input_path), "input_sha256": file_sha256(input_path)}


def write(path: Path, before: dict[str, Any], output_path: Path, recipe: dict[str, Any], extra: dict[str, Any]) -> None:
    """Record that ``output_path`` (the finished file, perhaps still under its temporary name) was
    made with ``recipe`` from the input ``before`` described."""
    record = {
        "restore_version": __version__,
        **before,
        "output": file_stamp(output_path),
        "output_sha256": file_sha256(output_path),
        "recipe": recipe,
        **extra,
    }
    _save(path, record)
