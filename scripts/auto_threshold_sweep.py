"""Sweep the repair threshold of ``--method auto`` on held-out Train400 images, per noise level.

Why: ``train-mask`` picks its repair threshold on crops a perfect denoiser would leave (see
restore_cli/train/mask.py); ``auto`` really inpaints the *network's* output under the mask the
detector finds *on that output*. This replays that pipeline (``restore_pixels`` of
restore_cli/restoration/vae_method.py, the network run once per scan) on the detector's 40 held-out
images (seed 0 split), each degraded by the detector's training mixture with and without
defects, and prints the pooled PSNR per threshold, binned by the scan's estimated noise (what
auto can know at run time), so the threshold is chosen on data that is not a benchmark.

    .venv/bin/python scripts/auto_threshold_sweep.py ../shared/datasets/train400 [--rule min] [--views 1]

``--rule min`` flags where both the detector on the output and the detector on the scan pass
(one more detector pass on noisy scans); ``--views N`` averages the detector over N flips and
rotations (``restore restore --mask-views``; default 4, as ``auto`` since 2026-11-27). Results are
quoted in restore_cli/train/mask.py; with 4 views (2026-11-27, restoration model of 03:30, 1.8 min)
the pooled PSNR peaks at 0.7 (25.84 / 25.88 / 25.85 / 25.84 / 25.81 dB at 0.5 / 0.7 / 0.8 / 0.9 /
0.95) against 25.82 for one view at 0.95 (25.83 at 0.9). Caveat: the restoration model's second stage trained with seed 1,
so it saw ~36 of these 40 images (never their held-out crops' exact degradations).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from restore_cli.restoration.classical import noise_sigma
from restore_cli.restoration.mask_detector import MaskDetector
from restore_cli.restoration.vae_method import (DEFAULT_DOMAIN_WEIGHTS, NETWORK_MASK_VIEWS, VAERestorer, noise_gate,
                                                 parse_domain_weights, restore_pixels)
from restore_cli.train import data
from restore_cli.train.mask import online_degrade_config, without_defects

THRESHOLDS = (0.5, 0.7, 0.8, 0.9, 0.95, 0.97, 0.98, 0.99, 0.995, 1.01)  # 1.01: nothing inpainted
NOISE_BINS = ((0, 2.5), (2.5, 7.5), (7.5, 15), (15, 25), (25, 40), (40, 999))  # 0..255 levels


class _OnceRestorer:
    """The network's output for one scan, computed once and handed out as copies (restore_pixels
    gates it in place), so every threshold replays :func:`restore_pixels` without rerunning it."""

    def __init__(self, vae: VAERestorer, luma: np.ndarray):
        self.output = vae.restore_luma(luma) if noise_gate(luma) else None  # gate 0: not run there either

    def restore_luma(self, luma: np.ndarray) -> np.ndarray:
        return np.array(self.output, np.float32)


def sweep(train400: Path, checkpoints: Path, rule: str, reps: int, views: int = NETWORK_MASK_VIEWS) -> list[dict]:
    """One record per sample: kind, estimated noise, pixel count and squared error per threshold."""
    mixture = online_degrade_config()
    source = data.OnlineSource.from_folder(train400, mixture)
    _, held_out = data.split_indices(len(source), 0.1, None, 0)  # the detector's validation images
    defects = source.subset(held_out)
    vae = VAERestorer.load(checkpoints / "vae.safetensors", tile=256)
    detector = MaskDetector.load(checkpoints / "mask_unet.safetensors", tile=256, views=views)
    weights = parse_domain_weights(DEFAULT_DOMAIN_WEIGHTS)
    records = []
    for kind, images in (("defects", defects), ("free", defects.with_config(without_defects(mixture)))):
        for i in range(len(images) * len(mixture) * reps):
            rng = np.random.default_rng(np.random.SeedSequence([1234, int(kind == "free"), i]))
            degraded, clean, _ = images.sample(rng, i % len(images), 180, augment=False)
            luma = degraded.astype(np.float32)
            once = _OnceRestorer(vae, luma)
            seen = once.output if once.output is not None else luma  # what restore_pixels hands the detector
            prob = detector.probabilities(seen)
            if rule == "min" and once.output is not None:
                prob = np.minimum(prob, detector.probabilities(luma))
            errors = []
            for t in THRESHOLDS:
                out, _ = restore_pixels(once, luma[:, :, None], None, weights, detect=lambda _net, t=t: prob >= t)
                errors.append(float(np.sum((out[:, :, 0] - clean) ** 2)))
            records.append({"kind": kind, "noise": noise_sigma(luma) * 255, "pixels": clean.size, "sse": errors})
    return records


def pooled_psnr(records: list[dict]) -> np.ndarray:
    return 10 * np.log10(sum(r["pixels"] for r in records) / np.sum([r["sse"] for r in records], axis=0))


def report(records: list[dict]) -> None:
    print("threshold        " + " ".join(f"{t:6}" for t in THRESHOLDS))
    print("all              " + " ".join(f"{v:6.2f}" for v in pooled_psnr(records)))
    for low, high in NOISE_BINS:
        in_bin = [r for r in records if low <= r["noise"] < high]
        for kind in ("defects", "free", "both"):
            rows = [r for r in in_bin if kind in ("both", r["kind"])]
            if rows:
                psnr = pooled_psnr(rows)
                print(f"{low:>4}-{high:<4} {kind:7} n={len(rows):3} " + " ".join(f"{v:6.2f}" for v in psnr)
                      + f"  best {THRESHOLDS[int(np.argmax(psnr))]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("train400", type=Path)
    parser.add_argument("--checkpoints", type=Path, default=Path("checkpoints"))
    parser.add_argument("--rule", choices=("output", "min"), default="output")
    parser.add_argument("--reps", type=int, default=1, help="samples per image and mixture member")
    parser.add_argument("--views", type=int, default=NETWORK_MASK_VIEWS,
                        help="detector flips/rotations averaged (--mask-views; default: auto's)")
    args = parser.parse_args()
    report(sweep(args.train400, args.checkpoints, args.rule, args.reps, args.views))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
