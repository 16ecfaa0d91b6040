"""Exit statuses and the domain errors that the CLI turns into one-line messages.

The library raises these; it never calls ``sys.exit`` and never prints. The CLI
(`restore_cli.cli`) maps each to a message on stderr and an exit status.
"""

from __future__ import annotations

import enum


class ExitStatus(enum.IntEnum):
    """Documented exit statuses shared by every command (see README)."""

    OK = 0  # everything asked for was done
    FATAL = 1  # nothing (or nothing more) could be done: bad checkpoint, unwritable output, ...
    USAGE = 2  # bad command line (Typer/Click uses 2 as well)
    PARTIAL = 3  # the batch finished, but some input files failed (each named on stderr)
    LOCKED = 4  # another run holds the output folder's lock


class RestoreError(Exception):
    """A user-facing problem: the message is shown as one line, without a traceback."""

    status: ExitStatus = ExitStatus.FATAL


class UsageError(RestoreError):
    """Options that contradict each other or name things that do not exist."""

    status = ExitStatus.USAGE


class InputError(RestoreError):
    """One input file cannot be used. The batch reports it and goes on."""

    def __init__(self, path: object, reason: str):
        from restore_cli.io import display_path  # local: io imports this module

        self.path = path
        self.reason = reason
        super().__init__(f"{display_path(path)}: {reason}")


class CheckpointError(RestoreError):
    """A checkpoint file is missing, corrupt, or not one of ours."""


class LockedError(RestoreError):
    """Another run is writing into the same output folder."""

    status = ExitStatus.LOCKED
