"""Mask checkpoints scored on the same held-out Train400 crops, at their own scale and enlarged, per view count.

Why: a detector fine-tuned with ``restore train-mask --zoom`` validates on a mixture of both
scales, so its own validation F1 cannot be set beside its parent's. This rebuilds the held-out
crops ``train-mask --online`` validates on (split seed as given, 64 crops of 160 px, the
defect-free twins for the repair threshold) once as they are and once all enlarged by 1-4x
(``data.ZoomedSource``, probability 1), and runs each checkpoint's validation on both.

    .venv/bin/python scripts/detector_val_scales.py checkpoints/mask_unet.safetensors CANDIDATE.safetensors

Result (2026-11-27, ~4 min on 2 CPU cores; split seed 1, the shipped detector's): shipped
val F1 0.637 / 0.418 (own scale / enlarged), the ``--zoom 4`` CPU fine-tune of docs/experiments.md
0.617 / 0.492.

``--views 1,4`` also scores each checkpoint averaged over that many flips/rotations (the mean
probability ``train-mask --distill-views`` learns; ``--own-scale`` skips the enlarged crops).
Result (2026-11-27, ~25 s per checkpoint; shipped detector of that day, views 1 / 4): val F1
0.636 / 0.647, repair PSNR 31.70 / 32.08 dB (repair threshold 0.95 / 0.8); the two distillation
runs of ``restore_cli/train/mask.py``'s docstring 0.638 / 0.648, 31.70 / 32.13 and 0.633 / 0.643,
31.60 / 32.01; the two GPU ones (``--distill-share 0.5`` / ``1``, ~10-12k steps of 32 crops):
0.645 / 0.653, 31.81 / 32.15 (shipped since) and 0.637 / 0.641, 31.70 / 32.02 (1 min 40 s for three).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import jax.numpy as jnp
from flax import nnx

from restore_cli.models.checkpoint import load_model
from restore_cli.models.unet import build_unet
from restore_cli.train import data
from restore_cli.train.mask import KIND, MaskTrainConfig, _sources, distill_target, make_evaluator

SCALES = {"own scale": (1.0, 0.0), "enlarged 1-4x": (4.0, 1.0)}  # label -> (zoom, zoom_prob)


class ViewMean(nnx.Module):
    """A detector averaged over ``views`` flips/rotations, giving logits as the evaluator expects."""

    def __init__(self, model: nnx.Module, views: int):
        self.model, self.views = model, views

    def __call__(self, images):
        prob = jnp.clip(distill_target(self.model, images, self.views), 1e-7, 1.0 - 1e-7)
        return jnp.log(prob) - jnp.log1p(-prob)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", nargs="+", type=Path)
    parser.add_argument("--clean", type=Path, default=Path("../shared/datasets/train400"))
    parser.add_argument("--split-seed", type=int, default=1)
    parser.add_argument("--views", default="1", help="view counts to score, e.g. 1,4")
    parser.add_argument("--own-scale", action="store_true", help="skip the enlarged crops")
    args = parser.parse_args()
    models = {}
    for path in args.checkpoints:
        model = load_model(path, KIND, build_unet)[0]
        for views in map(int, args.views.split(",")):
            models[f"{path} ({views} view{'s' if views > 1 else ''})"] = model if views == 1 else ViewMean(model, views)
    for label, (zoom, prob) in list(SCALES.items())[:1 if args.own_scale else None]:
        config = MaskTrainConfig(batch=8, crop=160, split_seed=args.split_seed, zoom=zoom, zoom_prob=prob)
        _, val, free, _ = _sources(None, args.clean, config, 10**8)
        crops = [data.validation_set(s, config.val_crops, config.batch, config.crop, args.split_seed) for s in (val, free)]
        evaluate = make_evaluator(config, *crops)
        for path, model in models.items():
            scores = evaluate(model)
            print(f"{label}: {path}: " + ", ".join(f"{k} {v:.4g}" for k, v in scores.items()), flush=True)


if __name__ == "__main__":
    main()
