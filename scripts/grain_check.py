"""Does the restoration network remove film grain, and does the noise gate let it?

Why: real prints carry grain, correlated noise 1-3 px across, while the shipped network was
trained on white Gaussian noise, and ``auto`` applies the network's correction only as far as the
noise gate (``vae_method.noise_gate``, a finest-scale Haar estimate) opens. This degrades Set12
with grain only (``restore degrade --preset gaussian --noise-prob 0 --grain-prob 1 --set
grain.strength_range=8,16 --set grain.size_range=...``, fine 0.5-1.3 px and coarse 2-3 px, seed
0), plus sigma 25 for comparison, and prints for each checkpoint the network alone (empty mask,
no gate) and, once, the noisy input, the half-resolution variant (the network on a 2x
downsampled copy, its correction upsampled) and the gate's noise estimate at scale 1 and 2.

    .venv/bin/python scripts/grain_check.py [--checkpoints checkpoints/vae.safetensors,CAND] [--data ../shared/datasets]

Result (2026-11-28, AMD EPYC 2 cores): input 28.22 / 28.23 dB (fine / coarse grain), shipped
network 28.23 / 28.13, half resolution 28.32 / 28.23; sigma 25: 29.80. A fine-tune on
``--degrade defects+grain`` (docs/experiments.md, step 500): 28.71 / 28.81, sigma 25 29.48. Noise
estimates: grain of std 8-16 levels reads 2.2-5.9 at scale 1 (gate 0-0.7), 4.8-20.8 at scale 2.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from skimage.transform import resize

from restore_cli.evaluate.metrics import psnr
from restore_cli.io import read_image
from restore_cli.restoration.classical import noise_sigma
from restore_cli.restoration.vae_method import VAERestorer

SETS = {
    "fine grain": ["--preset", "gaussian", "--noise-prob", "0", "--grain-prob", "1", "--set", "grain.strength_range=8,16",
                   "--set", "grain.size_range=0.5,1.3"],
    "coarse grain": ["--preset", "gaussian", "--noise-prob", "0", "--grain-prob", "1", "--set", "grain.strength_range=8,16",
                     "--set", "grain.size_range=2,3"],
    "sigma 25": ["--preset", "gaussian", "--sigma", "25"],
}


def _pairs(folder: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    return [(read_image(f).pixels[:, :, 0], read_image(folder / "clean" / f.name).pixels[:, :, 0])
            for f in sorted((folder / "degraded").iterdir())]


def _eight_bit(x: np.ndarray) -> np.ndarray:
    return np.round(np.clip(x, 0.0, 1.0) * 255) / 255


def _half_resolution(restorer: VAERestorer, x: np.ndarray) -> np.ndarray:
    small = resize(x, (x.shape[0] // 2, x.shape[1] // 2), order=1, anti_aliasing=True).astype(np.float32)
    return x + resize(restorer.restore_luma(small) - small, x.shape, order=3).astype(np.float32)


def _down2(x: np.ndarray) -> np.ndarray:
    h, w = x.shape[0] // 2 * 2, x.shape[1] // 2 * 2
    return x[:h, :w].reshape(h // 2, 2, w // 2, 2).mean(axis=(1, 3))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoints", default="checkpoints/vae.safetensors", help="comma-separated")
    parser.add_argument("--data", type=Path, default=Path("../shared/datasets"))
    args = parser.parse_args()
    restore = str(Path(sys.executable).with_name("restore"))
    with tempfile.TemporaryDirectory() as tmp:
        data = {}
        for name, options in SETS.items():
            out = Path(tmp) / name.replace(" ", "-")
            subprocess.run([restore, "degrade", str(args.data / "set12"), "-o", str(out), "--gray", "--seed", "0", *options],
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            data[name] = _pairs(out)
        for name, pairs in data.items():
            scale1 = [noise_sigma(x) * 255 for x, _ in pairs]
            scale2 = [2 * noise_sigma(_down2(x)) * 255 for x, _ in pairs]
            print(f"{name}: input {np.mean([psnr(x, c) for x, c in pairs]):.2f} dB; noise estimate scale 1 "
                  f"{min(scale1):.1f}-{max(scale1):.1f}, scale 2 {min(scale2):.1f}-{max(scale2):.1f} levels")
        for number, checkpoint in enumerate(args.checkpoints.split(",")):
            restorer = VAERestorer.load(checkpoint, large=True)
            for name, pairs in data.items():
                network = np.mean([psnr(_eight_bit(restorer.restore_luma(x)), c) for x, c in pairs])
                line = f"{checkpoint} {name}: network {network:.2f} dB"
                if number == 0 and name != "sigma 25":
                    half = np.mean([psnr(_eight_bit(_half_resolution(restorer, x)), c) for x, c in pairs])
                    line += f", half resolution {half:.2f}"
                print(line, flush=True)


if __name__ == "__main__":
    main()
