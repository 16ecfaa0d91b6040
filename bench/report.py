"""Results of one ``bench.run``: ``results.json`` (everything, for tools) and ``results.md`` (for the README).

Sections hand back :class:`Table` objects; this module is the only place that knows the
output formats, so every section's numbers are printed the same way and the Markdown
always opens with the machine they were measured on. A table row is a plain dict of
column -> value; a value of ``None`` prints as "–" (never as a made-up number), and a
row that could not be measured carries its reason in the ``note`` column instead.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path
from typing import Any

NOTE = "note"
#: Column keys (JSON) -> Markdown headers.
LABELS = {"PSNR": "PSNR dB", "s_per_image": "s/image", "images_per_s": "images/s", "iou": "IoU", "f1": "F1",
          "precision": "precision", "recall": "recall"}


@dataclasses.dataclass
class Table:
    """One Markdown table: a title, rows (dicts), and notes printed under it.

    ``columns`` fixes the column order; by default it is the order in which keys first
    appear in the rows, with ``note`` moved last.
    """

    title: str
    rows: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)
    columns: list[str] | None = None

    def add(self, **row: Any) -> dict[str, Any]:
        self.rows.append(row)
        return row

    def column_names(self) -> list[str]:
        if self.columns is not None:
            cols = list(self.columns)
        else:
            cols = []
            for row in self.rows:
                cols.extend(k for k in row if k not in cols)
        if NOTE in cols:
            cols.remove(NOTE)
            if any(row.get(NOTE) for row in self.rows):
                cols.append(NOTE)
        return cols

    def to_json(self) -> dict:
        return {"title": self.title, "columns": self.column_names(), "rows": self.rows, "notes": self.notes}


@dataclasses.dataclass
class SectionResult:
    name: str
    seconds: float
    tables: list[Table]
    status: str = "ok"  # "ok", "skipped: ..." or "failed: ..."
    load: float | None = None  # 1-minute load average when the section started (others' work skews timings)


def unavailable(reason: str) -> str:
    """The one wording for a row or section that could not be measured (searchable in results)."""
    return f"not available: {reason}"


def fmt(value: Any) -> str:
    """A cell: floats with 4 significant digits (2 decimals from 10 up), big ones as integers."""
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value):
            return "–"
        if math.isinf(value):
            return "inf"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        if abs(value) >= 10:
            return f"{value:.2f}"
        return f"{value:.4g}" if value else "0"
    if isinstance(value, int):
        return f"{value:,}" if abs(value) >= 10000 else str(value)
    return str(value).replace("|", "\\|").replace("\n", " ")


def _numeric(table: Table, column: str) -> bool:
    """Right-align a column whose values are all numbers (or missing)."""
    values = [row.get(column) for row in table.rows if row.get(column) is not None]
    return bool(values) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


def table_markdown(table: Table) -> str:
    cols = table.column_names()
    lines = [f"#### {table.title}", ""]
    if table.rows:
        lines.append("| " + " | ".join(LABELS.get(c, c.replace("_", " ")) for c in cols) + " |")
        lines.append("|" + "|".join("---:" if _numeric(table, c) else "---" for c in cols) + "|")
        for row in table.rows:
            cells = ("" if c == NOTE and not row.get(c) else fmt(row.get(c)) for c in cols)
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    lines.extend(f"*{note}*  " if not note.startswith("- ") else note for note in table.notes)
    if table.notes:
        lines.append("")
    return "\n".join(lines)


def machine_markdown(machine: dict) -> str:
    versions = ", ".join(f"{k} {v}" for k, v in machine.get("versions", {}).items() if v)
    return (
        f"Measured on **{machine.get('cpu')}**, {machine.get('cores')} cores, {machine.get('memory_gib')} GiB RAM, "
        f"device `{machine.get('device')}`, Python {machine.get('python')}; {versions}; {machine.get('date')}."
    )


def markdown(machine: dict, sections: list[SectionResult], meta: dict) -> str:
    """The whole ``results.md``: machine line, run line, then one heading per section."""
    total = sum(s.seconds for s in sections)
    parts = [
        "### Benchmark results",
        "",
        machine_markdown(machine),
        "",
        f"Command: `{meta['command']}`"
        + (" (**quick mode**: fewer images, one noise level)" if meta.get("quick") else "")
        + f"; total wall time {total / 60:.1f} min "
        + "(" + ", ".join(f"{s.name} {s.seconds:.0f} s" for s in sections) + ").",
        "",
    ]
    loads = [s.load for s in sections if s.load is not None]
    cores = machine.get("cores") or 1
    if loads:
        busy = max(loads) > cores
        parts += [
            f"Load average at the start of each section: {', '.join(f'{s.name} {s.load:.1f}' for s in sections)}"
            + (f" (above the {cores} cores: other work shared the machine, so timings are pessimistic)."
               if busy else "."),
            "",
        ]
    for section in sections:
        parts.append(f"### {section.name}" + ("" if section.status == "ok" else f" — {section.status}"))
        parts.append("")
        for table in section.tables:
            parts.append(table_markdown(table))
    return "\n".join(parts).rstrip() + "\n"


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


def write(out: Path, machine: dict, sections: list[SectionResult], meta: dict) -> tuple[Path, Path]:
    """Write ``results.json`` and ``results.md`` under ``out``; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    doc = {
        "machine": machine,
        "meta": meta,
        "total_seconds": round(sum(s.seconds for s in sections), 2),
        "sections": [
            {"name": s.name, "status": s.status, "seconds": round(s.seconds, 2), "load_average": s.load,
             "tables": [t.to_json() for t in s.tables]}
            for s in sections
        ],
    }
    json_path, md_path = out / "results.json", out / "results.md"
    json_path.write_text(json.dumps(_json_safe(doc), indent=1, allow_nan=False) + "\n", encoding="utf-8")
    md_path.write_text(markdown(machine, sections, meta), encoding="utf-8")
    return json_path, md_path
