"""The records ``restore evaluate`` produces: one per image and method, plus means and a summary.

Kept apart from the pairing code so the table, the JSON writer and the viewer depend
only on this shape.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

from restore_cli.batch import BatchSummary
from restore_cli.evaluate import metrics

MASK_KEYS = ("iou", "f1", "precision", "recall")


@dataclasses.dataclass
class Method:
    """One result folder (or single result file); ``name`` is what tables, JSON and the viewer call it."""

    name: str
    location: Path


@dataclasses.dataclass
class ImageRecord:
    """The scores of one result image (or of one predicted mask with no result image)."""

    file: str
    stem: str
    method: str | None
    path: Path | None = None
    psnr: float | None = None  # math.inf when identical to the reference
    ssim: float | None = None
    luminance: bool = False  # compared on luma because channel counts differed
    mask: dict | None = None

    def to_json(self) -> dict:
        """A JSON-safe dict. Infinite PSNR (identical images) becomes ``null`` with ``identical: true``."""
        out: dict = {"file": self.file, "method": self.method}
        identical = self.psnr is not None and math.isinf(self.psnr)
        out["psnr"] = None if self.psnr is None or identical else round(self.psnr, 4)
        out["ssim"] = None if self.ssim is None else round(self.ssim, 6)
        if identical:
            out["identical"] = True
        if self.luminance:
            out["compared_on"] = "luminance"
        if self.mask is not None:
            out.update({k: round(v, 6) if isinstance(v, float) else v for k, v in self.mask.items()})
        return out


@dataclasses.dataclass
class EvaluationReport:
    """Everything ``restore evaluate`` found: records in method order, then mask-only records."""

    methods: list[Method]
    records: list[ImageRecord]
    summary: BatchSummary
    reference: Path | None = None
    masks: Path | None = None
    true_masks: Path | None = None
    recursive: bool = False  # keys are paths below the folders (``sub/x``), not stems

    def method_means(self, method: str | None) -> dict:
        """Means over one method's scored images. Identical images (PSNR inf) are counted, not averaged."""
        recs = [r for r in self.records if r.method == method]
        finite = [r.psnr for r in recs if r.psnr is not None and math.isfinite(r.psnr)]
        ssims = [r.ssim for r in recs if r.ssim is not None]
        out = {
            "images": len(recs),
            "psnr_mean": _mean(finite),
            "ssim_mean": _mean(ssims),
            "identical": sum(1 for r in recs if r.psnr is not None and math.isinf(r.psnr)),
        }
        masked = [r.mask for r in recs if r.mask is not None]
        for key in MASK_KEYS:
            out[f"{key}_mean"] = _mean([m[key] for m in masked]) if masked else None
        return out

    def mask_summary(self) -> dict | None:
        """Per-image means (macro) and pooled-over-all-pixels (micro) scores of every scored mask."""
        by_stem = {r.stem: r.mask for r in self.records if r.mask is not None}
        if not by_stem:
            return None
        masks = list(by_stem.values())
        pooled = metrics.scores_from_counts(*(sum(m[k] for m in masks) for k in ("tp", "fp", "fn")))
        out = {"images": len(masks)}
        out.update({f"{k}_mean": _mean([m[k] for m in masks]) for k in MASK_KEYS})
        out["pooled"] = pooled
        return out

    def summary_json(self) -> dict:
        names = [m.name for m in self.methods] + ([None] if any(r.method is None for r in self.records) else [])
        return {
            "summary": True,
            "methods": [{"method": n, **_rounded(self.method_means(n))} for n in names],
            "masks": _rounded(self.mask_summary()),
            "done": self.summary.done,
            "failed": self.summary.failed,
            "errors": list(self.summary.errors),
        }


def _mean(values: list[float]) -> float | None:
    return float(sum(values) / len(values)) if values else None


def _rounded(d: dict | None) -> dict | None:
    if d is None:
        return None
    return {k: _rounded(v) if isinstance(v, dict) else round(v, 6) if isinstance(v, float) else v for k, v in d.items()}
