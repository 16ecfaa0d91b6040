"""One writer per output folder: a non-blocking ``flock`` on ``OUTPUT/.restore/lock``.

Two runs writing the same folder would race on the same outputs and sidecar records (and
the second would delete the first one's in-flight ``.partial`` files when it cleans up).
A cron job that fires while yesterday's run is still going must therefore stop at once,
with status 4, rather than wait or interleave.

``flock`` locks die with the process, so a run killed with SIGKILL never leaves a stale
lock behind; the file itself stays (deleting it would let a third run lock a new inode
while the second still holds the old one). It holds the holder's pid, for the message.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from restore_cli.errors import LockedError, RestoreError
from restore_cli.io import display_path

STATE_DIR = ".restore"


def lock_path(output: Path) -> Path:
    return output / STATE_DIR / "lock"


class OutputLock:
    """``with OutputLock(folder):`` holds the folder's lock or raises :class:`LockedError` at once."""

    def __init__(self, output: Path):
        self.output = output
        self.path = lock_path(output)
        self._fd: int | None = None

    def __enter__(self) -> OutputLock:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise RestoreError(f"{display_path(self.output)}: cannot create the output folder's lock ({exc.strerror})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode("ascii", "replace").strip()
            os.close(fd)
            who = f"pid {holder}" if holder.isdigit() else "another process"
            raise LockedError(
                f"{display_path(self.output)} is locked by another restore run ({who}); "
                "wait for it to finish or write to another folder"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def remove_partials(folder: Path) -> int:
    """Delete ``.*.partial`` files left by a killed run under ``folder`` (call only while holding the lock)."""
    removed = 0
    if not folder.is_dir():
        return 0
    for root, _dirs, files in os.walk(folder):
        for name in files:
            if name.startswith(".") and name.endswith(".partial"):
                try:
                    os.unlink(os.path.join(root, name))
                    removed += 1
                except FileNotFoundError:
                    pass
    return removed
