"""Restoration methods and the single tiled-inference function they all run through."""
