"""Logging and progress go to stderr; stdout is reserved for pipeline output (paths, --json).

The library logs through the standard ``logging`` module under the ``restore``
name; the CLI installs a rich handler on stderr. Progress bars are shown only when
stderr is a terminal, so cron gets plain log lines.
"""

from __future__ import annotations

import logging
import re
import sys

from rich.console import Console
from rich.logging import RichHandler

logger = logging.getLogger("restore")
stderr_console = Console(stderr=True, highlight=False)


#: C0 controls, DEL and C1 controls: a file name may hold any of them (a newline, an escape sequence).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def printable(text: str) -> str:
    """``text`` with control characters written as escapes (a newline as ``\\n``, ESC as ``\\x1b``).

    Every message is one line on stderr so that logs can be read line by line (grep, cron mail); a
    file name with a newline in it split its line in two, and one with an escape sequence could
    drive the terminal. --json records keep the true names: JSON escapes them itself.
    """
    return _CONTROL.sub(lambda m: _NAMED.get(m.group(), f"\\x{ord(m.group()):02x}"), text)


class _OneLine(logging.Filter):
    """Formats each record's message once and makes it :func:`printable` (tracebacks are left whole)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = printable(record.getMessage()), None
        return True


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
    handler.addFilter(_OneLine())
    root.addHandler(handler)
    root.setLevel(level)
    root.propagate = False


def progress_enabled() -> bool:
    """Progress bars only on an interactive terminal (never in cron or CI logs)."""
    return stderr_console.is_terminal
