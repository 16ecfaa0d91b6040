"""Time and peak memory of ``restore restore`` on one 6000x4000 RGB scan with scratches.

The claim it checks: a 24-megapixel colour scan goes through mask + inpainting (and, for
``classical``, NL-means and the stretch) within 2 GiB of resident memory. The image is
synthetic (a photo upscaled, grain, drawn scratches and dust) and made in a temporary folder.
The restoration runs as a separate ``restore`` process, so its peak RSS (``ru_maxrss`` of
the child) does not include this script's own copy of the image.

    python bench/restore_big.py                       # classical
    python bench/restore_big.py --method hybrid --true-mask   # inpainting with the drawn mask
    python bench/restore_big.py --method hybrid       # needs checkpoints/mask_unet.safetensors
    python bench/restore_big.py --method hybrid --mask-f1 [--mask-scales 0]   # + the mask's F1

Prints one JSON object: {"seconds", "peak_rss_mb", "method", "width", "height", ...}; with
``--mask-f1`` also the predicted mask's F1, precision and recall against the drawn one (which is
a pixel wider than each stroke on every side). Result (2026-11-27, `hybrid`, shipped detector):
F1 0.33 (precision 0.98, recall 0.20) with ``--mask-scales 0``, 41 s; 0.81 (0.78 / 0.85) with the
default coarse levels for its size (two), 51 s: its scratches are 2-8 px wide, its dust 4-16 px.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw


def make_scan(path: Path, mask_path: Path, width: int, height: int, seed: int = 0) -> float:
    """Write a synthetic damaged scan and its true defect mask; return the mask's coverage."""
    from skimage import data

    rng = np.random.default_rng(seed)
    base = Image.fromarray(data.astronaut()).resize((width, height), Image.Resampling.BICUBIC)
    damage = Image.new("L", (width, height), 0)
    draw_img, draw_mask = ImageDraw.Draw(base), ImageDraw.Draw(damage)
    for i in range(60):  # long scratches, bright and dark, 2-8 px wide
        xy = [tuple(int(v) for v in rng.integers(0, (width, height))) for _ in range(2)]
        shade = (235, 235, 230) if i % 2 else (25, 22, 20)
        line_width = int(rng.integers(2, 9))
        draw_img.line(xy, fill=shade, width=line_width)
        draw_mask.line(xy, fill=255, width=line_width + 2)
    for i in range(3000):  # dust
        x, y, r = int(rng.integers(0, width)), int(rng.integers(0, height)), int(rng.integers(2, 8))
        draw_img.ellipse((x - r, y - r, x + r, y + r), fill=(240, 240, 240) if i % 3 else (15, 15, 15))
        draw_mask.ellipse((x - r - 1, y - r - 1, x + r + 1, y + r + 1), fill=255)
    pixels = np.asarray(base, dtype=np.int16)
    for row in range(0, height, 500):  # film grain, in bands to keep this script small too
        band = pixels[row : row + 500]
        pixels[row : row + 500] = band + rng.normal(0, 6, band.shape).astype(np.int16)
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(path, compress_level=1)
    damage.save(mask_path)
    return float(np.asarray(damage).mean() / 255)


def mask_scores(predicted: Path, drawn: Path) -> dict[str, float]:
    """F1, precision and recall of a predicted mask (255 = defect) against the drawn one, as `restore evaluate` scores them."""
    from restore_cli.evaluate.compare import score_mask

    scores = score_mask(predicted, drawn)
    return {f"mask_{k}": round(float(scores[k]), 4) for k in ("f1", "precision", "recall")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", default="classical")
    parser.add_argument("--true-mask", action="store_true", help="pass the drawn mask with --masks")
    parser.add_argument("--width", type=int, default=6000)
    parser.add_argument("--height", type=int, default=4000)
    parser.add_argument("--checkpoints", help="models folder passed on to `restore restore` (default: the shipped ones)")
    parser.add_argument("--mask-scales", help="passed on to `restore restore` (default: its own, by image size)")
    parser.add_argument("--mask-f1", action="store_true", help="also score the predicted mask against the drawn one")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="restore-big-") as tmp:
        root = Path(tmp)
        (root / "in").mkdir()
        (root / "masks").mkdir()
        coverage = make_scan(root / "in" / "scan.png", root / "masks" / "scan.png", args.width, args.height)
        command = [sys.executable, "-m", "restore_cli.cli", "restore", str(root / "in"), "-o", str(root / "out"),
                   "--method", args.method, "--quiet"]
        if args.true_mask:
            command += ["--masks", str(root / "masks")]
        if args.checkpoints:
            command += ["--checkpoints", args.checkpoints]
        if args.mask_scales is not None:
            command += ["--mask-scales", args.mask_scales]
        if args.mask_f1:
            command += ["--save-masks", str(root / "predicted")]
        start = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        seconds = time.perf_counter() - start
        peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        result = {
            "seconds": round(seconds, 1),
            "peak_rss_mb": round(peak_kib / 1024, 1),
            "method": args.method,
            "true_mask": args.true_mask,
            "width": args.width,
            "height": args.height,
            "true_defect_coverage": round(coverage, 4),
            "exit_status": done.returncode,
        }
        if done.returncode:
            result["stderr"] = done.stderr.strip().splitlines()[-3:]
        elif args.mask_f1:
            result.update(mask_scores(root / "predicted" / "scan.png", root / "masks" / "scan.png"))
        print(json.dumps(result))


if __name__ == "__main__":
    main()
