"""Paste ``bench-results/results.md`` into README.md between the bench markers, and nothing else.

    python -m bench.update_readme [--results bench-results/results.md] [--readme README.md] [--check]

The README's prose is written by people; the numbers come from ``make bench``. Keeping the
numbers between ``<!-- bench:start -->`` and ``<!-- bench:end -->`` lets each side be
updated without touching the other, and ``--check`` (exit 1 when the README is stale)
lets CI notice a README whose numbers no longer match the committed results.
The results use ``###``/``####`` headings so they sit under a ``##`` section of the README.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

START, END = "<!-- bench:start -->", "<!-- bench:end -->"


class MarkerError(ValueError):
    pass


def splice(readme: str, results: str) -> str:
    """``readme`` with everything between the markers replaced by ``results`` (markers kept)."""
    if readme.count(START) != 1 or readme.count(END) != 1:
        raise MarkerError(f"README must hold exactly one {START} and one {END} line")
    head, rest = readme.split(START, 1)
    _, tail = rest.split(END, 1)
    if not head.endswith("\n") and head:
        head += "\n"
    return f"{head}{START}\n{results.strip()}\n{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.update_readme", description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=Path("bench-results/results.md"))
    parser.add_argument("--readme", type=Path, default=Path("README.md"))
    parser.add_argument("--check", action="store_true", help="only report whether README.md is up to date")
    args = parser.parse_args(argv)
    for path in (args.results, args.readme):
        if not path.is_file():
            print(f"error: {path}: no such file", file=sys.stderr)
            return 2
    readme = args.readme.read_text(encoding="utf-8")
    try:
        updated = splice(readme, args.results.read_text(encoding="utf-8"))
    except MarkerError as exc:
        print(f"error: {args.readme}: {exc}", file=sys.stderr)
        return 2
    if args.check:
        stale = updated != readme
        print(f"{args.readme}: {'out of date with' if stale else 'matches'} {args.results}", file=sys.stderr)
        return 1 if stale else 0
    if updated != readme:
        tmp = args.readme.with_name(f".{args.readme.name}.partial")
        tmp.write_text(updated, encoding="utf-8")
        tmp.replace(args.readme)
        print(f"{args.readme}: benchmark block updated from {args.results}", file=sys.stderr)
    else:
        print(f"{args.readme}: already up to date", file=sys.stderr)
    print(args.readme)
    return 0


if __name__ == "__main__":
    sys.exit(main())
