"""Where a method's squared error lies: missed defects, false alarms, filled defects, or the rest.

Why: the README quotes one PSNR per method and preset, which cannot say what to improve. This
splits a make bench run's squared error (pooled over the set's images) by the true mask T and the
method's saved mask P: missed (T and not P), false alarm (P and not T), filled (T and P), and the
rest (neither: what denoising, deblurring and tone do). Each part is printed as the PSNR the image
would have if that part were its only error, and as its share of the total; ``--per-image`` adds
a row per image (error x 1e4 per pixel).

    make bench   # writes bench-results/data/PRESET and bench-results/runs/PRESET/RUN/{restored,masks}
    .venv/bin/python scripts/error_budget.py scratches hybrid auto [--per-image] [--bench bench-results]

Result (2026-11-28, make bench data of 03:49 UTC, shipped models):

* ``scratches`` ``hybrid`` (one detector view): pooled 34.05 dB; false alarms 57 % of the
  squared error, missed defects 33 %, filled defects 9 %. ``auto`` (four views): 35.22 dB; missed
  52 %, false alarms 33 %, filled 13 %. So the views trade false alarms for misses: both need a
  more precise *and* more sensitive detector, not a threshold.
* ``old-photo`` ``auto``: 22.53 dB pooled; the rest 94 %, missed 4 %, false alarms 1 %. The
  defects are not what keeps ``old-photo`` from its goal: fading (scripts/fade_oracle.py),
  blur, resampling and grain are. Per image, the rest dominates on every one. But the benchmark
  averages per-image PSNR, where an image with little error weighs more: there the detector still
  costs 0.34 dB (``auto`` 24.40 against ``vae + true mask`` 24.74), 86 % of it on four grainy
  prints (02, 05, 06, 12: 1.35 / 0.77 / 0.93 / 0.51 dB), mostly missed defects (06: 5.0 of 23.8
  x 1e-4 per pixel; 05 also false alarms, 3.1).
* ``grain`` ``auto``: false alarms 7.6 % of the squared error, the grain left in place the rest.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from restore_cli.io import read_image

PARTS = ("missed", "false alarm", "filled", "rest")


def _plane(path: Path) -> np.ndarray:
    return read_image(path).pixels[:, :, 0]


def budget(data: Path, run: Path) -> tuple[dict[str, float], int, list[tuple[str, dict[str, float]]]]:
    """Pooled squared error per part, the pixel count, and per image the error per pixel per part."""
    pooled, pixels, rows = dict.fromkeys(PARTS, 0.0), 0, []
    for clean_path in sorted((data / "clean").iterdir()):
        name = clean_path.name
        clean, restored = _plane(clean_path), _plane(run / "restored" / name)
        true = _plane(data / "masks" / name) > 0.5
        found = (_plane(run / "masks" / name) > 0.5) if (run / "masks" / name).is_file() else np.zeros_like(true)
        error = (restored - clean) ** 2
        parts = dict(zip(PARTS, (error[m].sum() for m in (true & ~found, found & ~true, true & found, ~true & ~found))))
        for part, value in parts.items():
            pooled[part] += float(value)
        pixels += clean.size
        rows.append((name, {part: float(value) / clean.size for part, value in parts.items()}))
    return pooled, pixels, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("preset", help="a make bench data set, e.g. scratches or old-photo")
    parser.add_argument("runs", nargs="+", help="method runs under bench-results/runs/PRESET, e.g. hybrid auto")
    parser.add_argument("--bench", type=Path, default=Path("bench-results"))
    parser.add_argument("--per-image", action="store_true")
    args = parser.parse_args()
    data = args.bench / "data" / args.preset
    if not (data / "masks").is_dir():
        raise SystemExit(f"no make bench data with true masks at {data} (run make bench first)")
    for name in args.runs:
        run = args.bench / "runs" / args.preset / name
        if not (run / "restored").is_dir():
            raise SystemExit(f"{run}: no restored/ folder (a make bench run of that method?)")
        pooled, pixels, rows = budget(data, run)
        total = sum(pooled.values())
        print(f"{args.preset} / {name}: pooled {10 * np.log10(pixels / total):.2f} dB")
        for part in PARTS:
            alone = f"{10 * np.log10(pixels / pooled[part]):6.2f} dB" if pooled[part] else "   inf dB"
            print(f"  {part:12} {alone} if alone, {pooled[part] / total:5.1%} of the squared error")
        if args.per_image:
            print("  image        " + " ".join(f"{p:>12}" for p in PARTS) + "  (squared error per pixel x 1e4)")
            for image, parts in rows:
                print(f"  {image:12} " + " ".join(f"{parts[p] * 1e4:12.2f}" for p in PARTS))


if __name__ == "__main__":
    main()
