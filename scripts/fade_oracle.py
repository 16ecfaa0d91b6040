"""How much of the ``old-photo`` gap is fading? Undo each image's drawn fade on ``auto``'s output.

Why: on Set12 ``old-photo`` the default method (24.4 dB in make bench, 2026-11-27) is short of the
goal (the classical pipeline given the true mask, + 1 dB). The preset fades half its prints
(``out = black + (white - black) * in ** gamma``, restore_cli/degrade/global_effects.py) and the
restoration network never learned to undo that: it is trained on defects + noise only
(scripts/checkpoints.sh says why). This applies, per image, the exact inverse of the fade that
``restore degrade`` recorded in its manifest to ``auto``'s result: an oracle, not a method. A
least-squares affine fit against the clean image is printed beside it (the best straight-line
tone map).

    make bench   # writes bench-results/data/old-photo and bench-results/runs/old-photo/auto
    .venv/bin/python scripts/fade_oracle.py [--bench bench-results]

Result (2026-11-27 03:05 make bench data, 0.1 s): mean 24.43 -> 25.97 dB with the exact inverse
(affine: 25.95), +9.1 dB on 03.png alone, 5 faded images of 12. So undoing the fade alone would
pass the goal. A blind estimate did not get there: a small regressor (linear, or an 8-unit MLP)
from 17 quantiles of the blurred scan and its noise level to (black, white, gamma), trained on
360 Train400 images degraded by the old-photo / gaussian / scratches presets, gained nothing on
the 40 held-out images when fitted to per-image PSNR (fitted to pooled MSE, it gained nothing on
``old-photo`` and lost 0.1-2.5 dB on the Gaussian and ``scratches`` rows): a clean photo's own
black and white points vary as much as the fade moves them (Set12 0.5 and 99.5 percentiles:
0.00-0.15 and 0.83-0.96).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from restore_cli.evaluate.metrics import psnr
from restore_cli.io import read_image


def _gray(path: Path) -> np.ndarray:
    return read_image(path).pixels[:, :, 0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bench", type=Path, default=Path("bench-results"))
    args = parser.parse_args()
    data, runs = args.bench / "data" / "old-photo", args.bench / "runs" / "old-photo" / "auto" / "restored"
    if not (data / "manifest.jsonl").is_file() or not runs.is_dir():
        raise SystemExit(f"no make bench old-photo data under {args.bench} (run make bench first)")
    rows = [json.loads(line) for line in (data / "manifest.jsonl").read_text().splitlines() if line.strip()]
    totals = np.zeros(3)
    for row in rows:
        clean, out = _gray(data / "clean" / row["name"]), _gray(runs / row["name"])
        fades = [g for g in row["params"]["global"] if g["effect"] == "fade"]
        undone = out
        if fades:
            f = fades[0]
            undone = np.clip((out - f["black"]) / (f["white"] - f["black"]), 0.0, 1.0) ** (1.0 / f["gamma"])
        a, b = np.linalg.lstsq(np.stack([out.ravel(), np.ones(out.size)], 1), clean.ravel(), rcond=None)[0]
        scores = [psnr(out, clean), psnr(undone, clean), psnr(np.clip(a * out + b, 0.0, 1.0), clean)]
        totals += scores
        fade = ", ".join(f"{k} {fades[0][k]:.3f}" for k in ("black", "white", "gamma")) if fades else "no fade"
        print(f"{row['name']}: auto {scores[0]:.2f} dB, fade undone {scores[1]:.2f}, affine fit {scores[2]:.2f} ({fade})")
    mean = totals / len(rows)
    print(f"mean over {len(rows)}: auto {mean[0]:.2f} dB, fade undone {mean[1]:.2f}, affine fit {mean[2]:.2f}")


if __name__ == "__main__":
    main()
