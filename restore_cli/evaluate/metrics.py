"""Image-quality and mask metrics as pure functions of numpy arrays (no I/O, no logging).

Conventions follow BasicSR's evaluation code, adapted to this project's float pixels:

* Images are float arrays in [0, 1], shaped (H, W) or (H, W, C). :mod:`restore_cli.io`
  maps both 8-bit and 16-bit files onto [0, 1], so ``data_range=1.0`` *is* the file's
  bit-depth range (255 for 8-bit, 65535 for 16-bit files): PSNR/SSIM come out the same
  as they would on the integer values with that range. No border is cropped and PSNR
  is computed on all channels (BasicSR's ``crop_border=0, test_y_channel=False``).
* Metrics are computed in float64 so that 16-bit differences are not rounded away.
"""

from __future__ import annotations

import math

import numpy as np
from skimage.metrics import structural_similarity

#: ITU-R BT.601 luma weights: the same ones Pillow's ``convert("L")`` uses, so a grey file
#: made from a colour one compares equal to the colour one's luminance.
LUMA_WEIGHTS = np.array([0.299, 0.587, 0.114])

#: skimage's default SSIM window; images smaller than this on a side cannot be scored.
SSIM_WIN_SIZE = 7


def _as_hwc(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    if a.ndim == 2:
        return a[:, :, None]
    if a.ndim != 3:
        raise ValueError(f"expected an (H, W) or (H, W, C) image, got shape {a.shape}")
    return a


def luminance(a: np.ndarray) -> np.ndarray:
    """(H, W, 3) RGB -> (H, W, 1) BT.601 luma; one-channel images are returned unchanged.

    A grey pixel (R = G = B) keeps its value exactly: the weighted sum rounds it, and a grey image
    saved as RGB scored 327 dB against its own grey original instead of counting as identical.
    """
    a = _as_hwc(a)
    if a.shape[2] == 1:
        return a
    if a.shape[2] != 3:
        raise ValueError(f"cannot take the luminance of a {a.shape[2]}-channel image")
    grey = (a[:, :, 0] == a[:, :, 1]) & (a[:, :, 1] == a[:, :, 2])
    return np.where(grey, a[:, :, 0], a @ LUMA_WEIGHTS)[:, :, None]


def _check_pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a, b = _as_hwc(a), _as_hwc(b)
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    return a, b


def psnr(a: np.ndarray, b: np.ndarray, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB: ``10 log10(data_range^2 / MSE)``.

    Range: (-inf, +inf); higher is better; 20-40 dB is typical for restoration.
    Identical images give ``math.inf`` (MSE = 0). Callers that serialise it must decide
    what inf means in their format: ``restore evaluate`` writes JSON ``null`` plus
    ``"identical": true`` and leaves it out of the mean (see :mod:`.records`).
    """
    a, b = _check_pair(a, b)
    mse = float(np.mean((a - b) ** 2))
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(data_range**2 / mse)


def ssim(a: np.ndarray, b: np.ndarray, data_range: float = 1.0) -> float:
    """Mean structural similarity, in [-1, 1] (1 = identical).

    skimage's ``structural_similarity`` with its default settings: a 7x7 uniform window
    (``gaussian_weights=False``), ``K1=0.01``, ``K2=0.03``, sample covariance; colour
    images are scored per channel (``channel_axis=-1``) and averaged. Note that BasicSR
    instead uses an 11x11 Gaussian window, so values differ slightly from its tables.
    Raises ValueError for images under 7 pixels on a side.
    """
    a, b = _check_pair(a, b)
    if min(a.shape[:2]) < SSIM_WIN_SIZE:
        raise ValueError(f"SSIM needs at least {SSIM_WIN_SIZE}x{SSIM_WIN_SIZE} pixels, got {a.shape[1]}x{a.shape[0]}")
    if a.shape[2] == 1:
        return float(structural_similarity(a[:, :, 0], b[:, :, 0], data_range=data_range))
    return float(structural_similarity(a, b, data_range=data_range, channel_axis=-1))


def scores_from_counts(tp: int, fp: int, fn: int) -> dict:
    """IoU, F1, precision and recall from pixel counts.

    Empty-mask conventions (a 0/0 ratio): when both masks are empty (tp = fp = fn = 0)
    every score is 1.0 (nothing to find, nothing wrongly found). Otherwise a 0/0 ratio
    is 0.0: predicting nothing on a damaged image gives precision 0, and predicting
    damage on a clean image gives recall 0 - neither earns credit. IoU and F1 are never
    0/0 outside the both-empty case.
    """
    tp, fp, fn = int(tp), int(fp), int(fn)
    if tp + fp + fn == 0:
        return {"iou": 1.0, "f1": 1.0, "precision": 1.0, "recall": 1.0, "tp": 0, "fp": 0, "fn": 0}
    return {
        "iou": tp / (tp + fp + fn),
        "f1": 2 * tp / (2 * tp + fp + fn),
        "precision": tp / (tp + fp) if tp + fp else 0.0,
        "recall": tp / (tp + fn) if tp + fn else 0.0,
        "tp": tp,
        "fp": fp,
        "fn": fn,
    }


def mask_counts(pred: np.ndarray, true: np.ndarray) -> tuple[int, int, int]:
    """(tp, fp, fn) pixel counts of two boolean masks of the same shape."""
    pred, true = np.asarray(pred, dtype=bool), np.asarray(true, dtype=bool)
    if pred.shape != true.shape:
        raise ValueError(f"mask shapes differ: {pred.shape} vs {true.shape}")
    tp = int(np.count_nonzero(pred & true))
    return tp, int(np.count_nonzero(pred)) - tp, int(np.count_nonzero(true)) - tp


def mask_scores(pred: np.ndarray, true: np.ndarray) -> dict:
    """Per-image defect-mask scores: ``iou, f1, precision, recall`` in [0, 1] and ``tp, fp, fn`` counts.

    ``pred`` and ``true`` are boolean arrays (True = defect) of the same shape. Pool the
    counts over many images with :func:`scores_from_counts` for micro-averaged scores.
    """
    return scores_from_counts(*mask_counts(pred, true))

