"""Dust and spots: small bright or dark blobs, all drawn in one vectorised pass.

Each spot is an ellipse (mean radius, aspect, angle) whose boundary may be made irregular by
two random angular harmonics (lumpy dust, not perfect discs), with either a 1-px anti-aliased
edge or a soft ramp of a few pixels (out-of-focus dust on the negative).

Overlapping spots are blended order-independently: alpha = 1 - prod(1 - a_i), colour = the
alpha-weighted mean (see :class:`raster.DefectLayer`); overlaps are rare at realistic densities.
"""

from __future__ import annotations

import numpy as np

from restore_cli.degrade.config import DustConfig
from restore_cli.degrade.raster import DefectLayer

_HARMONIC_MAX = 0.2  # largest amplitude of each boundary harmonic (relative radius)


def draw_dust(layer: DefectLayer, cfg: DustConfig, rng: np.random.Generator) -> dict | None:
    """Draw ``count_range`` spots into ``layer``; return their parameters (None when dust is off)."""
    if not cfg.enabled:
        return None
    height, width = layer.shape
    n = int(rng.integers(cfg.count_range[0], cfg.count_range[1] + 1))
    x, y = rng.uniform(0, width - 1, n), rng.uniform(0, height - 1, n)
    radius = rng.uniform(*cfg.radius_range, n)
    aspect = rng.uniform(*cfg.aspect_range, n)
    angle = rng.uniform(0.0, np.pi, n)
    soft = np.where(rng.random(n) < cfg.soft_prob, rng.uniform(*cfg.softness_range, n), 1.0)
    lumpy = rng.random(n) < cfg.irregular_prob
    harmonics = rng.uniform(0.0, _HARMONIC_MAX, (n, 2)) * lumpy[:, None]
    phases = rng.uniform(0.0, 2 * np.pi, (n, 2))
    opacity = rng.uniform(*cfg.opacity_range, n)
    bright = rng.random(n) < cfg.bright_prob
    colour = np.where(bright, rng.uniform(*cfg.bright_range, n), rng.uniform(*cfg.dark_range, n))
    params = {
        "kind": "dust",
        "fields": ["x", "y", "radius", "aspect", "angle", "soft", "h2", "h3", "opacity", "colour"],
        "spots": np.round(
            np.stack([x, y, radius, aspect, angle, soft, *harmonics.T, opacity, colour], axis=1), 3
        ).tolist(),
    }
    if n == 0:
        return params

    semi_major, semi_minor = radius * np.sqrt(aspect), radius / np.sqrt(aspect)
    reach = np.ceil(semi_major * (1 + harmonics.sum(axis=1)) + soft / 2 + 0.5).astype(np.int64)
    # Ragged grids: spot i gets its own (2 r_i + 1)^2 window, all windows in one flat array.
    side = 2 * reach + 1
    counts = side * side
    spot = np.repeat(np.arange(n), counts)
    local = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    px = np.rint(x)[spot] + (local % side[spot] - reach[spot])
    py = np.rint(y)[spot] + (local // side[spot] - reach[spot])
    spot, px, py = (a.take(np.flatnonzero((px >= 0) & (px < width) & (py >= 0) & (py < height)))
                    for a in (spot, px, py))
    # Per-spot trigonometry once; per-pixel work is only products and one sqrt.
    cos, sin = np.cos(angle), np.sin(angle)
    dx, dy = px - x[spot], py - y[spot]
    p = (dx * cos[spot] + dy * sin[spot]) / semi_major[spot]
    q = (dy * cos[spot] - dx * sin[spot]) / semi_minor[spot]
    rho = np.sqrt(p * p + q * q)
    # Boundary radius 1 + h2 cos(2t + f2) + h3 cos(3t + f3), with t = atan2(q, p), expanded with
    # the double/triple-angle identities: no atan2 or cos per pixel.
    c, s = p / np.maximum(rho, 1e-9), q / np.maximum(rho, 1e-9)
    cos2, sin2 = c * c - s * s, 2 * c * s
    cos3, sin3 = c * (4 * c * c - 3), s * (3 - 4 * s * s)
    a2, b2 = harmonics[:, 0] * np.cos(phases[:, 0]), harmonics[:, 0] * np.sin(phases[:, 0])
    a3, b3 = harmonics[:, 1] * np.cos(phases[:, 1]), harmonics[:, 1] * np.sin(phases[:, 1])
    boundary = 1.0 + a2[spot] * cos2 - b2[spot] * sin2 + a3[spot] * cos3 - b3[spot] * sin3
    # Signed distance to the boundary, in pixels (approximately), ramped over ``soft`` pixels.
    cover = np.clip((boundary - rho) * (radius / soft)[spot] + 0.5, 0.0, 1.0) * opacity[spot]
    keep = np.flatnonzero(cover > 0)
    flat = py.take(keep).astype(np.int64) * width + px.take(keep).astype(np.int64)
    alpha, tone = cover.take(keep), colour[spot.take(keep)]

    layer.add(flat, alpha, tone)
    return params
