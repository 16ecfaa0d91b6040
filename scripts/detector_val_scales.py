"""Mask checkpoints scored on the same held-out Train400 crops, at their own scale and enlarged.

Why: a detector fine-tuned with ``restore train-mask --zoom`` validates on a mixture of both
scales, so its own validation F1 cannot be set beside its parent's. This rebuilds the held-out
crops ``train-mask --online`` validates on (split seed as given, 64 crops of 160 px, the
defect-free twins for the repair threshold) once as they are and once all enlarged by 1-4x
(``data.ZoomedSource``, probability 1), and runs each checkpoint's validation on both.

    .venv/bin/python scripts/detector_val_scales.py checkpoints/mask_unet.safetensors CANDIDATE.safetensors

Result (2026-11-27, ~4 min on 2 CPU cores; split seed 1, the shipped detector's): shipped
val F1 0.637 / 0.418 (own scale / enlarged), the ``--zoom 4`` CPU fine-tune of README Status
0.617 / 0.492.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from restore_cli.models.checkpoint import load_model
from restore_cli.models.unet import build_unet
from restore_cli.train import data
from restore_cli.train.mask import KIND, MaskTrainConfig, _sources, make_evaluator

SCALES = {"own scale": (1.0, 0.0), "enlarged 1-4x": (4.0, 1.0)}  # label -> (zoom, zoom_prob)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+", type=Path)
    parser.add_argument("--clean", type=Path, default=Path("../shared/datasets/train400"))
    parser.add_argument("--split-seed", type=int, default=1)
    args = parser.parse_args()
    models = {path: load_model(path, KIND, build_unet)[0] for path in args.checkpoints}
    for label, (zoom, prob) in SCALES.items():
        config = MaskTrainConfig(batch=8, crop=160, split_seed=args.split_seed, zoom=zoom, zoom_prob=prob)
        _, val, free, _ = _sources(None, args.clean, config, 10**8)
        crops = [data.validation_set(s, config.val_crops, config.batch, config.crop, args.split_seed) for s in (val, free)]
        evaluate = make_evaluator(config, *crops)
        for path, model in models.items():
            scores = evaluate(model)
            print(f"{label}: {path}: " + ", ".join(f"{k} {v:.4g}" for k, v in scores.items()), flush=True)


if __name__ == "__main__":
    main()
