"""restore: bring damaged old photographs back (scratches, cracks, dust, grain, noise)."""

__version__ = "0.1.0"
