"""The no-CNN pipeline: classical defect mask, inpainting, NL-means on luminance, mild stretch.

This is the baseline every learned method is compared against, and the method that works
with no checkpoint at all. Its defect detector looks for what scratches and dust are:
structures thinner than a few pixels that contrast with *both* sides.

* Black and white morphological top-hats measure how much a pixel sticks out of its
  surroundings; a Sato ridge filter measures how line- or blob-like it is. Each response
  is divided by twice the local average response (31 px window) plus a floor of 3 noise
  sigmas and a minimum contrast (half that floor for the ridge response): a scratch across a smooth sky stands out, fine texture (grass,
  hair) whose neighbours respond as strongly does not.
* The score is the *minimum* of the two: Sato alone fires on both sides of every step
  edge, the top-hat alone on any narrow stroke of the picture. Requiring both (instead of
  either) raised precision from ~0.4 to ~0.5 at similar recall and doubled the PSNR gain
  after inpainting (+0.9 -> +1.8 dB) in a sweep on three photos with synthetic scratches.
* Hysteresis thresholding (seeds at 1.2, grown down to 0.8) keeps a scratch whole where
  its contrast fades; specks of up to 2 px (2 x scale^2 on a larger image) are dropped; the mask is dilated by one pixel to
  cover anti-aliased edges.

Local filters run in 1024-pixel chunks with a halo wider than their support, so a
6000x4000 scan never holds float64 copies of the whole image (scikit-image's Hessian
filters work in float64); results equal the unchunked ones. Sizes scale with the image
(``scale``), so a 600 dpi scan of a print sees the same defects as a small one.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import ndimage
from skimage.feature import hessian_matrix, hessian_matrix_eigvals
from skimage.filters import apply_hysteresis_threshold
from skimage.morphology import remove_small_objects
from skimage.restoration import denoise_nl_means

from restore_cli.restoration.colour import luminance, rgb_to_ycc, smooth_chroma, ycc_to_rgb
from restore_cli.restoration.inpaint import inpaint

CHUNK = 1024
#: Hysteresis thresholds on the normalised response (in units of "local activity + 3 sigma").
#: Swept on camera/astronaut/coffee with synthetic scratches, with and without grain: 0.8/1.2
#: gave the best PSNR gain after inpainting (about +1.8 dB; the true mask gives about +8 dB).
LOW, HIGH = 0.8, 1.2
#: Top-hat square side: structures up to about half of it wide count as defects. Scratches and
#: dust on a print are 1-4 px at 1.5k px; wider dark/bright strokes (a tripod leg, an eyebrow) are
#: image content, which an 11 px square flagged on camera.png.
TOPHAT_SIZE = 7
#: Below this contrast (plus 3 noise sigmas) nothing is a defect: on a clean scan, fine detail
#: would otherwise be taken for dust (swept 0-0.06 on camera/astronaut/coffee with synthetic scratches).
MIN_CONTRAST = 0.04
#: NL-means strength relative to the noise level, and the stretch's blend towards full range.
NLM_H = 0.8
STRETCH_STRENGTH = 0.5
#: Noise estimates below this (5/255) are texture, not noise: no NL-means.
MIN_DENOISE_SIGMA = 5.0 / 255.0
#: Tonal span (0.5-99.5 percentiles) below which a print counts as faded and gets stretched.
FADED_SPAN = 0.6


def apply_chunked(fn: Callable[[np.ndarray], np.ndarray], array: np.ndarray, halo: int, chunk: int = CHUNK) -> np.ndarray:
    """``fn`` over an (H, W) array in chunks with ``halo`` pixels of context; returns (H, W) float32.

    For a local filter whose support is within ``halo`` the result is the same as ``fn(array)``.
    """
    height, width = array.shape[:2]
    out = np.empty((height, width), np.float32)
    for y in range(0, height, chunk):
        for x in range(0, width, chunk):
            top, left = max(y - halo, 0), max(x - halo, 0)
            bottom, right = min(y + chunk + halo, height), min(x + chunk + halo, width)
            result = fn(np.ascontiguousarray(array[top:bottom, left:right], dtype=np.float32))
            out[y : y + chunk, x : x + chunk] = result[y - top : y - top + chunk, x - left : x - left + chunk]
    return out


def scale_for(shape: tuple[int, ...]) -> float:
    """1 up to ~1.5k pixels on the short side, growing linearly beyond (defects scale with dpi)."""
    return max(1.0, min(shape[0], shape[1]) / 1536)


def _haar_mad_sigma(plane: np.ndarray) -> float:
    """Donoho's estimate: median |finest diagonal Haar coefficient| / 0.6745 (robust to edges)."""
    h, w = plane.shape[0] // 2 * 2, plane.shape[1] // 2 * 2
    p = np.asarray(plane[:h, :w], np.float32)
    diagonal = (p[0::2, 0::2] - p[0::2, 1::2] - p[1::2, 0::2] + p[1::2, 1::2]) / 2
    return float(np.median(np.abs(diagonal)) / 0.6745) if diagonal.size else 0.0


def noise_sigma(luma: np.ndarray) -> float:
    """Noise standard deviation, from up to four 512 px crops at fixed places.

    Fixed crops keep the estimate cheap on a scan and deterministic; the median of the crops
    ignores one that happens to fall on a heavily textured area. (Haar rather than
    :func:`skimage.restoration.estimate_sigma`, which needs PyWavelets, not a dependency.)
    """
    height, width = luma.shape
    size = 512
    if height <= 2 * size or width <= 2 * size:
        crops = [luma]
    else:
        ys, xs = (height // 4, 3 * height // 4), (width // 4, 3 * width // 4)
        crops = [luma[y - size // 2 : y + size // 2, x - size // 2 : x + size // 2] for y in ys for x in xs]
    return float(np.median([_haar_mad_sigma(c) for c in crops]))


def _odd(value: float) -> int:
    return int(value) // 2 * 2 + 1


def ridge_strength(image: np.ndarray, sigmas: tuple[float, ...]) -> np.ndarray:
    """Sato's tubeness for dark *and* bright ridges from one Hessian per scale.

    Sato's measure for dark ridges is ``sigma^2 * max(lambda_1, 0)`` (largest Hessian
    eigenvalue); for bright ridges it is the same on the negated image, ``sigma^2 *
    max(-lambda_2, 0)``. Taking both from one eigen-decomposition halves the cost of calling
    :func:`skimage.filters.sato` twice, which was a third of the classical pipeline's time.
    """
    out = np.zeros(image.shape, np.float32)
    for sigma in sigmas:
        high, low = hessian_matrix_eigvals(hessian_matrix(image, sigma, mode="reflect", use_gaussian_derivatives=True))
        np.maximum(out, sigma * sigma * np.maximum(high, -low), out=out)
    return out


def defect_score(luma: np.ndarray, sigma: float, scale: float = 1.0) -> np.ndarray:
    """Per-pixel "how much does this look like a scratch or dust" in units of the local threshold."""
    size = _odd(TOPHAT_SIZE * scale)
    window = _odd(31 * scale)
    sigmas = (1.0 * scale, 2.0 * scale)
    floor = 3.0 * sigma + MIN_CONTRAST

    def score(crop: np.ndarray) -> np.ndarray:
        tophat = np.maximum(
            crop - ndimage.grey_opening(crop, size=(size, size)),
            ndimage.grey_closing(crop, size=(size, size)) - crop,
        )
        tophat /= 2.0 * ndimage.uniform_filter(tophat, window) + floor
        ridge = ridge_strength(crop, sigmas)
        ridge /= 2.0 * ndimage.uniform_filter(ridge, window) + 0.5 * floor
        return np.minimum(tophat, ridge)

    halo = window // 2 + size + int(4 * sigmas[-1]) + 2
    return apply_chunked(score, luma, halo)


def defect_mask(luma: np.ndarray, sigma: float | None = None) -> np.ndarray:
    """Boolean (H, W) mask of likely scratches, cracks and dust on a luminance image."""
    sigma = noise_sigma(luma) if sigma is None else sigma
    scale = scale_for(luma.shape)
    score = defect_score(luma, sigma, scale)
    mask = apply_hysteresis_threshold(score, LOW, HIGH)
    del score
    mask = remove_small_objects(mask, max_size=max(1, int(2 * scale * scale)))
    radius = max(1, round(scale))
    return ndimage.binary_dilation(mask, structure=ndimage.generate_binary_structure(2, 1), iterations=radius)


def denoise_luma(luma: np.ndarray, sigma: float) -> np.ndarray:
    """NL-means (fast mode) on one (H, W) plane; a no-op copy when there is no measurable noise.

    Below ``MIN_DENOISE_SIGMA`` the estimate mostly measures fine texture (clean Set12 images
    read 1.5-4.5/255), and NL-means then erases detail: it cost ~7 dB on scratch-only images.
    """
    if sigma < MIN_DENOISE_SIGMA:
        return np.array(luma, np.float32)

    def nlm(crop: np.ndarray) -> np.ndarray:
        return denoise_nl_means(crop, h=NLM_H * sigma, sigma=sigma, patch_size=5, patch_distance=4, fast_mode=True)

    return apply_chunked(nlm, luma, halo=16)


def stretch_range(luma: np.ndarray, strength: float = STRETCH_STRENGTH) -> None:
    """Mildly expand a faded print's tonal range, in place: blend towards a 0.5-99.5 percentile stretch.

    Percentiles come from every 4th pixel (plenty for a histogram, 16x cheaper). Only a
    print that has visibly lost range (its 0.5-99.5 percentiles span less than
    ``FADED_SPAN``) is stretched: stretching a photo that already uses most of the range
    changes every pixel for no visible gain (it cost ~4 dB on Set12's `scratches` preset).
    A flat image is left alone too.
    """
    lo, hi = np.percentile(luma[::4, ::4], [0.5, 99.5])
    if hi - lo < 0.05 or hi - lo > FADED_SPAN:
        return
    gain = 1.0 + strength * (1.0 / (hi - lo) - 1.0)
    centre = (lo + hi) / 2.0
    for top in range(0, luma.shape[0], 512):
        rows = luma[top : top + 512]
        rows -= centre
        rows *= gain
        rows += centre - strength * (centre - 0.5)
        np.clip(rows, 0.0, 1.0, out=rows)


def restore_classical(pixels: np.ndarray, mask: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(H, W, 1|3) float32 -> (restored pixels, defect mask). ``mask`` replaces the detected one.

    Inpainting runs on all channels (no coloured ghost of a scratch); NL-means on luminance
    only; chroma gets a bounded light smoothing, so colours outside the mask stay put.
    """
    luma = luminance(pixels)
    sigma = noise_sigma(luma)
    if mask is None:
        mask = defect_mask(luma, sigma)
    del luma
    out = inpaint(pixels, mask)
    if out.shape[2] == 3:
        rgb_to_ycc(out, out=out)
    out[:, :, 0] = denoise_luma(out[:, :, 0], sigma)
    if out.shape[2] == 3:
        for channel in (1, 2):
            plane = np.ascontiguousarray(out[:, :, channel])
            smooth_chroma(plane)
            out[:, :, channel] = plane
    luma_plane = np.ascontiguousarray(out[:, :, 0])
    stretch_range(luma_plane)
    out[:, :, 0] = luma_plane
    if out.shape[2] == 3:
        ycc_to_rgb(out, out=out)
    np.clip(out, 0.0, 1.0, out=out)
    return out, mask
