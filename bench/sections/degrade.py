"""How fast ``restore degrade`` makes training samples (the rate that bounds online training).

The measurement itself belongs to ``bench/degrade_speed.py`` (written with the engine, so it
times what the training loop calls); this section runs it as a subprocess, once per preset
it reports, and copies its JSON into the results. A second row times the user-facing
``restore degrade`` command on the Set12 folder, start-up included.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

from bench.report import Table, unavailable
from bench.sections.common import Context, clean_subset, degrade_set

NAME = "degrade"
SCRIPT = "bench/degrade_speed.py"
#: Fields of the script's JSON shown in the Markdown (results.json keeps the whole record as "raw").
DETAIL_KEYS = ("ms_per_sample", "size", "channels", "cores", "samples", "load_average")


def run(ctx: Context) -> list[Table]:
    table = Table("Synthetic degradation speed", columns=["what", "preset", "samples_per_s", "detail", "note"])
    script = ctx.repo / SCRIPT
    if not script.is_file():
        table.add(what=f"`{SCRIPT}`", note=unavailable(f"{SCRIPT} is not in this checkout"))
    else:
        for row in speed_rows(ctx):
            table.add(**row)
    clean = clean_subset(ctx)
    start = time.perf_counter()
    try:
        data = degrade_set(ctx, "old-photo-speed", clean, "old-photo")
    except Exception as exc:  # noqa: BLE001 - reported as a row
        table.add(what="`restore degrade` CLI", preset="old-photo", note=f"failed: {exc}")
    else:
        seconds = time.perf_counter() - start
        n = len(data.images())
        table.add(what="`restore degrade` CLI, whole Set12 images", preset="old-photo", samples_per_s=n / seconds,
                  detail=f"{n} images in {seconds:.1f} s incl. start-up and PNG writing")
    return [table]


def speed_rows(ctx: Context) -> list[dict]:
    """Run the speed script; one row per JSON object it prints (it may print one per preset)."""
    cmd = [sys.executable, "-m", "bench.degrade_speed"] + (["--quick"] if ctx.quick and _accepts_quick(ctx) else [])
    ctx.log("$ " + " ".join(cmd[1:]))
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True, cwd=ctx.repo)
    if proc.returncode != 0:
        tail = " | ".join(proc.stderr.strip().splitlines()[-2:])
        return [{"what": f"`{SCRIPT}`", "note": f"failed: exit {proc.returncode}: {tail}"}]
    rows = []
    for line in proc.stdout.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        record = json.loads(line)
        detail = ", ".join(f"{k} {record[k]}" for k in DETAIL_KEYS if k in record)
        rows.append({"what": "engine (`bench/degrade_speed.py`)", "preset": record.get("preset"),
                     "samples_per_s": record.get("samples_per_s"), "detail": detail, "raw": record})
    if not rows:
        rows.append({"what": f"`{SCRIPT}`", "note": "failed: printed no JSON"})
    return rows


def _accepts_quick(ctx: Context) -> bool:
    proc = subprocess.run([sys.executable, "-m", "bench.degrade_speed", "--help"], check=False, capture_output=True,
                          text=True, cwd=ctx.repo)
    return proc.returncode == 0 and "--quick" in proc.stdout
