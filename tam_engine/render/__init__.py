"""The Qt-free renderer: colour maps, overlays, text maps and paper-style figures.

Exports and golden-image tests use it directly; the GUI uses its colour maps and overlay so
that what is shown and what is exported look the same.
"""

from __future__ import annotations

from tam_engine.render.colormaps import COLORMAPS, apply_colormap, colormap_lut
from tam_engine.render.figure import paper_figure, token_overlay
from tam_engine.render.overlay import add_caption, add_colorbar, overlay
from tam_engine.render.textmap import render_text_map

__all__ = [
    "COLORMAPS",
    "add_caption",
    "add_colorbar",
    "apply_colormap",
    "colormap_lut",
    "overlay",
    "paper_figure",
    "render_text_map",
    "token_overlay",
]
