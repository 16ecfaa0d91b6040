"""``make bench``: measure everything the README claims, on this machine, with one command.

    python -m bench.run --data ../shared/datasets --out bench-results [--quick] [--only denoise,speed]

Each section (see :mod:`bench.sections`) runs in turn; a section that fails is recorded as
failed with its reason and the others still run, so one broken method never hides the
rest. Progress goes to stderr; the last line on stdout is the path of ``results.md``
(``results.json`` beside it has every number plus the machine description).
Exit status: 0 when every section ran, 1 when any failed (the results are written anyway).
``--only`` rewrites the results with just those sections (no merging with an older run, so
one results file never mixes machines or dates). ``OUT/data`` and ``OUT/runs`` hold the
generated inputs and raw outputs; each ignores itself in git, so only results are committed.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
import traceback
from pathlib import Path

from bench import machine, report
from bench.report import SectionResult, Table
from bench.sections import SECTIONS
from bench.sections.common import Context


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/datasets"),
                        help="folder holding set12/, old_photos/ (default: ../shared/datasets)")
    parser.add_argument("--out", type=Path, default=Path("bench-results"), help="results folder")
    parser.add_argument("--quick", action="store_true", help="a short run (< 5 min): 3 images, sigma 25, small scan")
    parser.add_argument("--checkpoints", type=Path, default=None,
                        help="score the models in this folder instead of checkpoints/ (e.g. a candidate before shipping it)")
    parser.add_argument("--only", default="", help=f"comma-separated sections to run (of: {', '.join(SECTIONS)})")
    args = parser.parse_args(argv)
    args.sections = [s.strip() for s in args.only.split(",") if s.strip()] or list(SECTIONS)
    unknown = [s for s in args.sections if s not in SECTIONS]
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    return args


def run_sections(ctx: Context, names: list[str]) -> list[SectionResult]:
    results = []
    for name in names:
        ctx.log(f"=== section {name} ===")
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
        start = time.perf_counter()
        try:
            tables, status = SECTIONS[name](ctx), "ok"
        except Exception as exc:  # noqa: BLE001 - recorded, and the next section still runs
            traceback.print_exc(file=sys.stderr)
            reason = f"failed: {type(exc).__name__}: {exc}"
            tables, status = [Table(name, rows=[{"section": name, "note": reason}])], reason
        seconds = time.perf_counter() - start
        ctx.log(f"=== section {name}: {status} in {seconds:.1f} s ===")
        results.append(SectionResult(name, seconds, tables, status, load))
    return results


def main(argv: list[str] | None = None, ctx: Context | None = None) -> int:
    args = parse_args(argv)
    if ctx is None and not args.data.is_dir():  # before anything is written: no failure tables over the results
        print(f"error: --data {args.data}: no such folder (the standard sets: datasets/README.md says where "
              "they come from)", file=sys.stderr)
        return 2
    ctx = ctx or Context(data=args.data.resolve(), out=args.out.resolve(), quick=args.quick,
                         models=args.checkpoints.resolve() if args.checkpoints else None)
    ctx.prepare()
    ctx.log(f"data {ctx.data}, out {ctx.out}{' (quick)' if ctx.quick else ''}; sections {', '.join(args.sections)}")
    info = machine.describe()
    ctx.log("machine: " + machine.one_line(info))
    results = run_sections(ctx, args.sections)
    shown = " ".join(shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    meta = {"command": f"python -m bench.run {shown}".strip(), "quick": ctx.quick, "data": os.fspath(ctx.data),
            "sections": args.sections}
    _, md = report.write(ctx.out, info, results, meta)
    ctx.log(f"done in {sum(r.seconds for r in results) / 60:.1f} min")
    print(md)
    return 0 if all(r.status == "ok" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
