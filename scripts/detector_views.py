"""How averaging the detector over flips/rotations (``--mask-views``) trades precision for recall.

Why: a single pass of the mask U-Net flags thin natural lines (masts, ropes, edges) that a
flipped or rotated copy of the same image does not; averaging the views' probabilities keeps
what they agree on. This scores 1, 2, 4 and 8 views on ``make bench``'s own data, at several
thresholds, so the gain can be told apart from a mere shift of the operating point:

* Set12 ``scratches`` (noise-free): pooled mask precision, recall and F1 against the true masks;
* Set12 sigma 15 after the network (``vae + true (empty) mask`` run): the flagged fraction on
  images that have no defect at all (what ``auto``'s detector sees there).

    make bench   # writes bench-results/data and bench-results/runs
    .venv/bin/python scripts/detector_views.py [--bench bench-results]

Results (2026-11-27, shipped six-stage detector) are quoted in
restore_cli/restoration/mask_detector.py (``DIHEDRAL``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from restore_cli.io import read_image
from restore_cli.restoration.mask_detector import MaskDetector

THRESHOLDS = (0.7, 0.9, 0.95, 0.97, 0.98)


def _gray(path: Path) -> np.ndarray:
    return read_image(path).pixels[:, :, 0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bench", type=Path, default=Path("bench-results"))
    parser.add_argument("--checkpoint", type=Path, default=Path("checkpoints/mask_unet.safetensors"))
    args = parser.parse_args()
    scratches = sorted((args.bench / "data" / "scratches" / "degraded").glob("*.png"))
    defects = [(_gray(p), _gray(p.parent.parent / "masks" / p.name) > 0.5) for p in scratches]
    noise_only = [_gray(p) for p in sorted((args.bench / "runs" / "gaussian15" / "vae-empty-mask" / "restored").glob("*.png"))]
    if not defects or not noise_only:
        raise SystemExit(f"no make bench data under {args.bench} (run make bench first)")
    for views in (1, 2, 4, 8):
        detector = MaskDetector.load(args.checkpoint, tile=544, views=views)  # 544: the runner's tile here
        probs = [detector.probabilities(x) for x, _ in defects]
        free = [detector.probabilities(x) for x in noise_only]
        for t in THRESHOLDS:
            tp = sum(int(((p >= t) & m).sum()) for p, (_, m) in zip(probs, defects))
            fp = sum(int(((p >= t) & ~m).sum()) for p, (_, m) in zip(probs, defects))
            fn = sum(int(((p < t) & m).sum()) for p, (_, m) in zip(probs, defects))
            flagged = np.mean([(p >= t).mean() * 100 for p in free])
            print(f"views {views} threshold {t}: scratches F1 {2 * tp / (2 * tp + fp + fn):.4f} "
                  f"precision {tp / max(tp + fp, 1):.3f} recall {tp / (tp + fn):.3f} | sigma-15 flagged {flagged:.3f} %")


if __name__ == "__main__":
    main()
