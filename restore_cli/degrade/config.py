"""What `restore degrade` draws: frozen dataclass configs, the presets, and validated overrides.

Every random quantity is a ``(low, high)`` range sampled uniformly per sample (counts and JPEG
quality as integers, inclusive), and every global effect has a ``prob`` of being applied, so a
config describes a *distribution* of damage. Geometry is in pixels, intensities in [0, 1],
noise strengths in 0..255 units (the way people quote them: "sigma 25").

Overrides go through :func:`with_overrides` only (in :mod:`.overrides`, re-exported here),
keyed by dotted field names (``"scratches.width_range"``), so the CLI, tests and scripts share
one validation path.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import ClassVar

Range = tuple[float, float]
IntRange = tuple[int, int]

#: Scratch kinds, in the order the engine knows them.
SCRATCH_KINDS = ("linear", "broken", "curved", "cracks")


@dataclasses.dataclass(frozen=True)
class ScratchConfig:
    """Scratches and cracks: the thin local defects a detector has to find.

    ``width_range`` is the full width of the opaque core in pixels; anti-aliasing adds at most
    half a pixel of partial coverage on each side. ``length_range`` is a fraction of the image
    diagonal. Broken scratches keep ``broken_gap_range`` clean pixels between pieces (>= 1.5
    guarantees the pieces are separate 8-connected components).
    """

    kinds: tuple[str, ...] = SCRATCH_KINDS
    count_range: IntRange = (1, 5)
    length_range: Range = (0.15, 0.8)
    width_range: Range = (1.0, 4.0)
    opacity_range: Range = (0.5, 1.0)
    bright_prob: float = 0.6  # prints: scraped emulsion shows white paper; film: dark
    bright_range: Range = (0.8, 1.0)
    dark_range: Range = (0.0, 0.25)
    axis_prob: float = 0.5  # linear/broken: near-horizontal or near-vertical (film transport)
    segments_range: IntRange = (3, 8)  # pieces of a broken scratch, sub-segments of a curved one
    broken_gap_range: Range = (2.0, 8.0)
    broken_offset_range: Range = (1.0, 4.0)  # sideways shift of each broken piece
    broken_rotate_deg: float = 6.0
    curve_bend_deg: float = 25.0  # largest turn between consecutive curved sub-segments
    crack_width_range: Range = (0.5, 1.5)
    crack_steps_range: IntRange = (15, 50)
    crack_step_range: Range = (2.0, 6.0)
    crack_jitter_deg: float = 30.0
    crack_branch_prob: float = 0.12

    _limits: ClassVar[dict] = {
        "count_range": (0, 1000), "length_range": (0.0, 2.0), "width_range": (0.1, 64.0),
        "opacity_range": (0.0, 1.0), "bright_range": (0.0, 1.0), "dark_range": (0.0, 1.0),
        "segments_range": (1, 100), "broken_gap_range": (0.0, 256.0),
        "broken_offset_range": (0.0, 256.0), "broken_rotate_deg": (0.0, 90.0),
        "curve_bend_deg": (0.0, 180.0), "crack_width_range": (0.1, 16.0),
        "crack_steps_range": (1, 2000), "crack_step_range": (0.5, 64.0), "crack_jitter_deg": (0.0, 180.0),
    }


@dataclasses.dataclass(frozen=True)
class DustConfig:
    """Dust and spots: small blobs (ellipses, some irregular, some soft-edged), bright or dark.

    ``radius_range`` is the mean radius in pixels; ``aspect_range`` stretches it into an ellipse;
    ``softness_range`` is the edge ramp width of the soft ones (others get a 1-px anti-aliased edge).
    """

    enabled: bool = True
    count_range: IntRange = (0, 30)
    radius_range: Range = (0.5, 3.5)
    aspect_range: Range = (1.0, 2.5)
    opacity_range: Range = (0.4, 1.0)
    bright_prob: float = 0.5
    bright_range: Range = (0.8, 1.0)
    dark_range: Range = (0.0, 0.25)
    soft_prob: float = 0.4
    softness_range: Range = (1.5, 3.0)
    irregular_prob: float = 0.5

    _limits: ClassVar[dict] = {
        "count_range": (0, 100_000), "radius_range": (0.1, 64.0), "aspect_range": (1.0, 10.0),
        "opacity_range": (0.0, 1.0), "bright_range": (0.0, 1.0), "dark_range": (0.0, 1.0),
        "softness_range": (1.0, 32.0),
    }


@dataclasses.dataclass(frozen=True)
class FadeConfig:
    """Faded print: lifted blacks, dimmed whites, a gamma shift (out = black + (white-black) * in**gamma)."""

    prob: float = 0.0
    black_range: Range = (0.0, 0.15)
    white_range: Range = (0.8, 1.0)
    gamma_range: Range = (0.8, 1.25)
    _limits: ClassVar[dict] = {"black_range": (0.0, 0.5), "white_range": (0.5, 1.0), "gamma_range": (0.1, 10.0)}


@dataclasses.dataclass(frozen=True)
class SepiaConfig:
    """Sepia toning (RGB only; gray images are left alone): mix of the photo and a warm-tinted luminance."""

    prob: float = 0.0
    strength_range: Range = (0.3, 1.0)
    warmth_range: Range = (0.5, 1.0)
    _limits: ClassVar[dict] = {"strength_range": (0.0, 1.0), "warmth_range": (0.0, 1.0)}


@dataclasses.dataclass(frozen=True)
class BlurConfig:
    """Out-of-focus lens or scanner: Gaussian blur, sigma in pixels."""

    prob: float = 0.0
    sigma_range: Range = (0.4, 1.5)
    _limits: ClassVar[dict] = {"sigma_range": (0.0, 32.0)}


@dataclasses.dataclass(frozen=True)
class ResampleConfig:
    """Low-resolution copy: downscale by ``factor`` and back up, with random filters."""

    prob: float = 0.0
    factor_range: Range = (1.5, 3.5)
    _limits: ClassVar[dict] = {"factor_range": (1.0, 16.0)}


@dataclasses.dataclass(frozen=True)
class GrainConfig:
    """Film grain / speckle: spatially correlated luminance noise, strongest in the mid-tones."""

    prob: float = 0.0
    strength_range: Range = (3.0, 18.0)  # std in 0..255 units
    size_range: Range = (0.5, 1.3)  # correlation length (blur sigma) in pixels
    _limits: ClassVar[dict] = {"strength_range": (0.0, 255.0), "size_range": (0.0, 8.0)}


@dataclasses.dataclass(frozen=True)
class NoiseConfig:
    """Additive white Gaussian noise, independent per channel, sigma in 0..255 units."""

    prob: float = 0.0
    sigma_range: Range = (2.0, 20.0)
    _limits: ClassVar[dict] = {"sigma_range": (0.0, 255.0)}


@dataclasses.dataclass(frozen=True)
class SaltPepperConfig:
    """Isolated black and white pixels; ``amount_range`` is the fraction of pixels hit."""

    prob: float = 0.0
    amount_range: Range = (0.0005, 0.005)
    _limits: ClassVar[dict] = {"amount_range": (0.0, 1.0)}


@dataclasses.dataclass(frozen=True)
class JpegConfig:
    """JPEG re-compression at a random quality (Pillow, in memory)."""

    prob: float = 0.0
    quality_range: IntRange = (30, 90)
    _limits: ClassVar[dict] = {"quality_range": (1, 100)}


#: Global effects in the order the engine applies them (after the local defects).
GLOBAL_EFFECTS = ("fade", "sepia", "blur", "resample", "grain", "noise", "salt_pepper", "jpeg")


@dataclasses.dataclass(frozen=True)
class DegradeConfig:
    """Local defects (scratches, dust: marked in the mask) then global effects (never in the mask)."""

    scratches: ScratchConfig = ScratchConfig()
    dust: DustConfig = DustConfig()
    fade: FadeConfig = FadeConfig()
    sepia: SepiaConfig = SepiaConfig()
    blur: BlurConfig = BlurConfig()
    resample: ResampleConfig = ResampleConfig()
    grain: GrainConfig = GrainConfig()
    noise: NoiseConfig = NoiseConfig()
    salt_pepper: SaltPepperConfig = SaltPepperConfig()
    jpeg: JpegConfig = JpegConfig()

    def with_overrides(self, overrides: Mapping[str, object]) -> DegradeConfig:
        """A validated copy with dotted-key overrides (see :mod:`restore_cli.degrade.overrides`)."""
        return with_overrides(self, overrides)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


PRESETS: dict[str, DegradeConfig] = {
    # Detector training: scratches, cracks and dust only, so the mask explains every change.
    "scratches": DegradeConfig(),
    # Denoiser training/benchmarks: nothing but AWGN (the classic sigma 5..50 blind range).
    "gaussian": DegradeConfig(
        scratches=ScratchConfig(kinds=()),
        dust=DustConfig(enabled=False),
        noise=NoiseConfig(prob=1.0, sigma_range=(5.0, 50.0)),
    ),
    # Film grain only, fine to coarse (a print scanned at 300 to 1200 dpi): grain is correlated noise,
    # which a denoiser trained on white noise leaves in place (docs/experiments.md).
    "grain": DegradeConfig(
        scratches=ScratchConfig(kinds=()),
        dust=DustConfig(enabled=False),
        grain=GrainConfig(prob=1.0, size_range=(0.5, 3.0)),
    ),
    # End-to-end restoration: local defects plus the global ageing of a real scanned print.
    "old-photo": DegradeConfig(
        scratches=ScratchConfig(count_range=(0, 5)),
        fade=FadeConfig(prob=0.5),
        sepia=SepiaConfig(prob=0.3),
        blur=BlurConfig(prob=0.4),
        resample=ResampleConfig(prob=0.3),
        grain=GrainConfig(prob=0.5),
        noise=NoiseConfig(prob=0.5),
        salt_pepper=SaltPepperConfig(prob=0.1),
        jpeg=JpegConfig(prob=0.5),
    ),
}


# Re-exported so that ``config.with_overrides`` is the one documented entry point. Imported last:
# overrides.py needs the classes above.
from restore_cli.degrade.overrides import from_preset, validate, with_overrides  # noqa: E402

__all__ = ["DegradeConfig", "PRESETS", "SCRATCH_KINDS", "GLOBAL_EFFECTS", "from_preset", "validate", "with_overrides"]
