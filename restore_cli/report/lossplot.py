"""Training curves for the viewer: a PNG embedded as a data: URI, or a metrics JSONL drawn as inline SVG.

Both stay inside the one HTML file (no server, no external files) and are small: a
PNG plot is tens of kilobytes, and long JSONL series are thinned to
:data:`MAX_POINTS` points per series before drawing.

A checkpoint or run folder given to ``--curves`` is resolved to a JSONL or PNG next to
it (see :func:`resolve_curve_file`), so ``--curves mask.safetensors`` works when training
wrote its metrics beside the checkpoint.
"""

from __future__ import annotations

import base64
import dataclasses
import html
import json
import logging
import math
from pathlib import Path

from restore_cli.errors import UsageError
from restore_cli.io import display_path

log = logging.getLogger("restore.report")
MAX_POINTS = 1500
X_KEYS = ("step", "iteration", "iter", "epoch")
COLOURS = ("#4e79a7", "#e15759", "#59a14f", "#f28e2b", "#b07aa1", "#76b7b2", "#edc948", "#ff9da7")
WIDTH, HEIGHT, PAD_L, PAD_R, PAD_T, PAD_B = 640, 260, 64, 16, 28, 36


@dataclasses.dataclass
class Curve:
    """One curve block of the viewer: exactly one of ``svg`` (markup we generated) or ``png_uri``."""

    title: str
    svg: str | None = None
    png_uri: str | None = None


def resolve_curve_file(path: Path) -> Path:
    """A PNG or JSONL for ``path``: itself, or the metrics file beside a checkpoint or inside a run folder."""
    if path.is_file() and path.suffix.lower() in (".png", ".jsonl"):
        return path
    if path.is_dir():
        candidates = [path / "metrics.jsonl", *sorted(path.glob("*.jsonl")), *sorted(path.glob("*.png"))]
    elif path.exists():
        candidates = [
            path.with_name(path.name + ".jsonl"), path.with_name(path.stem + ".metrics.jsonl"),
            path.with_suffix(".jsonl"), path.parent / "metrics.jsonl", path.with_suffix(".png"),
        ]
    else:
        raise UsageError(f"--curves {display_path(path)}: no such file or folder")
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise UsageError(
        f"--curves {display_path(path)}: not a PNG or metrics JSONL, and none found beside it "
        "(looked for <name>.jsonl, <stem>.metrics.jsonl, metrics.jsonl, <stem>.png)"
    )


def load_curve(path: Path) -> Curve:
    """Read one ``--curves`` argument into a :class:`Curve`. Raises UsageError if unusable."""
    source = resolve_curve_file(path)
    title = display_path(source.name)
    try:
        data = source.read_bytes()
    except OSError as exc:
        raise UsageError(f"--curves {display_path(source)}: cannot read ({exc.strerror})") from None
    if source.suffix.lower() == ".png":
        if not data.startswith(b"\x89PNG\r\n\x1a\n"):
            raise UsageError(f"--curves {display_path(source)}: not a PNG file")
        return Curve(title, png_uri="data:image/png;base64," + base64.b64encode(data).decode("ascii"))
    series = parse_jsonl(data.decode("utf-8", "replace"), display_path(source))
    if not series:
        raise UsageError(f"--curves {display_path(source)}: no numeric loss values found")
    return Curve(title, svg=svg_plot(series))


def parse_jsonl(text: str, name: str = "") -> dict[str, list[tuple[float, float]]]:
    """Series name -> [(x, y)]: keys containing "loss" (else every numeric key) against step/epoch/line number."""
    rows, bad = [], 0
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            bad += 1
            continue
        if isinstance(row, dict):
            rows.append(row)
    if bad:
        log.warning("%s: %d line(s) are not JSON, skipped", name, bad)

    def numeric(v) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)

    x_key = next((k for k in X_KEYS if any(numeric(r.get(k)) for r in rows)), None)
    keys = sorted({k for r in rows for k, v in r.items() if numeric(v) and k != x_key})
    wanted = [k for k in keys if "loss" in k.lower()] or [k for k in keys if k not in ("time", "wall_s", "lr")]
    series: dict[str, list[tuple[float, float]]] = {}
    for i, row in enumerate(rows):
        x = row.get(x_key) if x_key else i
        if not numeric(x):
            x = i
        for k in wanted:
            if numeric(row.get(k)):
                series.setdefault(k, []).append((float(x), float(row[k])))
    return series


def _thin(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    if len(points) <= MAX_POINTS:
        return points
    stride = math.ceil(len(points) / MAX_POINTS)
    return points[::stride] + ([points[-1]] if (len(points) - 1) % stride else [])


def _fmt(v: float) -> str:
    return f"{v:.3g}" if abs(v) < 1e4 else f"{v:.2e}"


def svg_plot(series: dict[str, list[tuple[float, float]]]) -> str:
    """A small self-contained SVG line chart; y is logarithmic when all values are > 0 and span > 100x."""
    all_pts = [p for pts in series.values() for p in pts]
    xs, ys = [p[0] for p in all_pts], [p[1] for p in all_pts]
    log_y = min(ys) > 0 and max(ys) / min(ys) > 100
    fy = math.log10 if log_y else (lambda v: v)
    x0, x1 = min(xs), max(xs)
    y0, y1 = fy(min(ys)), fy(max(ys))
    x1, y1 = (x1 if x1 > x0 else x0 + 1), (y1 if y1 > y0 else y0 + 1)
    pw, ph = WIDTH - PAD_L - PAD_R, HEIGHT - PAD_T - PAD_B

    def sx(x: float) -> float:
        return PAD_L + (x - x0) / (x1 - x0) * pw

    def sy(y: float) -> float:
        return PAD_T + ph - (fy(y) - y0) / (y1 - y0) * ph

    esc = html.escape
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" class="curve">',
        f'<rect x="{PAD_L}" y="{PAD_T}" width="{pw}" height="{ph}" fill="none" stroke="#888"/>',
        f'<text x="{PAD_L - 4}" y="{PAD_T + 4}" text-anchor="end">{esc(_fmt(max(ys)))}</text>',
        f'<text x="{PAD_L - 4}" y="{PAD_T + ph}" text-anchor="end">{esc(_fmt(min(ys)))}</text>',
        f'<text x="{PAD_L}" y="{HEIGHT - 8}">{esc(_fmt(min(xs)))}</text>',
        f'<text x="{PAD_L + pw}" y="{HEIGHT - 8}" text-anchor="end">{esc(_fmt(max(xs)))}</text>',
    ]
    if log_y:
        parts.append(f'<text x="{PAD_L + pw / 2}" y="{HEIGHT - 8}" text-anchor="middle">(log scale)</text>')
    for i, (name, pts) in enumerate(sorted(series.items())):
        colour = COLOURS[i % len(COLOURS)]
        coords = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in _thin(pts))
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{coords}"/>')
        parts.append(f'<text x="{PAD_L + 8 + 150 * i}" y="{PAD_T - 10}" fill="{colour}">{esc(name)}</text>')
    parts.append("</svg>")
    return "".join(parts)
