"""Colours of maps in the GUI come from the renderer's lookup tables, so the screen and the
exported files look the same."""

from __future__ import annotations

from functools import cache

import numpy as np
import pyqtgraph as pg

from tam_engine.render.colormaps import colormap_lut, colour_of

lut = colormap_lut  # (256, 3) uint8 RGB table of a colour map


@cache
def pg_colormap(name: str) -> pg.ColorMap:
    return pg.ColorMap(pos=np.linspace(0.0, 1.0, 256), color=colormap_lut(name), name=name)


def css_color(name: str, value: float) -> str:
    """``#rrggbb`` of ``value`` in [0, 1] on colour map ``name`` (as the exported text map)."""
    return "#{:02x}{:02x}{:02x}".format(*colour_of(value, name))


def text_color_on(rgb_hex: str) -> str:
    """Black or white, whichever reads better on ``rgb_hex``."""
    r, g, b = (int(rgb_hex[i:i + 2], 16) for i in (1, 3, 5))
    return "#000000" if 0.299 * r + 0.587 * g + 0.114 * b > 140 else "#ffffff"
