"""Classical denoisers the learned methods are measured against, with their settings fixed here.

Every baseline is told the true noise level (as BM3D's published numbers are), so the
comparison is against each baseline at its best, not against a blind guess.

Settings, chosen once and never on Set12 (the table's images):

* BM3D: ``bm3d.bm3d(noisy, sigma_psd=sigma/255)``, the package's defaults (profile "np").
* NL-means: scikit-image ``denoise_nl_means(patch_size=5, patch_distance=6, fast_mode=True,
  sigma=sigma/255, h=k*sigma/255)``. k was tuned once on 8 Train400 images (every 50th,
  same noise model): k = 0.6 at sigma 15 and 25, 0.5 at sigma 50 (0.8, scikit-image's
  example value, is 0.2-0.3 dB worse at every sigma).
* TV: ``denoise_tv_chambolle(weight=w)``, w tuned the same way on the same 8 images with a
  0.01 grid: 0.04 (sigma 15), 0.07 (25), 0.16 (50).
* Wavelet: ``denoise_wavelet(method="BayesShrink", mode="soft", sigma=sigma/255,
  rescale_sigma=True)`` (db1, scikit-image defaults otherwise).

Results are written as 8-bit PNGs through :mod:`restore_cli.io`, like every method's, and
scored by the same code. Timing is per image, in this process, excluding file I/O.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

NLM_K = {15: 0.6, 25: 0.6, 50: 0.5}
TV_WEIGHT = {15: 0.04, 25: 0.07, 50: 0.16}


def _nearest(table: dict[int, float], sigma: float) -> float:
    return table[min(table, key=lambda s: abs(s - sigma))]


def bm3d_denoise(noisy: np.ndarray, sigma: float) -> np.ndarray:
    import bm3d

    return np.asarray(bm3d.bm3d(noisy, sigma_psd=sigma / 255.0))


def nlm_denoise(noisy: np.ndarray, sigma: float) -> np.ndarray:
    from skimage.restoration import denoise_nl_means

    s = sigma / 255.0
    return denoise_nl_means(noisy, h=_nearest(NLM_K, sigma) * s, sigma=s, patch_size=5, patch_distance=6,
                            fast_mode=True)


def tv_denoise(noisy: np.ndarray, sigma: float) -> np.ndarray:
    from skimage.restoration import denoise_tv_chambolle

    return denoise_tv_chambolle(noisy, weight=_nearest(TV_WEIGHT, sigma))


def wavelet_denoise(noisy: np.ndarray, sigma: float) -> np.ndarray:
    from skimage.restoration import denoise_wavelet

    return denoise_wavelet(noisy, sigma=sigma / 255.0, method="BayesShrink", mode="soft", rescale_sigma=True)


#: name -> (function(gray float64 (H, W), sigma in 0..255) -> (H, W), settings shown in the table)
BASELINES: dict[str, tuple[Callable[[np.ndarray, float], np.ndarray], Callable[[float], str]]] = {
    "BM3D": (bm3d_denoise, lambda s: f"sigma_psd={s}/255"),
    "NL-means": (nlm_denoise, lambda s: f"patch 5, dist 6, h={_nearest(NLM_K, s)}σ"),
    "TV (Chambolle)": (tv_denoise, lambda s: f"weight {_nearest(TV_WEIGHT, s)}"),
    "wavelet (BayesShrink)": (wavelet_denoise, lambda s: "soft, σ given"),
}


def run_baseline(name: str, inputs: list[Path], out: Path, sigma: float) -> float:
    """Denoise every input into ``out`` (same file names); returns mean seconds per image."""
    from restore_cli.io import read_image, write_image

    fn = BASELINES[name][0]
    seconds = []
    for path in inputs:
        image = read_image(path)
        planes = []
        start = time.perf_counter()
        for c in range(image.channels):
            planes.append(fn(image.pixels[:, :, c].astype(np.float64), sigma))
        seconds.append(time.perf_counter() - start)
        write_image(out / path.name, image.with_pixels(np.stack(planes, axis=2).astype(np.float32)))
    return float(np.mean(seconds)) if seconds else 0.0
