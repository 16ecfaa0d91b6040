"""What a training run shows and records: the progress bar or log lines, and the metrics JSONL.

Kept apart from :mod:`.loop` so the loop reads as the training logic only. The bar is a rich
progress bar on an interactive stderr; elsewhere (cron, CI, a pipe) the loop logs
:meth:`Progress.line` every ``log_every`` steps instead, so logs stay greppable.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

from restore_cli.io import write_bytes_atomic


def reset_metrics(path: Path, keep_until: int | None) -> None:
    """Fresh run: empty file. Resume: drop rows past the resumed step (written after the last checkpoint)."""
    rows = []
    if keep_until is not None and path.is_file():
        rows = [line for line in path.read_text().splitlines() if line.strip() and json.loads(line).get("step", 0) <= keep_until]
    write_bytes_atomic(path, "".join(r + "\n" for r in rows).encode())


def json_value(v: float) -> float | None:
    return float(v) if math.isfinite(v) else None


class MetricsLog:
    """Appends metric rows (JSONL) and keeps them for the curves plot."""

    def __init__(self, path: Path):
        self.path = path
        self.rows = [json.loads(x) for x in path.read_text().splitlines() if x.strip()] if path.is_file() else []

    def write(self, row: dict) -> None:
        row = {k: (json_value(v) if isinstance(v, float) else v) for k, v in row.items()}
        self.rows.append(row)
        with open(self.path, "a") as fh:
            fh.write(json.dumps(row) + "\n")


class Progress:
    """A rich bar (steps/s, loss, ETA) on an interactive stderr; otherwise only :meth:`line` texts."""

    def __init__(self, total: int, start: int, enabled: bool, console):
        self.total, self.enabled, self.bar = total, enabled, None
        self.shown: dict[str, float] = {}
        if enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(TextColumn("train"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}"),
                                TimeRemainingColumn(), console=console, transient=True)
            self.task = self.bar.add_task("", total=total, completed=start)

    def line(self, step: int, shown: dict[str, float]) -> str:
        rate = shown.get("steps_per_s", 0.0)
        eta = (self.total - step) / rate if rate > 0 else float("nan")
        extra = " ".join(f"{k} {v:.4g}" for k, v in shown.items() if k not in ("loss", "steps_per_s"))
        eta_text = time.strftime("%H:%M:%S", time.gmtime(eta)) if math.isfinite(eta) else "?"
        return f"step {step}/{self.total} loss {shown.get('loss', float('nan')):.4g} {extra} | {rate:.2f} steps/s | eta {eta_text}"

    def update(self, step: int, shown: dict[str, float] | None) -> None:
        if self.bar is None:
            return
        if shown:
            self.shown = shown
        desc = f"loss {self.shown['loss']:.4g}  {self.shown['steps_per_s']:.2f} steps/s" if self.shown else ""
        self.bar.update(self.task, completed=step, description=desc)

    def __enter__(self) -> Progress:
        if self.bar is not None:
            self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()
