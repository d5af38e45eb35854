"""Difference maps (model A minus model B) drawn with a diverging blue-white-red colour map.

A difference is a float array in [-1, 1]: red where A's map is stronger, blue where B's is,
white where they agree. It is taken on a shared grid: both uint8 maps are resized bilinearly to
one size (two models' grids usually differ) and subtracted. The colour map is symmetric around its white middle, so "no
difference" always looks neutral whatever the colour map of the ordinary heat maps is.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from tam_engine.core.placement import PlacedMap
from tam_engine.render.fonts import font_stack

DIVERGING_NAME = "blue-white-red"
# Anchor colours (RGB): saturated but not garish ends, a pure white middle.
_BLUE = (33, 102, 172)
_WHITE = (255, 255, 255)
_RED = (178, 24, 43)


@cache
def _lut() -> np.ndarray:
    x = np.linspace(-1.0, 1.0, 256)
    lo, mid, hi = (np.asarray(c, np.float64) for c in (_BLUE, _WHITE, _RED))
    t = np.abs(x)[:, None]
    rows = np.where(x[:, None] < 0, mid + (lo - mid) * t, mid + (hi - mid) * t)
    lut = np.ascontiguousarray(np.round(rows), dtype=np.uint8)
    # Entries 127 and 128 straddle zero; make the middle exactly white so 0 reads as neutral.
    lut[127] = lut[128] = _WHITE
    lut.setflags(write=False)
    return lut


def resize_float(map_u8: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A uint8 map as floats in [0, 1], resized bilinearly to ``size = (H, W)``."""
    import cv2

    m = np.asarray(map_u8, dtype=np.float32) / 255.0
    h, w = int(size[0]), int(size[1])
    if m.shape == (h, w):
        return m
    return cv2.resize(m, (w, h), interpolation=cv2.INTER_LINEAR)


def placed_difference(map_a: PlacedMap, map_b: PlacedMap) -> np.ndarray:
    """``A - B`` of two maps placed in one frame at one size (``as_float``), float32 in
    [-1, 1]; 0 wherever either side's grids did not see the picture (nothing to compare)."""
    if map_a.values.shape != map_b.values.shape:
        raise ValueError("both maps must be placed at the same size")
    a, b = (m.values.astype(np.float32) / (255.0 if m.values.dtype == np.uint8 else 1.0)
            for m in (map_a, map_b))
    diff = np.where(map_a.coverage & map_b.coverage, a - b, np.float32(0.0))
    return np.clip(diff, -1.0, 1.0).astype(np.float32)


def difference_map(map_a: np.ndarray, map_b: np.ndarray, size: tuple[int, int] | None = None
                   ) -> np.ndarray:
    """``A - B`` of two uint8 maps, float32 in [-1, 1], on a common ``(H, W)`` grid.

    Without ``size`` the larger of the two shapes (per axis) is used. Both maps are resized
    bilinearly before subtracting, so grids of different models compare pixel for pixel.
    """
    if size is None:
        size = (max(map_a.shape[0], map_b.shape[0]), max(map_a.shape[1], map_b.shape[1]))
    diff = resize_float(map_a, size) - resize_float(map_b, size)
    return np.clip(diff, -1.0, 1.0).astype(np.float32)


def diverging_lut() -> np.ndarray:
    """``(256, 3)`` uint8 RGB table: entry 0 is -1 (blue), 255 is +1 (red) (read-only)."""
    return _lut()


def diff_to_index(diff: np.ndarray) -> np.ndarray:
    """Map differences in [-1, 1] to table indices 0..255 (0 -> 127/128, the white middle)."""
    d = np.clip(np.nan_to_num(np.asarray(diff, dtype=np.float32)), -1.0, 1.0)
    return np.round((d + 1.0) * 127.5).clip(0, 255).astype(np.uint8)


def apply_diverging(diff: np.ndarray) -> np.ndarray:
    """Colour a ``(h, w)`` difference map: returns ``(h, w, 3)`` uint8 RGB."""
    d = np.asarray(diff)
    if d.ndim != 2:
        raise ValueError(f"a difference map is (h, w), got shape {d.shape}")
    return _lut()[diff_to_index(d)]


def diff_overlay(frame: np.ndarray | None, diff: np.ndarray, opacity: float = 0.75
                 ) -> np.ndarray:
    """The coloured difference over a greyed copy of ``frame`` (``diff`` already frame-sized).

    The frame is shown in grey so that its own colours do not read as red or blue. Without a
    frame the coloured difference is returned alone.
    """
    import cv2

    heat = apply_diverging(diff)
    if frame is None:
        return heat
    frame = np.ascontiguousarray(frame, dtype=np.uint8)
    if frame.shape[:2] != heat.shape[:2]:
        raise ValueError(f"diff {heat.shape[:2]} and frame {frame.shape[:2]} differ in size")
    if not 0.0 <= opacity <= 1.0:
        raise ValueError("opacity must be within [0, 1]")
    grey = cv2.cvtColor(cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
    return cv2.addWeighted(grey, 1.0 - opacity, heat, opacity, 0.0)


def diverging_colorbar(height: int, labels: tuple[str, str, str] = ("A +1", "0", "B \u22121"),
                       width: int | None = None) -> np.ndarray:
    """A vertical bar, +1 (red, A stronger) on top and -1 (blue, B stronger) at the bottom."""
    from PIL import Image, ImageDraw

    height = max(int(height), 16)
    fs = font_stack(max(9, min(18, height // 14)))
    bar_w = max(8, height // 28)
    label_w = max(fs.width(t) for t in labels) + 6
    width = width or (bar_w + label_w + 10)
    pad = max(fs.line_height // 2 + 1, 4)
    out = np.full((height, width, 3), 255, np.uint8)
    bar_h = height - 2 * pad
    ramp = np.linspace(255, 0, bar_h).round().astype(np.uint8)
    out[pad:pad + bar_h, 4:4 + bar_w] = _lut()[ramp][:, None, :]
    # A thin grey frame, or the white middle of the bar vanishes into the background.
    out[pad:pad + bar_h, 3] = out[pad:pad + bar_h, 4 + bar_w] = 150
    out[pad - 1, 3:5 + bar_w] = out[pad + bar_h, 3:5 + bar_w] = 150
    img = Image.fromarray(out)
    draw = ImageDraw.Draw(img)
    x = 4 + bar_w + 5
    for text, frac in zip(labels, (0.0, 0.5, 1.0)):
        y = pad + frac * (bar_h - 1) - fs.line_height / 2
        fs.draw(draw, (x, y), text, fill=(40, 40, 40))
    return np.asarray(img)
