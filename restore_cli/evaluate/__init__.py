"""``restore evaluate``: score restored images against clean references and masks against true masks.

* :mod:`.metrics` - pure metric functions (PSNR, SSIM, mask IoU/F1/precision/recall);
* :mod:`.compare` - pairing files by name stem and scoring them through the batch runner;
* :mod:`.records` - the per-image records, per-method means and the summary;
* :mod:`.table` - the human tables for stderr.

:func:`run_evaluation` is the one call the CLI makes. It writes only to the streams it is
handed (``json_out`` for ``--json`` records, ``console`` for the tables), so it stays
testable and never touches the process's stdout by itself.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from restore_cli.errors import ExitStatus, RestoreError, UsageError
from restore_cli.evaluate.compare import evaluate_folders
from restore_cli.evaluate.records import EvaluationReport, ImageRecord, Method
from restore_cli.io import DEFAULT_MAX_PIXELS, check_output_files, display_path, write_text_stream

__all__ = ["EvaluationReport", "ImageRecord", "Method", "evaluate_folders", "run_evaluation", "write_json_records"]
log = logging.getLogger("restore.evaluate")


def write_json_records(report: EvaluationReport, out: TextIO) -> None:
    """One JSON object per line per scored image, then one ``{"summary": true, ...}`` line.

    Strictly valid JSON (no NaN/Infinity): an infinite PSNR is ``null`` with ``"identical": true``.
    """
    lines = [json.dumps(rec.to_json(), allow_nan=False) for rec in report.records]
    lines.append(json.dumps(report.summary_json(), allow_nan=False))
    write_text_stream(out, "".join(line + "\n" for line in lines), "the --json records")


def run_evaluation(
    results: Sequence[Path],
    reference: Path | None = None,
    masks: Path | None = None,
    true_masks: Path | None = None,
    inputs: Path | None = None,
    html: Path | None = None,
    curves: Sequence[Path] = (),
    json_out: TextIO | None = None,
    console=None,
    detail: bool = True,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    fail_fast: bool = False,
    recursive: bool = False,
) -> ExitStatus:
    """Evaluate, then emit: JSON records to ``json_out``, tables to ``console``, the viewer to ``html``.

    Returns ExitStatus.PARTIAL (3) when some files failed (each was logged), else OK.
    """
    if html is None and curves:
        raise UsageError("--curves only goes into the viewer: add --html report.html")
    if html is None and inputs is not None:
        raise UsageError("--inputs is only shown by the viewer: add --html report.html")
    if html is not None and html.is_dir():
        raise UsageError(f"--html {display_path(html)}: is a folder; give the page's file name (e.g. report.html)")
    if inputs is not None and not inputs.exists():
        raise UsageError(f"--inputs {display_path(inputs)}: no such file or folder")
    if inputs is not None and inputs.is_file() and any(Path(r).is_dir() for r in results):
        raise UsageError(f"--inputs {display_path(inputs)} is a file: give the folder of degraded originals")
    loaded_curves = []
    if curves:
        from restore_cli.report.lossplot import load_curve

        loaded_curves = [load_curve(path) for path in curves]  # fail on a bad path before scoring
    if html is not None:
        check_output_files([Path(html)], "--html names the viewer page")  # before scoring, not after
        from restore_cli.report.html import is_viewer_page

        if Path(html).is_file() and not is_viewer_page(Path(html)):  # a user's notes.html was replaced
            raise UsageError(f"--html {display_path(html)}: exists and is not a page restore evaluate wrote; "
                             "refusing to replace it (choose another name, or remove it first)")
    report = evaluate_folders(
        list(results), reference=reference, masks=masks, true_masks=true_masks,
        max_pixels=max_pixels, fail_fast=fail_fast, recursive=recursive,
    )
    if json_out is not None:
        write_json_records(report, json_out)
    if console is not None:
        from restore_cli.evaluate.table import print_tables

        print_tables(report, console, detail=detail)
    if html is not None:
        from restore_cli.report.html import write_report

        try:
            write_report(html, report, inputs=inputs, curves=loaded_curves)
        except OSError as exc:
            raise RestoreError(f"{display_path(html)}: cannot write the viewer ({exc.strerror or exc})") from None
        log.info("viewer written to %s", display_path(html))
    line = report.summary.line("image")
    (log.warning if report.summary.failed else log.info)("%s", line)
    return report.summary.status
