"""Run one function over many input files: per-file errors are reported and the batch goes on.

Every batch command (degrade, restore, evaluate) goes through :func:`run_batch`, so they
share the same error lines, the same summary and the same exit statuses.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterable
from typing import TypeVar

from restore_cli.errors import ExitStatus, InputError

log = logging.getLogger("restore")
T = TypeVar("T")


@dataclasses.dataclass
class BatchSummary:
    done: int = 0
    failed: int = 0
    skipped: int = 0
    not_tried: int = 0  # left when --fail-fast stopped the batch
    errors: list[str] = dataclasses.field(default_factory=list)

    @property
    def handled(self) -> int:
        """Items that got a result (done, skipped or failed); with the batch's size, what was not tried."""
        return self.done + self.skipped + self.failed

    @property
    def status(self) -> ExitStatus:
        return ExitStatus.PARTIAL if self.failed else ExitStatus.OK

    def line(self, noun: str = "file") -> str:
        parts = [f"{self.done} {noun}{'s' if self.done != 1 else ''} done"]
        if self.skipped:
            parts.append(f"{self.skipped} skipped")
        if self.failed:
            parts.append(f"{self.failed} failed")
        if self.not_tried:
            parts.append(f"{self.not_tried} not tried (--fail-fast)")
        return ", ".join(parts)


def run_batch(
    items: Iterable[T],
    process: Callable[[T], bool | None],
    fail_fast: bool = False,
    total: int | None = None,
) -> BatchSummary:
    """Call ``process`` on each item. It returns False for "skipped" and raises InputError to fail one item.

    With ``fail_fast`` the first failure stops the batch (the summary still counts it, and with
    ``total``, the number of items, says how many were not tried: before, a --fail-fast run's
    summary left a reader to guess whether the batch had been finished).
    """
    summary = BatchSummary()
    for item in items:
        try:
            result = process(item)
        except InputError as exc:
            summary.failed += 1
            summary.errors.append(str(exc))
            log.error("%s", exc)
            if fail_fast:
                if total is not None:
                    summary.not_tried = total - summary.handled
                break
            continue
        if result is False:
            summary.skipped += 1
        else:
            summary.done += 1
    return summary
