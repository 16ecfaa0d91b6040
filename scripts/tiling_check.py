"""How far the shipped models' tiled outputs are from one whole-image pass.

Why: ``restore restore`` runs both networks on fixed-shape tiles (bounded memory, no recompiles),
and the README says what that costs. The restoration network has no normalisation layers, so
tiles differ from a whole-image pass only where its receptive field reaches past the blended
overlap. The detector's GroupNorm normalises each tile with that tile's own statistics, so its
probabilities depend on the tile size by design (see restore_cli/restoration/mask_detector.py):
this prints by how much, and how many mask pixels it flips at the repair threshold.

    .venv/bin/python scripts/tiling_check.py [--sigma 25] [--checkpoints checkpoints]
    .venv/bin/python scripts/tiling_check.py --margin-data DEGRADE_DIR  # the edge-padding probe below

Each of scikit-image's 512x512 grey photographs (camera, and the luminance of astronaut and
coffee, cropped) with Gaussian noise of ``--sigma`` (seed 0), 256 px tiles against one 512 px
tile (the default runner picks 544 px tiles for a 512 px image: one tile, the whole image).

Result (2026-11-28, this 2-core CPU, shipped models, sigma 25): the restoration network's tiled
and whole outputs differ by at most 0.0078 (2/255) more than 16 px from the edge (mean 5e-5 to
2e-4), and by up to 0.088 in coffee's bottom row, which sees 112 reflected rows in one case and
80 in the other. The detector's probabilities differ by up to 0.96 (mean 3e-4 to 2e-3): of the
2,279 / 63 / 1,748 pixels it marks at its repair threshold with the 512 px tile, 501 / 7 / 434
flip with 256 px tiles. That is the GroupNorm operating-point shift mask_detector.py measured on
Set12 (more context, a better detector): the runner gives each image size one tile size, so
the same image always gets the same mask.

Edges: the runner pads an image at the bottom and right only (reflected), so its top and left
rows meet the network's zero padding. ``--margin-data`` (a ``restore degrade`` folder) compares
that with a reflected margin of 8 / 16 / 32 px on every side, cropped off afterwards. Result
(2026-11-28, make bench's Set12 data, degrade --seed 0 --gray): the network alone at sigma 25
scores 29.795 dB as it is and 29.789 / 29.791 / 29.791 with margins (the outer 16 px band 31.07
against 31.02-31.04; on ``scratches`` 30.788 against 30.789-30.790, the band 35.63 against
35.83-35.88); on the noise-only sigma 25 images the detector's false alarms rise from 4,125 to
5,034-5,307 pixels, those near the edge fourfold; the detector (one view, 256 px tiles, repair threshold, ``scratches``)
scores F1 0.701 as it is and 0.684 / 0.693 with 16 / 32 px, its false alarms within 16 px of the
edge tripling (491 to 1,500-1,559 pixels): reflected content makes mirror-symmetric lines (544 px
tiles: 0.662 / 0.654 / 0.660). Both learned on zero-padded crops; not changed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import skimage.data

from restore_cli.evaluate.metrics import luminance, psnr
from restore_cli.io import read_image
from restore_cli.restoration.mask_detector import MaskDetector
from restore_cli.restoration.vae_method import VAERestorer

#: Pixels this close to the image's edge see padding (the network's zeros at the top and left,
#: reflected pixels of a length that depends on the tile at the bottom and right): reported apart.
EDGE = 16


def photos() -> dict[str, np.ndarray]:
    """512x512 grey photographs in [0, 1]."""
    grey = lambda rgb: luminance(rgb / 255.0)[:, :, 0]  # noqa: E731  (BT.601, as restore uses)
    return {"camera": skimage.data.camera() / 255.0,
            "astronaut": grey(skimage.data.astronaut()),
            "coffee": grey(skimage.data.coffee()[:400, :512])}


def with_margin(fn, image: np.ndarray, margin: int) -> np.ndarray:
    """``fn`` of ``image`` reflect-padded by ``margin`` px on every side, cropped back."""
    if margin == 0:
        return fn(image)
    out = fn(np.pad(image, margin, mode="reflect"))
    return out[margin : margin + image.shape[0], margin : margin + image.shape[1]]


def margin_check(folder: Path, checkpoints: Path) -> None:
    """Network PSNR and detector F1 with and without a reflected margin on every side (see above)."""
    vae = VAERestorer.load(checkpoints / "vae.safetensors", tile=544, overlap=32)
    # One tile size for every image and margin (not the runner's pick by size): the tile size alone
    # moves the detector's operating point (GroupNorm, above), which would hide the margin's effect.
    det = MaskDetector.load(checkpoints / "mask_unet.safetensors", tile=256)
    for margin in (0, 8, 16, 32):
        scores, band_scores, counts = [], [], np.zeros(4, int)  # tp, fp, fn, fp near the edge
        for path in sorted((folder / "degraded").iterdir()):
            damaged, clean, truth = (read_image(p).pixels[:, :, 0]
                                     for p in (path, folder / "clean" / path.name, folder / "masks" / path.name))
            truth = truth > 0.5
            band = np.ones(damaged.shape, bool)
            band[EDGE:-EDGE, EDGE:-EDGE] = False
            restored = np.round(with_margin(vae.restore_luma, damaged, margin) * 255) / 255
            scores.append(psnr(restored, clean))
            band_scores.append(psnr(restored[band][None], clean[band][None]))  # the band's pixels as one row
            found = with_margin(det.probabilities, damaged, margin) >= det.repair_threshold
            counts += [(found & truth).sum(), (found & ~truth).sum(), (~found & truth).sum(), (found & ~truth & band).sum()]
        tp, fp, fn, edge_fp = counts
        print(f"margin {margin:2d}: network {np.mean(scores):.3f} dB (edge band {np.mean(band_scores):.2f}); "
              f"detector F1 {2 * tp / max(2 * tp + fp + fn, 1):.3f}, false alarms {fp} ({edge_fp} near the edge)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sigma", type=float, default=25.0)
    parser.add_argument("--checkpoints", type=Path, default=Path("checkpoints"))
    parser.add_argument("--margin-data", type=Path, help="a restore degrade folder: run the edge-padding probe")
    args = parser.parse_args()
    if args.margin_data:
        margin_check(args.margin_data, args.checkpoints)
        return
    vae = {tile: VAERestorer.load(args.checkpoints / "vae.safetensors", tile=tile, overlap=32) for tile in (256, 512)}
    det = {tile: MaskDetector.load(args.checkpoints / "mask_unet.safetensors", tile=tile, overlap=32)
           for tile in (256, 512)}
    threshold = det[512].repair_threshold
    inner = (slice(EDGE, -EDGE), slice(EDGE, -EDGE))
    print(f"{'image':<10} {'vae max':>8} {'inside':>8} {'vae mean':>9} {'det max':>8} {'det mean':>9} "
          f"{'mask px (512)':>13} {'flipped':>8}")
    for name, clean in photos().items():
        noisy = clean + np.random.default_rng(0).normal(0, args.sigma / 255, clean.shape)
        noisy = np.clip(noisy, 0, 1).astype(np.float32)
        vae_diff = np.abs(vae[256].restore_luma(noisy) - vae[512].restore_luma(noisy))
        p, q = det[256].probabilities(noisy), det[512].probabilities(noisy)
        flipped = int(((p >= threshold) != (q >= threshold)).sum())
        print(f"{name:<10} {vae_diff.max():8.4f} {vae_diff[inner].max():8.4f} {vae_diff.mean():9.2e} "
              f"{np.abs(p - q).max():8.3f} {np.abs(p - q).mean():9.2e} {int((q >= threshold).sum()):13d} {flipped:8d}")


if __name__ == "__main__":
    main()
