"""Samples per second of the degradation engine on one core (what online training can draw).

    python -m bench.degrade_speed [--samples 300] [--size 256] [--presets old-photo,scratches,gaussian]
                                  [--rgb] [--quick]

Times ``restore_cli.degrade.engine.degrade`` alone (no file I/O, no PNG encoding) on random
crops of scikit-image's bundled ``camera`` photo, in one process with single-threaded numeric
libraries (``--pin`` also pins it to one CPU). Prints one JSON object per preset on stdout,
e.g. ``{"preset": "old-photo", "samples_per_s": 250.0, ...}``: ``samples_per_s`` is the
median wall-clock rate of three equal blocks; ``cpu_samples_per_s`` divides by the process's
CPU time instead, which stays meaningful when other jobs share the cores.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # before numpy is imported

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

BLOCKS = 3


def pin_to_one_core() -> int | None:
    """Run on a single CPU where the OS allows it; returns that CPU's number."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    return cpu


def crops(count: int, size: int, rgb: bool, seed: int = 0) -> list[np.ndarray]:
    from skimage import data

    photo = (data.astronaut() if rgb else data.camera()).astype(np.float32) / 255.0
    photo = photo if photo.ndim == 3 else photo[:, :, None]
    rng = np.random.default_rng(seed)
    height, width = photo.shape[:2]
    out = []
    for _ in range(count):
        top, left = rng.integers(0, height - size + 1), rng.integers(0, width - size + 1)
        out.append(np.ascontiguousarray(photo[top : top + size, left : left + size]))
    return out


def measure(preset: str, images: list[np.ndarray], seed: int = 0) -> dict:
    from restore_cli.degrade.config import PRESETS
    from restore_cli.degrade.engine import degrade

    config = PRESETS[preset]
    rng = np.random.default_rng(seed)
    for image in images[:10]:  # warm-up: imports, caches, first-call allocations
        degrade(image, config, rng)
    block = max(1, len(images) // BLOCKS)
    rates, start, cpu_start = [], time.perf_counter(), time.process_time()
    for b in range(BLOCKS):
        t0 = time.perf_counter()
        for image in images[b * block : (b + 1) * block]:
            degrade(image, config, rng)
        rates.append(block / (time.perf_counter() - t0))
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    rate = statistics.median(rates)
    return {"preset": preset, "samples_per_s": round(rate, 1), "ms_per_sample": round(1000 / rate, 2),
            "overall_samples_per_s": round(block * BLOCKS / wall, 1),
            "cpu_samples_per_s": round(block * BLOCKS / cpu, 1), "samples": block * BLOCKS}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.degrade_speed", description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=300, help="samples per preset (default 300)")
    parser.add_argument("--size", type=int, default=256, help="crop side in pixels (default 256)")
    parser.add_argument("--presets", default="old-photo,scratches,gaussian", help="comma-separated presets")
    parser.add_argument("--rgb", action="store_true", help="RGB crops (astronaut) instead of gray (camera)")
    parser.add_argument("--quick", action="store_true", help="100 samples per preset")
    parser.add_argument("--pin", action="store_true", help="pin the process to one CPU")
    args = parser.parse_args(argv)
    cpu = pin_to_one_core() if args.pin else None
    images = crops(100 if args.quick else args.samples, args.size, args.rgb)
    for preset in [p.strip() for p in args.presets.split(",") if p.strip()]:
        record = measure(preset, images)
        record.update(size=args.size, channels=3 if args.rgb else 1, cores=1, pinned_cpu=cpu,
                      load_average=round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None)
        print(json.dumps(record), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
