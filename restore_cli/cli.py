"""The `restore` command line: each command is Annotated options, a docstring and one library call.

Conventions shared by every command:
- stdout carries only pipeline output (a path, or --json records); logs and progress go to stderr;
- a command whose input argument is omitted reads paths from stdin when stdin is a pipe;
- domain errors (:class:`RestoreError`) become one line on stderr and a documented exit status.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Optional

import typer

from restore_cli import __version__
from restore_cli.errors import ExitStatus, RestoreError, UsageError
from restore_cli.io import DEFAULT_MAX_PIXELS, read_paths_from_stdin
from restore_cli.log import setup_logging, stderr_console

EXIT_STATUSES_HELP = (
    "Exit status: 0 all done; 1 fatal error; 2 usage error; "
    "3 finished but some files failed; 4 output folder locked by another run."
)

app = typer.Typer(
    name="restore",
    help=(
        "Bring damaged old photographs back: find scratches, cracks and dust, fill them in, "
        "remove grain and noise; make training data, train and evaluate the models.\n\n"
        "Pipeline example:\n\n"
        "  restore degrade --preset old-photo -o data | restore train-mask -o mask.safetensors\n\n"
        + EXIT_STATUSES_HELP
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)

# ----------------------------------------------------------------- shared options (defined once)
Verbose = Annotated[bool, typer.Option("--verbose", "-v", help="More detail on stderr (compile counts, timings).")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="Only errors and the final summary on stderr.")]
Seed = Annotated[int, typer.Option(help="Seed that fixes every random choice (same seed, same bytes).")]
MaxPixels = Annotated[
    int, typer.Option(help="Refuse images with more pixels than this (decompression-bomb guard).")
]
Workers = Annotated[int, typer.Option(min=1, help="Worker processes (results do not depend on it).")]
__all__ = ["app", "main", "DEFAULT_MAX_PIXELS", "Verbose", "Quiet", "Seed", "MaxPixels", "Workers"]


def run_library_call(call: Callable[[], object], verbose: bool = False, quiet: bool = False) -> None:
    """Run one library call and turn its result or domain error into an exit status."""
    setup_logging(verbose=verbose, quiet=quiet)
    try:
        status = call()
    except RestoreError as exc:
        stderr_console.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)
        raise typer.Exit(int(exc.status)) from None
    except KeyboardInterrupt:
        stderr_console.print("interrupted", markup=False)
        raise typer.Exit(130) from None
    raise typer.Exit(int(status) if isinstance(status, int) else int(ExitStatus.OK))


def paths_or_stdin(given: list[Path] | None, what: str, required: bool = True) -> list[Path]:
    """The paths given on the command line, else those piped on stdin (one per line)."""
    if given:
        return list(given)
    if not sys.stdin.isatty():
        piped = read_paths_from_stdin(sys.stdin)
        if piped:
            return piped
    if required:
        raise UsageError(f"no {what} given: pass it as an argument or pipe its path on stdin")
    return []


def print_path(path: Path) -> None:
    """The one line a producer writes on stdout, for the next command in a pipeline."""
    sys.stdout.write(f"{path}\n")
    sys.stdout.flush()


def version_callback(value: bool) -> None:
    if value:
        sys.stdout.write(f"restore {__version__}\n")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        Optional[bool], typer.Option("--version", callback=version_callback, is_eager=True, help="Print the version.")
    ] = None,
) -> None:
    """restore: old-photo restoration toolchain."""


# ----------------------------------------------------------------- commands
# Each command below is: Annotated options + a docstring with an example + one library call.
# Keep the library free of Typer: it raises RestoreError subclasses and logs to "restore.*".


def main() -> None:
    app()


if __name__ == "__main__":
    main()
