"""Luminance / chroma split, so the models work on luminance and colour stays faithful.

Old photographs are damaged in their *structure* (scratches, dust, grain), which lives in
luminance; their colour is mostly a faded, low-frequency cast that a restoration must
not shift. So every method:

* detects defects on luminance only (the mask models are trained on gray images);
* inpaints *all* channels under the mask (inpainting only luminance would leave the
  scratch's colour behind as a ghost);
* denoises luminance, and smooths chroma only lightly and with a bounded change;
* recombines, so outside the mask a pixel's chroma moves by at most that small bound.

The transform is full-range BT.601 YCbCr (the JPEG one) with chroma centred on 0. Its
luma weights are the ones Pillow's ``convert("L")`` and :mod:`restore_cli.evaluate.metrics`
use, so a gray file and the luminance of its colour original agree. It is linear, so
inpainting in RGB and in YCbCr give the same result. Conversions run in row blocks and
in float32 to keep a 6000x4000 scan's temporaries small.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

# Rows are Y, Cb, Cr as combinations of R, G, B.
_RGB_TO_YCC = np.array(
    [[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]], np.float32
)
_YCC_TO_RGB = np.linalg.inv(_RGB_TO_YCC.astype(np.float64)).astype(np.float32)
_BLOCK_ROWS = 512


def _apply(matrix: np.ndarray, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """``dst = src @ matrix.T`` per pixel, a block of rows at a time (``dst`` may be ``src``)."""
    for top in range(0, src.shape[0], _BLOCK_ROWS):
        rows = slice(top, top + _BLOCK_ROWS)
        dst[rows] = src[rows] @ matrix.T
    return dst


def rgb_to_ycc(rgb: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """(H, W, 3) RGB in [0, 1] -> (H, W, 3) float32 Y in [0, 1], Cb/Cr in [-0.5, 0.5] (``out`` may be ``rgb``)."""
    out = np.empty(rgb.shape, np.float32) if out is None else out
    return _apply(_RGB_TO_YCC, rgb, out)


def ycc_to_rgb(ycc: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Inverse of :func:`rgb_to_ycc` (``out`` may be ``ycc`` itself), always inside [0, 1].

    Where a processed luma leaves the RGB cube for its chroma (a brightened, saturated
    pixel), luma is clamped to the range that chroma allows instead of clipping R, G, B
    separately, which would shift the hue. So chroma survives exactly.
    """
    out = np.empty(ycc.shape, np.float32) if out is None else out
    for top in range(0, ycc.shape[0], _BLOCK_ROWS):
        rows = slice(top, top + _BLOCK_ROWS)
        block = ycc[rows]
        offsets = block[:, :, 1:] @ _YCC_TO_RGB[:, 1:].T  # what chroma adds to Y in R, G, B
        low = np.maximum(-offsets.min(axis=2), 0.0)
        high = np.maximum(np.minimum(1.0 - offsets.max(axis=2), 1.0), low)
        luma = np.clip(block[:, :, 0], low, high)
        rgb = offsets
        rgb += luma[:, :, None]
        out[rows] = np.clip(rgb, 0.0, 1.0)
    return out


def luminance(pixels: np.ndarray) -> np.ndarray:
    """(H, W, 1|3) -> (H, W) float32 luma; a gray image's only channel is returned as is (a view)."""
    if pixels.shape[2] == 1:
        return pixels[:, :, 0]
    luma = np.empty(pixels.shape[:2], np.float32)
    for top in range(0, pixels.shape[0], _BLOCK_ROWS):
        rows = slice(top, top + _BLOCK_ROWS)
        np.matmul(pixels[rows], _RGB_TO_YCC[0], out=luma[rows])
    return luma


def smooth_chroma(chroma: np.ndarray, sigma: float = 1.0, max_change: float = 2.0 / 255) -> None:
    """Lightly smooth one chroma plane in place, never moving a value by more than ``max_change``.

    Film and scanner chroma noise is low-amplitude; real colour edges are large steps. Clamping
    the Gaussian's correction removes the former and leaves the latter where it was, which
    is what keeps colours outside the defect mask faithful (the test checks this bound).
    """
    smoothed = ndimage.gaussian_filter(chroma, sigma, mode="reflect")
    smoothed -= chroma
    np.clip(smoothed, -max_change, max_change, out=smoothed)
    chroma += smoothed
