"""Does averaging the restoration network over flips/rotations (a self-ensemble) close the gap to BM3D?

Why: the detector gains from four views (``mask_detector.DIHEDRAL``), and denoisers such as
DnCNN and EDSR report +0.1-0.3 dB from the same trick, so the network alone (``vae + true
(empty) mask`` in make bench, 29.80 dB at sigma 25 against BM3D's 29.97) might pass BM3D with
it. This runs the shipped network on the bench's noisy Set12 (``restore degrade --preset
gaussian --sigma S --seed 0``, 8-bit) with 1, 2, 4 and 8 views and prints per-image and mean
PSNR (outputs rounded to 8 bits, as written) and seconds per image.

    .venv/bin/python scripts/restorer_views.py [--sigma 25] [--views 1,2,4,8] [--data ../shared/datasets]

Result (2026-11-28, AMD EPYC 2 cores, shipped 40-wide network, sigma 25): 29.801 / 29.856 /
29.890 / 29.908 dB with 1 / 2 / 4 / 8 views at 0.24 / 0.48 / 0.96 / 1.93 s per image: +0.11 dB
for 8x the time, every image within +0.08-0.16. Short of BM3D, so not built (docs/experiments.md).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from restore_cli.evaluate.metrics import psnr
from restore_cli.io import read_image
from restore_cli.restoration.mask_detector import DIHEDRAL
from restore_cli.restoration.vae_method import VAERestorer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sigma", type=int, default=25)
    parser.add_argument("--views", default="1,2,4,8")
    parser.add_argument("--data", type=Path, default=Path("../shared/datasets"))
    parser.add_argument("--checkpoint", type=Path, default=Path("checkpoints/vae.safetensors"))
    args = parser.parse_args()
    counts = sorted(int(v) for v in args.views.split(","))
    with tempfile.TemporaryDirectory() as tmp:
        noisy_set = Path(tmp) / "noisy"
        subprocess.run([str(Path(sys.executable).with_name("restore")), "degrade", str(args.data / "set12"), "-o", str(noisy_set),
                        "--preset", "gaussian", "--sigma", str(args.sigma), "--seed", "0"],
                       check=True, stdout=subprocess.DEVNULL)
        restorer = VAERestorer.load(args.checkpoint)
        scores: dict[int, list[float]] = {v: [] for v in counts}
        seconds = dict.fromkeys(counts, 0.0)
        names = sorted(p.name for p in (noisy_set / "degraded").iterdir())
        for name in names:
            noisy = read_image(noisy_set / "degraded" / name).pixels[:, :, 0]
            clean = read_image(noisy_set / "clean" / name).pixels[:, :, 0]
            restorer.restore_luma(noisy)  # compiled outside the timing
            outputs, start = [], time.perf_counter()
            for view, (forward, inverse) in enumerate(DIHEDRAL[:counts[-1]], start=1):
                outputs.append(inverse(restorer.restore_luma(np.ascontiguousarray(forward(noisy)))))
                if view in scores:
                    estimate = np.round(np.clip(np.mean(outputs, axis=0), 0, 1) * 255) / 255
                    scores[view].append(psnr(estimate, clean))
                    seconds[view] += time.perf_counter() - start
            print(name, " ".join(f"{v}:{scores[v][-1]:.2f}" for v in counts), flush=True)
    for v in counts:
        print(f"{v} views: {np.mean(scores[v]):.3f} dB, {seconds[v] / len(names):.2f} s per image")


if __name__ == "__main__":
    main()
