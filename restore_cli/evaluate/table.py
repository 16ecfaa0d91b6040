"""Rich tables of an :class:`EvaluationReport` for stderr (humans); stdout is left to ``--json``."""

from __future__ import annotations

import math

from rich.table import Table

from restore_cli.evaluate.records import MASK_KEYS, EvaluationReport
from restore_cli.log import printable

#: Above this many records only the per-method means are shown (use --json for the rest).
MAX_DETAIL_ROWS = 40


def _psnr(value: float | None) -> str:
    if value is None:
        return "-"
    return "inf" if math.isinf(value) else f"{value:.2f}"


def _num(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def detail_table(report: EvaluationReport) -> Table:
    """One row per scored image and method."""
    has_mask = any(r.mask is not None for r in report.records)
    has_ref = report.reference is not None
    table = Table(title="per image", title_justify="left")
    table.add_column("file", overflow="fold")
    table.add_column("method", overflow="fold")
    if has_ref:
        table.add_column("PSNR dB", justify="right")
        table.add_column("SSIM", justify="right")
    if has_mask:
        for key in MASK_KEYS:
            table.add_column(key, justify="right")
    for rec in report.records:
        row = [printable(rec.file), printable(rec.method or "(masks only)")]
        if has_ref:
            row += [_psnr(rec.psnr) + (" (Y)" if rec.luminance else ""), _num(rec.ssim)]
        if has_mask:
            row += [_num(rec.mask[k] if rec.mask else None) for k in MASK_KEYS]
        table.add_row(*row)
    return table


def summary_table(report: EvaluationReport) -> Table:
    """Means per method, plus the pooled mask scores when masks were given."""
    data = report.summary_json()
    table = Table(title="means", title_justify="left")
    table.add_column("method", overflow="fold")
    table.add_column("images", justify="right")
    if report.reference is not None:
        table.add_column("PSNR dB", justify="right")
        table.add_column("SSIM", justify="right")
    masks = data["masks"]
    if masks is not None:
        for key in MASK_KEYS:
            table.add_column(key, justify="right")
    for m in data["methods"]:
        row = [printable(m["method"] or "(masks only)"), str(m["images"])]
        if report.reference is not None:
            psnr = _psnr(m["psnr_mean"])
            if m["identical"]:
                psnr += f" (+{m['identical']} identical)"
            row += [psnr, _num(m["ssim_mean"])]
        if masks is not None:
            row += [_num(m[f"{k}_mean"]) for k in MASK_KEYS]
        table.add_row(*row)
    if masks is not None:
        pooled = masks["pooled"]
        table.add_section()
        row = ["pooled (micro)", str(masks["images"])]
        if report.reference is not None:
            row += ["", ""]
        table.add_row(*row, *[_num(pooled[k]) for k in MASK_KEYS])
    return table


def print_tables(report: EvaluationReport, console, detail: bool = True) -> None:
    """Per-image table (small runs only) and the means table, on ``console``."""
    if detail and 0 < len(report.records) <= MAX_DETAIL_ROWS:
        console.print(detail_table(report))
    if report.records:
        console.print(summary_table(report))
