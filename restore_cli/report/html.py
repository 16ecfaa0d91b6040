"""``restore evaluate --html``: one static page to look at results side by side.

It is the original project's viewer as a file: original | restored | mask, a
before/after slider, a 1:1-pixel zoom, a method selector (one per result folder),
Previous/Next and arrow keys, each image's PSNR/SSIM, and training curves.

Design choices:
* images are *referenced* by URLs relative to the page's folder, never embedded, so a
  report of 1,000 scans is a few hundred kilobytes and opens from ``file://``;
  moving the page breaks the links (placeholders are shown, the layout holds);
* the data is one JSON blob in ``<script type="application/json">`` and the page
  renders only the current item, so huge folders do not make a huge DOM;
* no external CSS, JS or fonts; names reach the DOM only through ``textContent``.
"""

from __future__ import annotations

import html
import json
import os
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote

from restore_cli.evaluate.compare import counterpart_index, image_index
from restore_cli.evaluate.records import EvaluationReport
from restore_cli.io import display_path, write_bytes_atomic
from restore_cli.report.lossplot import Curve
from restore_cli.report.viewer_template import BODY, CSS, JS


def relative_url(target: Path, base: Path) -> str:
    """URL of ``target`` relative to folder ``base``, percent-encoded from the raw file-name bytes."""
    rel = os.path.relpath(os.path.abspath(target), os.path.abspath(base))
    return quote(os.fsencode(rel).replace(os.sep.encode(), b"/"), safe="/")


def _first(index: dict[str, list[Path]], stem: str, base: Path) -> str | None:
    paths = index.get(stem)
    return relative_url(paths[0], base) if paths else None


def report_data(report: EvaluationReport, base: Path, inputs: Path | None = None) -> dict:
    """The JSON the page renders from: methods, and per image stem its URLs and scores."""
    recursive = report.recursive
    result_index = [image_index(m.location, recursive) for m in report.methods]
    mask_index = image_index(report.masks, recursive) if report.masks is not None else {}
    stems = set().union(*result_index) if result_index else set(mask_index)
    input_index = counterpart_index(inputs, stems, recursive) if inputs is not None else {}
    ref_index = counterpart_index(report.reference, stems, recursive) if report.reference is not None else {}
    records = {(r.method, r.stem): r for r in report.records if r.method is not None}
    mask_scores = {r.stem: r.mask for r in report.records if r.mask is not None}
    items = []
    for stem in sorted(stems, key=os.fsencode):
        results = []
        for method, index in zip(report.methods, result_index, strict=True):
            paths = index.get(stem)
            if not paths:
                results.append(None)
                continue
            rec = records.get((method.name, stem))
            entry = {"src": relative_url(paths[0], base), "file": rec.file if rec else display_path(paths[0].name)}
            if rec is not None:
                scored = rec.to_json()
                entry.update({k: scored[k] for k in ("psnr", "ssim")}, identical=scored.get("identical", False))
            results.append(entry)
        mask = mask_scores.get(stem)
        items.append({
            "name": display_path(stem),
            "original": _first(input_index, stem, base),
            "mask": _first(mask_index, stem, base),
            "reference": _first(ref_index, stem, base),
            "results": results,
            "maskScores": None if mask is None else {k: round(mask[k], 6) for k in ("iou", "f1")},
        })
    return {
        "methods": [m.name for m in report.methods],
        "hasInputs": inputs is not None,
        "hasMasks": report.masks is not None,
        "hasReference": report.reference is not None,
        "items": items,
    }


def script_json(data: object) -> str:
    """JSON safe inside a <script> element: no '<', '>' or '&' can end it or open a comment."""
    text = json.dumps(data, ensure_ascii=True, allow_nan=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _means_html(report: EvaluationReport) -> str:
    summary = report.summary_json()
    if not report.records or (report.reference is None and summary["masks"] is None):
        return ""
    cols = (["psnr_mean", "ssim_mean"] if report.reference is not None else []) + (
        ["iou_mean", "f1_mean"] if summary["masks"] is not None else []
    )
    heads = {"psnr_mean": "PSNR dB", "ssim_mean": "SSIM", "iou_mean": "mask IoU", "f1_mean": "mask F1"}
    rows = ["<tr><th>method</th><th>images</th>" + "".join(f"<th>{heads[c]}</th>" for c in cols) + "</tr>"]
    for m in summary["methods"]:
        cells = "".join("<td>–</td>" if m[c] is None else f"<td>{m[c]:.4f}</td>" for c in cols)
        name = html.escape(m["method"] or "(masks only)")
        rows.append(f"<tr><td>{name}</td><td>{m['images']}</td>{cells}</tr>")
    return '<section class="means"><h2>means</h2><table>' + "".join(rows) + "</table></section>"


def _curves_html(curves: Sequence[Curve]) -> str:
    if not curves:
        return ""
    blocks = []
    for curve in curves:
        body = curve.svg if curve.svg is not None else f'<img class="curve" alt="training curve" src="{curve.png_uri}">'
        blocks.append(f"<figure><figcaption>{html.escape(curve.title)}</figcaption>{body}</figure>")
    return '<section class="curves"><h2>training curves</h2>' + "".join(blocks) + "</section>"


def build_page(report: EvaluationReport, base: Path, inputs: Path | None = None, curves: Sequence[Curve] = ()) -> str:
    """The whole HTML document as a string (``base``: the folder the page will live in)."""
    data = report_data(report, base, inputs)
    n, k = len(data["items"]), len(data["methods"])
    title = f"restore evaluate: {n} image{'s' * (n != 1)}, {k} method{'s' * (k != 1)}"
    body = BODY.format(title=html.escape(title), means=_means_html(report), curves=_curves_html(curves))
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta name="generator" content="{GENERATOR}">'
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>{body}"
        f'<script type="application/json" id="report-data">{script_json(data)}</script>'
        f"<script>{JS}</script></body></html>\n"
    )


#: Marks a page as this viewer, so that evaluate replaces its own pages and nothing else.
GENERATOR = "restore evaluate"


def is_viewer_page(path: Path) -> bool:
    """Whether ``path`` is a page :func:`write_report` wrote (pages from before the generator tag
    are known by their title)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(4096)
    except OSError:
        return False
    return f'content="{GENERATOR}"'.encode() in head or b"<title>restore evaluate:" in head


def write_report(
    path: Path, report: EvaluationReport, inputs: Path | None = None, curves: Sequence[Curve] = ()
) -> None:
    """Write the viewer page atomically; image links are relative to ``path``'s folder."""
    path = Path(path)
    page = build_page(report, path.parent, inputs, curves)
    write_bytes_atomic(path, page.encode("utf-8"))
