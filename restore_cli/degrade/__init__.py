"""Synthetic training and benchmark data: clean photo -> degraded photo + exact defect mask.

Library API (stable; other commands build on it)::

    from restore_cli.degrade.config import DegradeConfig, PRESETS   # 'scratches', 'gaussian', 'old-photo', 'grain'
    from restore_cli.degrade.engine import degrade, Sample
    sample = degrade(clean, config, rng)  # clean: float32 (H, W, C) in [0, 1]; rng: np.random.Generator
    sample.degraded, sample.mask, sample.params

``restore degrade`` (see :mod:`restore_cli.degrade.dataset`) writes such samples to a folder.
Module map: config (what to draw), raster (drawing primitives), scratches / spots (local
defects, in the mask), global_effects (everything else), engine (one sample), samples (one
input image, worker side), dataset (folder in, folder out).
"""

from restore_cli.degrade.config import PRESETS, DegradeConfig, with_overrides
from restore_cli.degrade.engine import Sample, degrade

__all__ = ["PRESETS", "DegradeConfig", "Sample", "degrade", "with_overrides"]
