"""Scratch and crack generators: each builds a set of segments, drawn as one stroke.

Kinds (the original project's three, plus the creases real prints show):

- ``linear``: one straight segment, often near-horizontal/vertical (film transport), else any angle;
- ``broken``: a straight line cut into pieces with gaps, each piece shifted sideways and tilted a
  little, so the scratch is visibly discontinuous;
- ``curved``: a chain of sub-segments, each starting where the previous ended, turning a little
  each time, so the scratch wanders but stays continuous;
- ``cracks``: a branching random walk with thin, jagged steps, like the emulsion cracks along a fold.

A stroke is rasterised with :func:`raster.capsules` (exact width, anti-aliased edges), its
segments merged by maximum coverage so joints do not darken, and given one opacity and one
neutral colour (bright: scraped to the paper; dark: dirt or film-base scratch).
"""

from __future__ import annotations

import numpy as np

from restore_cli.degrade.config import ScratchConfig
from restore_cli.degrade.raster import DefectLayer, capsules

_MAX_CRACK_SEGMENTS = 400  # bounds the work of one crack network whatever the config says
_CRACK_MAX_DEPTH = 3
_BRANCH_THINNING = 0.75  # each branch generation is this much thinner
_MAX_BRANCHES = 8  # per generation
Shape = tuple[int, int]
Segments = tuple[np.ndarray, np.ndarray]  # (S, 4) rows x0 y0 x1 y1, and (S,) half widths


def _line(cfg: ScratchConfig, rng: np.random.Generator, shape: Shape) -> tuple[np.ndarray, np.ndarray]:
    """Centre and unit direction of a straight scratch; its length is drawn by the caller."""
    height, width = shape
    centre = np.array([rng.uniform(0, width - 1), rng.uniform(0, height - 1)])
    if rng.random() < cfg.axis_prob:
        angle = np.radians(90.0 * int(rng.integers(2)) + rng.uniform(-3.0, 3.0))
    else:
        angle = rng.uniform(0.0, np.pi)
    return centre, np.array([np.cos(angle), np.sin(angle)])


def _length(cfg: ScratchConfig, rng: np.random.Generator, shape: Shape) -> float:
    return float(rng.uniform(*cfg.length_range) * np.hypot(*shape))


def linear(cfg: ScratchConfig, rng: np.random.Generator, shape: Shape, width: float) -> Segments:
    """One segment centred on a random pixel. Returns (segments (S, 4) as x0 y0 x1 y1, half widths)."""
    centre, direction = _line(cfg, rng, shape)
    half_length = _length(cfg, rng, shape) / 2
    seg = np.concatenate([centre - half_length * direction, centre + half_length * direction])
    return seg[None, :], np.full(1, width / 2)


def broken(cfg: ScratchConfig, rng: np.random.Generator, shape: Shape, width: float) -> Segments:
    """Pieces of one line, separated along it by ``gap + width + 1`` so at least ``gap`` px stay clean.

    Pieces only move sideways (which keeps their extent along the line) and turn about their own
    centre (which shortens it), so the gaps can only grow and the pieces stay separate components.
    """
    centre, direction = _line(cfg, rng, shape)
    length = _length(cfg, rng, shape)
    pieces = int(rng.integers(cfg.segments_range[0], cfg.segments_range[1] + 1))
    gaps = rng.uniform(*cfg.broken_gap_range, pieces - 1) + width + 1.0
    piece = max((length - gaps.sum()) / pieces, 2.0)
    starts = np.arange(pieces) * piece + np.concatenate([[0.0], np.cumsum(gaps)])
    along = starts + piece / 2 - (starts[-1] + piece) / 2
    side = rng.uniform(*cfg.broken_offset_range, pieces) * np.where(rng.random(pieces) < 0.5, -1.0, 1.0)
    turn = np.radians(rng.uniform(-cfg.broken_rotate_deg, cfg.broken_rotate_deg, pieces))
    normal = np.array([-direction[1], direction[0]])
    mids = centre + along[:, None] * direction + side[:, None] * normal
    angle = np.arctan2(direction[1], direction[0]) + turn
    dirs = np.stack([np.cos(angle), np.sin(angle)], axis=1) * (piece / 2)
    return np.concatenate([mids - dirs, mids + dirs], axis=1), np.full(pieces, width / 2)


def curved(cfg: ScratchConfig, rng: np.random.Generator, shape: Shape, width: float) -> Segments:
    """A chain of sub-segments sharing end points, turning by up to ``curve_bend_deg`` at each joint."""
    height, image_width = shape
    start = np.array([rng.uniform(0, image_width - 1), rng.uniform(0, height - 1)])
    steps = int(rng.integers(cfg.segments_range[0], cfg.segments_range[1] + 1))
    step = _length(cfg, rng, shape) / steps
    heading = rng.uniform(0.0, 2 * np.pi) + np.cumsum(
        np.radians(rng.uniform(-cfg.curve_bend_deg, cfg.curve_bend_deg, steps))
    )
    points = start + np.concatenate(
        [np.zeros((1, 2)), np.cumsum(step * np.stack([np.cos(heading), np.sin(heading)], axis=1), axis=0)]
    )
    return np.concatenate([points[:-1], points[1:]], axis=1), np.full(steps, width / 2)


def _walks(cfg: ScratchConfig, rng: np.random.Generator, starts: np.ndarray, headings: np.ndarray,
           steps: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Several random walks at once (padded to the longest). Returns segments, points, headings, valid."""
    jitter = np.radians(cfg.crack_jitter_deg)
    shape = (len(steps), int(steps.max()))
    drift = headings[:, None] + np.cumsum(rng.uniform(-jitter / 4, jitter / 4, shape), axis=1)
    angles = drift + rng.uniform(-jitter, jitter, shape)
    lengths = rng.uniform(*cfg.crack_step_range, shape)
    moves = np.stack([np.cos(angles), np.sin(angles)], axis=2) * lengths[:, :, None]
    points = starts[:, None, :] + np.cumsum(moves, axis=1)
    previous = np.concatenate([starts[:, None, :], points[:, :-1]], axis=1)
    valid = np.arange(shape[1])[None, :] < steps[:, None]
    return np.concatenate([previous, points], axis=2)[valid], points, drift, valid


def cracks(cfg: ScratchConfig, rng: np.random.Generator, shape: Shape, width: float) -> Segments:
    """A branching walk: a slowly drifting heading with jagged steps around it; branches fork off at
    random steps (``crack_branch_prob`` per step) at 20-70 degrees, each generation thinner and shorter.

    All walks of one generation are drawn together, so the cost does not grow with the branch count.
    """
    height, image_width = shape
    starts = np.array([[rng.uniform(0, image_width - 1), rng.uniform(0, height - 1)]])
    headings = np.array([rng.uniform(0.0, 2 * np.pi)])
    steps = np.array([int(rng.integers(cfg.crack_steps_range[0], cfg.crack_steps_range[1] + 1))])
    segments, halves, total = [], [], 0
    for depth in range(_CRACK_MAX_DEPTH + 1):
        steps = np.minimum(steps, max(_MAX_CRACK_SEGMENTS - total, 0))
        if len(steps) == 0 or steps.sum() == 0:
            break
        segs, points, drift, valid = _walks(cfg, rng, starts, headings, steps)
        segments.append(segs)
        halves.append(np.full(len(segs), width / 2 * _BRANCH_THINNING**depth))
        total += len(segs)
        walk, step = np.nonzero(valid & (rng.random(valid.shape) < cfg.crack_branch_prob))
        walk, step = walk[:_MAX_BRANCHES], step[:_MAX_BRANCHES]
        turn = np.radians(rng.uniform(20.0, 70.0, len(walk))) * np.where(rng.random(len(walk)) < 0.5, -1.0, 1.0)
        starts, headings = points[walk, step], drift[walk, step] + turn
        steps = ((steps[walk] - step) * rng.uniform(0.3, 0.7, len(walk))).astype(np.int64) + 1
    return np.concatenate(segments), np.concatenate(halves)


GENERATORS = {"linear": linear, "broken": broken, "curved": curved, "cracks": cracks}


def draw_scratches(layer: DefectLayer, cfg: ScratchConfig, rng: np.random.Generator) -> list[dict]:
    """Draw ``count_range`` strokes of the configured kinds into ``layer``; return their parameters.

    Geometry is drawn stroke by stroke; rasterising is one :func:`capsules` call for all of them.
    """
    if not cfg.kinds:
        return []
    drawn, segments, halves, strokes, opacity, colour = [], [], [], [], [], []
    for stroke in range(int(rng.integers(cfg.count_range[0], cfg.count_range[1] + 1))):
        kind = cfg.kinds[int(rng.integers(len(cfg.kinds)))]
        width = float(rng.uniform(*(cfg.crack_width_range if kind == "cracks" else cfg.width_range)))
        segs, half = GENERATORS[kind](cfg, rng, layer.shape, width)
        opacity.append(float(rng.uniform(*cfg.opacity_range)))
        bright = bool(rng.random() < cfg.bright_prob)
        colour.append(float(rng.uniform(*(cfg.bright_range if bright else cfg.dark_range))))
        segments.append(segs)
        halves.append(half)
        strokes.append(np.full(len(segs), stroke))
        drawn.append({
            "kind": kind, "width": round(width, 3), "opacity": round(opacity[-1], 3), "bright": bright,
            "colour": round(colour[-1], 3), "segments": np.round(segs, 2).tolist(),
        })
    if drawn:
        flat, cover, segment = capsules(*np.concatenate(segments).T, np.concatenate(halves), layer.shape)
        layer.add_strokes(flat, cover, np.concatenate(strokes)[segment], np.array(opacity), np.array(colour))
    return drawn
