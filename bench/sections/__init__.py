"""The benchmark's sections, in the order they run: each module has ``NAME`` and ``run(ctx) -> list[Table]``.

Adding a section = one module with those two members and one line in :data:`SECTIONS`.
"""

from __future__ import annotations

from bench.sections import degrade, denoise, old_photo, real_photos, scan_scale, speed

SECTIONS = {module.NAME: module.run for module in (degrade, denoise, old_photo, scan_scale, speed, real_photos)}
