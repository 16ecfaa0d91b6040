"""One writer per output folder (or per shard of it): non-blocking ``flock`` locks in ``OUTPUT/.restore/``.

Two runs writing the same folder would race on the same outputs and sidecar records (and
the second would delete the first one's in-flight ``.partial`` files when it cleans up).
A cron job that fires while yesterday's run is still going must therefore stop at once,
with status 4, rather than wait or interleave.

``flock`` locks die with the process, so a run killed with SIGKILL never leaves a stale
lock behind; the file itself stays (deleting it would let a third run lock a new inode
while the second still holds the old one). It holds the holder's pid, for the message.

A run also takes a shared lock on the lock of every folder above its own that has one (real
paths), so a run writing ``A/roll`` and one writing ``A`` (and so ``A/roll``) exclude each other,
whichever started first: provided ``A`` was written before (a lock file exists), and not when the
run on ``A`` is sharded (its shards share that lock too).

Shards (``--shard I/N``) write disjoint files, so N of them may share one output folder:
a sharded run takes ``lock`` *shared* (it still excludes an unsharded run, which takes it
exclusively) plus ``lock-shard-I-of-N`` exclusively (two copies of the same shard exclude
each other) and ``lock-of-N`` shared (shards of another count are refused), and cleans up
only its own outputs' ``.partial`` files.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from restore_cli.errors import LockedError, RestoreError
from restore_cli.io import display_path, partial_prefix

STATE_DIR = ".restore"


def lock_path(output: Path, shard: tuple[int, int] | None = None) -> Path:
    name = "lock" if shard is None else f"lock-shard-{shard[0]}-of-{shard[1]}"
    return output / STATE_DIR / name


class OutputLock:
    """``with OutputLock(folder, shard):`` holds the folder's (or shard's) lock or raises :class:`LockedError` at once."""

    def __init__(self, output: Path, shard: tuple[int, int] | None = None, ours: tuple[Path, ...] = ()):
        self.output = output
        self.shard = shard
        self.ours = {Path(os.path.realpath(folder)) for folder in ours}  # locked by this run already
        self._fds: list[int] = []
        self._above_taken = False

    def _take(self, path: Path, exclusive: bool) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise RestoreError(f"{display_path(self.output)}: cannot create the output folder's lock ({exc.strerror})") from None
        try:
            fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode("ascii", "replace").strip()
            os.close(fd)
            who = f"pid {holder}" if holder.isdigit() and _alive(int(holder)) else "another process"
            what = "" if self.shard is None else f" (shard {self.shard[0]}/{self.shard[1]})"
            raise LockedError(
                f"{display_path(self.output)}{what} is locked by another restore run ({who}); "
                "wait for it to finish or write to another folder"
            ) from None
        if exclusive:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        self._fds.append(fd)

    def take_above(self) -> None:
        """A shared lock on every folder above that a run holds (or held) a lock in: a run writing
        A/roll while another writes A (and so A/roll) would race on the same files. Taken first (the
        runner takes it before it makes a new output folder), so a run refused here makes nothing."""
        if self._above_taken:
            return
        self._above_taken = True
        for folder in Path(os.path.realpath(self.output)).parents:  # real paths: a link may name either
            if folder in self.ours:  # -o out --save-masks out/masks: this run's own lock
                continue
            path = lock_path(folder)
            try:
                fd = os.open(path, os.O_RDONLY)
            except OSError:  # none there (the usual case), or not ours to read
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise LockedError(f"{display_path(_near(folder))}, which holds {display_path(self.output)}, is locked "
                                  "by another restore run; wait for it to finish or write to another folder") from None
            self._fds.append(fd)

    def _take_count(self, count: int) -> None:
        """Shards of one count share ``lock-of-N``; a run sharded by another count (``--shard 1/3``
        beside ``--shard 1/2``) would split the files otherwise, writing some twice: refused."""
        state = self.output / STATE_DIR
        self._take(state / f"lock-of-{count}", exclusive=False)
        for other in state.glob("lock-of-*"):
            if other.name != f"lock-of-{count}" and _held(other):  # shards of that count are running
                raise LockedError(f"{display_path(self.output)} is being written by shards of another count "
                                  f"({other.name.removeprefix('lock-of-')}), which split the files differently "
                                  f"from --shard .../{count}; wait for them to finish")

    def take(self) -> None:
        """The locks above (if not taken yet), then the folder's own (or its shard's)."""
        try:
            self.take_above()
            self._take(lock_path(self.output), exclusive=self.shard is None)
            if self.shard is not None:
                self._take(lock_path(self.output, self.shard), exclusive=True)
                self._take_count(self.shard[1])
        except BaseException:
            self.release()
            raise

    def __enter__(self) -> OutputLock:
        self.take()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()

    def release(self) -> None:
        while self._fds:
            fd = self._fds.pop()
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists: a lock file keeps the pid of the last run that held it
    alone, and the run holding it now may be one that shares it (a shard, a run on a sub-folder)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, another user's
        return True
    return True


def _near(folder: Path) -> Path:
    """``folder`` relative to the working folder when inside it, as the user would name it."""
    rel = os.path.relpath(folder)
    return Path(rel) if not rel.startswith("..") else folder


def _held(path: Path) -> bool:
    """Whether some run holds the lock file at ``path`` now."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # blocked by a shared holder too (a shard)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def remove_partials(folder: Path, owned: list[Path] | None = None, walk: bool = True) -> int:
    """Delete ``.*.partial`` files left by a killed run under ``folder`` (call only while holding the lock).

    With ``owned`` (a shard's output paths relative to ``folder``), only the temporaries of
    those outputs are removed: other shards may be writing theirs right now. ``walk=False``
    looks in ``folder`` itself only (not its sub-folders). A sub-folder whose own lock is held now
    (another run's output or ``--save-masks`` folder, nested in this one) is left to that run.
    """
    removed = 0
    if not folder.is_dir():
        return 0
    prefixes: dict[str, set[str]] | None = None
    if owned is not None:
        prefixes = {}
        for rel in owned:
            prefixes.setdefault(os.path.normpath(os.path.join(folder, rel.parent)), set()).add(partial_prefix(rel.name))
    listing = os.walk(folder) if walk else [(os.fspath(folder), [], [e.name for e in os.scandir(folder) if e.is_file()])]
    for root, dirs, files in listing:
        dirs[:] = [name for name in dirs if not _held(lock_path(Path(root, name)))]
        mine = None if prefixes is None else prefixes.get(os.path.normpath(root), set())
        for name in files:
            if mine is not None and not any(name.startswith(p) for p in mine):
                continue
            if name.startswith(".") and name.endswith(".partial"):
                try:
                    os.unlink(os.path.join(root, name))
                    removed += 1
                except FileNotFoundError:
                    pass
    return removed
