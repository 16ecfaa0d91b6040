"""Sparse rasterisation of local defects, and the layer they are composited into.

Why sparse: a 256x256 sample has a handful of strokes and a few dozen spots, each covering
a few hundred pixels. Working on (flat index, coverage) pairs instead of full frames, and
rasterising all strokes in one vectorised call, keeps a sample's local defects around a
millisecond; numpy's per-call overhead, not pixel arithmetic, is what dominates at this size.

Coordinates: pixel (row i, column j) has its centre at x = j, y = i.
"""

from __future__ import annotations

import numpy as np

_SQRT2 = float(np.sqrt(2.0))


def capsules(
    x0: np.ndarray, y0: np.ndarray, x1: np.ndarray, y1: np.ndarray, half: np.ndarray, shape: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Coverage of thick segments with round caps, all segments at once (vectorised).

    Coverage is ``clip(half + 0.5 - d, 0, 1)`` with ``d`` the exact distance from the pixel
    centre to the segment: opaque within ``half - 0.5``, a one-pixel linear ramp outside, so a
    segment of width ``2 * half`` integrates to exactly that width across its length.

    Returns flat indices (``y * W + x``), coverage in (0, 1] and the segment each entry belongs
    to; an index appears once per segment that touches it.
    """
    height, width = shape
    x0, y0, x1, y1 = (np.atleast_1d(np.asarray(a, dtype=np.float64)) for a in (x0, y0, x1, y1))
    reach = np.broadcast_to(np.asarray(half, dtype=np.float64), x0.shape) + 0.5
    # Walk along the major axis (u) one pixel column at a time; v is the minor axis.
    steep = np.abs(y1 - y0) > np.abs(x1 - x0)
    u0, u1 = np.where(steep, y0, x0), np.where(steep, y1, x1)
    v0, v1 = np.where(steep, x0, y0), np.where(steep, x1, y1)
    u_size, v_size = np.where(steep, height, width), np.where(steep, width, height)
    lo = np.maximum(np.floor(np.minimum(u0, u1) - reach), 0)
    hi = np.minimum(np.ceil(np.maximum(u0, u1) + reach), u_size - 1)
    counts = np.maximum(hi - lo + 1, 0).astype(np.int64)
    seg = np.repeat(np.arange(len(x0)), counts)
    u = lo[seg] + (np.arange(len(seg)) - np.repeat(np.cumsum(counts) - counts, counts))
    du, dv = u1 - u0, v1 - v0
    inv_len2 = 1.0 / np.maximum(du * du + dv * dv, 1e-12)
    along = u - u0[seg]  # per column, relative to the segment start
    t = np.clip(along / np.where(du == 0, 1.0, du)[seg], 0.0, 1.0)
    centre = np.rint(t * dv[seg] + v0[seg])
    # Band half-height: sqrt(2)*reach covers the slanted line and both caps, +0.5 for rounding.
    band = int(np.ceil(_SQRT2 * float(reach.max(initial=0.5)) + 0.5))
    v = centre[:, None] + np.arange(-band, band + 1)[None, :]  # integer pixel coordinates
    across = v - v0[seg][:, None]  # relative to the segment start
    # Exact distance to the segment (projection clamped to its ends).
    su, sv = (du * inv_len2)[seg][:, None], (dv * inv_len2)[seg][:, None]
    tt = np.clip(along[:, None] * su + across * sv, 0.0, 1.0)
    off_u, off_v = along[:, None] - tt * du[seg][:, None], across - tt * dv[seg][:, None]
    cover = reach[seg][:, None] - np.sqrt(off_u * off_u + off_v * off_v)  # (np.hypot is far slower)
    keep = (cover > 0) & (v >= 0) & (v < v_size[seg][:, None])
    index = np.flatnonzero(keep)
    rows = index // keep.shape[1]
    uu, vv = u.take(rows).astype(np.int64), v.ravel().take(index).astype(np.int64)
    segment = seg.take(rows)
    flat = np.where(steep.take(segment), uu * width + vv, vv * width + uu)
    return flat, np.minimum(cover.ravel().take(index), 1.0), segment


def _group(flat: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sort order, distinct indices and run starts of ``flat`` (for ``ufunc.reduceat`` merging).

    Sorting the few thousand indices of a defect is far cheaper than ``np.unique`` (slow in
    numpy 2) or than touching full-frame buffers (a page fault per 4 KiB on every fresh one).
    """
    order = np.argsort(flat, kind="stable")
    ordered = flat[order]
    starts = np.flatnonzero(np.concatenate([[True], ordered[1:] != ordered[:-1]]))
    return order, ordered[starts], starts


class DefectLayer:
    """Every local defect as (pixel, alpha, colour) entries, composited over the photo at once.

    Overlapping defects blend order-independently: alpha = 1 - prod(1 - a_i), colour = the
    alpha-weighted mean of their colours. Colours are neutral gray levels, so one value per
    pixel serves gray and RGB photos alike. Collecting first and merging once (one sort) costs
    a fraction of compositing each defect on its own.
    """

    def __init__(self, shape: tuple[int, int]):
        self.shape = shape
        self._entries: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def add(self, flat: np.ndarray, alpha: np.ndarray, colour: np.ndarray) -> None:
        """Defect entries: flat pixel indices, alpha in [0, 1] and colour, one per entry."""
        self._entries.append((flat, alpha, colour))

    def add_strokes(self, flat: np.ndarray, cover: np.ndarray, stroke: np.ndarray,
                    opacity: np.ndarray, colour: np.ndarray) -> None:
        """Strokes from :func:`capsules`: each merged over its own segments by maximum coverage
        (joints are not doubled), then scaled by its opacity. ``stroke`` numbers each entry's stroke."""
        if len(flat) == 0:
            return
        size = self.shape[0] * self.shape[1]
        order, keys, starts = _group(stroke * size + flat)
        ids = keys // size
        self.add(keys % size, np.maximum.reduceat(cover[order], starts) * opacity[ids], colour[ids])

    def over(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``image`` (H, W, C) with the defects composited over it, and the flat indices touched.

        Only touched pixels are computed: defects cover a few percent of a photo.
        """
        out = np.array(image, dtype=np.float32, copy=True)
        if not self._entries:
            return out, np.zeros(0, dtype=np.int64)
        flat, alpha, colour = (np.concatenate(parts) for parts in zip(*self._entries))
        order, touched, starts = _group(flat)
        alpha, colour = alpha[order], colour[order]
        total = 1.0 - np.multiply.reduceat(1.0 - alpha, starts)
        tone = np.add.reduceat(alpha * colour, starts) / np.maximum(np.add.reduceat(alpha, starts), 1e-12)
        pixels = out.reshape(-1, out.shape[2])
        pixels[touched] = pixels[touched] * (1.0 - total[:, None]) + (total * tone)[:, None]
        return out, touched
