"""How much of a preset's true defect mask can still be seen once the global ageing has run?

Why: the mask detector's F1 on ``old-photo`` (0.27-0.31 in make bench) is far under its F1 on
``scratches`` (0.59), and the goal is 0.85 on both. The true mask is taken before the global
effects (``restore_cli.degrade.engine``: a pixel the local defects changed by >= 8 levels), so
fading, blur, resampling and JPEG might leave part of it invisible, which would cap any detector.
This replays the engine per image (same draws): local defects, then the preset's global effects
applied twice from the same generator state, once over the damaged and once over the clean
image, and counts the true-mask pixels that the two aged images still tell apart by >= LEVELS
(8). Its "oracle" F1 scores that still-visible difference as if it were a prediction.

    .venv/bin/python scripts/defect_visibility.py ../shared/datasets/set12 old-photo [LEVELS]

Result (2026-11-28, Set12, seeds 1000-1011): ``old-photo`` 95.4 % of the 18,540 mask pixels
still differ by >= 8 levels (per-image median 95.6 %); the still-visible difference scores F1
0.73 (precision 0.59: blur and resampling spread a defect beyond its mask, recall 0.95).
``scratches`` 99.0 %, F1 0.995. So the gap is not invisible labels: the detector misses defects
that are there to be seen (make bench's ``old-photo`` run of 2026-11-28 01:05: recall 0.00 on the
image resampled 3.4x with fading and grain, 0.06-0.54 on the rest). A detector that marks the
spread footprint would pay in precision: the mask's own definition costs up to ~0.27 F1 there.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from restore_cli.degrade.config import PRESETS
from restore_cli.degrade.engine import defect_mask
from restore_cli.degrade.global_effects import apply_global
from restore_cli.degrade.raster import DefectLayer
from restore_cli.degrade.scratches import draw_scratches
from restore_cli.degrade.spots import draw_dust
from restore_cli.io import list_images, read_image


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("preset", choices=sorted(PRESETS))
    parser.add_argument("levels", type=float, nargs="?", default=8.0)
    args = parser.parse_args()
    config = PRESETS[args.preset]
    tp = fn = fp = 0
    shares = []
    for i, path in enumerate(list_images(args.folder)):
        clean = read_image(path).pixels[:, :, :1]
        rng = np.random.default_rng(1000 + i)
        layer = DefectLayer(clean.shape[:2])
        draw_scratches(layer, config.scratches, rng)
        draw_dust(layer, config.dust, rng)
        damaged, _ = layer.over(clean)
        mask = defect_mask(clean, damaged)
        state = rng.bit_generator.state
        aged_damaged, _ = apply_global(damaged, config, rng)
        rng.bit_generator.state = state  # the same ageing, over the clean image
        aged_clean, _ = apply_global(clean, config, rng)
        visible = np.abs(aged_damaged - aged_clean)[:, :, 0] * 255 >= args.levels
        tp, fn, fp = tp + (visible & mask).sum(), fn + (~visible & mask).sum(), fp + (visible & ~mask).sum()
        if mask.any():
            shares.append((visible & mask).sum() / mask.sum())
    total = tp + fn
    print(f"{args.preset} on {args.folder.name}: {total} mask pixels, {tp / total:.3f} still >= {args.levels:g} "
          f"levels after the ageing (per-image median {np.median(shares):.3f}); that difference as a mask: "
          f"F1 {2 * tp / (2 * tp + fn + fp):.3f} (precision {tp / (tp + fp):.3f}, recall {tp / total:.3f})")


if __name__ == "__main__":
    main()
