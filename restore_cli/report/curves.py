"""Training curves as a PNG beside the checkpoint: train loss (left), validation metrics (right; PSNR apart).

Drawn from the rows of ``<checkpoint>.metrics.jsonl`` that :mod:`restore_cli.train.loop`
writes: train rows carry ``loss`` (and any other ``*loss*`` terms), evaluation rows carry
``val_*`` keys. Losses go on a log axis when they span more than a decade, because a loss
that falls from 0.7 to 0.02 is unreadable on a linear one. A bare ``Figure`` (no pyplot)
renders with Agg, so training works on headless machines; the file is replaced atomically.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from restore_cli.io import atomic_path

_NOT_CURVES = {"step", "steps_per_s", "wall_s", "lr", "threshold"}


def _series(rows: Sequence[dict], keep) -> dict[str, tuple[list[float], list[float]]]:
    out: dict[str, tuple[list[float], list[float]]] = {}
    for row in rows:
        for key, value in row.items():
            if key in _NOT_CURVES or not keep(key) or not isinstance(value, (int, float)) or isinstance(value, bool):
                continue
            if math.isfinite(value):
                xs, ys = out.setdefault(key, ([], []))
                xs.append(float(row.get("step", len(xs))))
                ys.append(float(value))
    return out


def _draw(ax, series: dict, title: str, log_when_wide: bool) -> None:
    for name, (xs, ys) in sorted(series.items()):
        ax.plot(xs, ys, label=name, marker="o" if len(xs) < 30 else None, markersize=3, linewidth=1.2)
    values = [y for _, ys in series.values() for y in ys]
    if log_when_wide and values and min(values) > 0 and max(values) / min(values) > 10:
        ax.set_yscale("log")
    ax.set_title(title)
    ax.set_xlabel("step")
    ax.grid(True, alpha=0.3)
    if series:
        ax.legend(fontsize=8)
    else:
        ax.text(0.5, 0.5, "no data yet", ha="center", va="center", transform=ax.transAxes)


def plot_curves(rows: Sequence[dict], path: Path, title: str = "") -> None:
    """Write the curves of ``rows`` (metric dicts with a ``step``) to ``path``.

    Panels: the losses; validation fractions (F1, SSIM, ...); validation PSNRs, where present.
    """
    from matplotlib.figure import Figure  # no pyplot: no GUI backend, no global figure state

    losses = _series(rows, lambda k: "loss" in k)
    metrics = _series(rows, lambda k: k.startswith("val_") and "loss" not in k)
    # PSNR (~30 dB) and fractions (F1, SSIM: 0-1) on one axis would flatten the fractions to a line at 0.
    decibels = {k: v for k, v in metrics.items() if "psnr" in k}
    fractions = {k: v for k, v in metrics.items() if k not in decibels}
    panels = [(losses, "loss", True)] + [(series, name, False) for series, name in
                                         ((fractions, "validation"), (decibels, "validation (dB)")) if series]
    if len(panels) == 1:
        panels.append(({}, "validation", False))
    fig = Figure(figsize=(5.5 * len(panels), 4), dpi=100)
    for ax, (series, name, log_when_wide) in zip(fig.subplots(1, len(panels)), panels):
        _draw(ax, series, name, log_when_wide=log_when_wide)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
