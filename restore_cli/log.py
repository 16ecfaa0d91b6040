"""Logging and progress go to stderr; stdout is reserved for pipeline output (paths, --json).

The library logs through the standard ``logging`` module under the ``restore``
name; the CLI installs a rich handler on stderr. Progress bars are shown only when
stderr is a terminal, so cron gets plain log lines.
"""

from __future__ import annotations

import logging
import sys

from rich.console import Console
from rich.logging import RichHandler

logger = logging.getLogger("restore")
stderr_console = Console(stderr=True, highlight=False)


def setup_logging(verbose: bool = False, quiet: bool = False) -> None:
    level = logging.DEBUG if verbose else logging.WARNING if quiet else logging.INFO
    root = logging.getLogger("restore")
    root.handlers.clear()
    if stderr_console.is_terminal:
        handler: logging.Handler = RichHandler(
            console=stderr_console, show_path=False, show_time=False, markup=False
        )
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False


def progress_enabled() -> bool:
    """Progress bars only on an interactive terminal (never in cron or CI logs)."""
    return stderr_console.is_terminal
