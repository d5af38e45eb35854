"""Colour maps for activation maps, as 256-entry RGB look-up tables.

``jet`` is what the TAM paper shows (OpenCV's ``COLORMAP_JET``); the others are perceptually
uniform alternatives (``turbo`` keeps jet's look without its false edges).
"""

from __future__ import annotations

from functools import cache

import numpy as np

COLORMAPS: tuple[str, ...] = ("jet", "turbo", "viridis", "inferno", "magma", "gray")
DEFAULT_COLORMAP = "jet"
#: Opacity of the heat map over the media, for every renderer and exporter.
DEFAULT_OPACITY = 0.5


def _cv2_code(name: str) -> int:
    import cv2

    return {"jet": cv2.COLORMAP_JET, "turbo": cv2.COLORMAP_TURBO,
            "viridis": cv2.COLORMAP_VIRIDIS, "inferno": cv2.COLORMAP_INFERNO,
            "magma": cv2.COLORMAP_MAGMA}[name]


@cache
def _lut(name: str) -> np.ndarray:
    if name not in COLORMAPS:
        raise ValueError(f"unknown colour map {name!r}; choose one of {', '.join(COLORMAPS)}")
    ramp = np.arange(256, dtype=np.uint8)
    lut: np.ndarray
    if name == "gray":
        lut = np.repeat(ramp[:, None], 3, axis=1)
    else:
        import cv2

        bgr = cv2.applyColorMap(ramp.reshape(256, 1), _cv2_code(name)).reshape(256, 3)
        lut = bgr[:, ::-1]
    lut = np.ascontiguousarray(lut, dtype=np.uint8)
    lut.setflags(write=False)
    return lut


def colormap_lut(name: str = DEFAULT_COLORMAP) -> np.ndarray:
    """``(256, 3)`` uint8 RGB table of colour map ``name`` (read-only)."""
    return _lut(name)


def apply_colormap(map_u8: np.ndarray, name: str = DEFAULT_COLORMAP) -> np.ndarray:
    """Colour a ``(h, w)`` uint8 map: returns ``(h, w, 3)`` uint8 RGB."""
    m = np.asarray(map_u8)
    if m.dtype != np.uint8:
        raise TypeError(f"maps are uint8 (0..255), got {m.dtype}")
    if m.ndim == 2 and m.size >= 4096:
        import cv2

        # OpenCV's table lookup is ~15x faster than a numpy gather on a full frame. Its user
        # table is applied channel by channel, so an RGB-ordered table gives RGB out.
        return cv2.applyColorMap(np.ascontiguousarray(m), _cv2_table(name))
    return _lut(name)[m]


@cache
def _cv2_table(name: str) -> np.ndarray:
    return np.ascontiguousarray(_lut(name).reshape(256, 1, 3))


def colour_of(value: float, name: str = DEFAULT_COLORMAP) -> tuple[int, int, int]:
    """RGB colour of a value in [0, 1]."""
    v = 0.0 if not np.isfinite(value) else min(max(float(value), 0.0), 1.0)
    r, g, b = _lut(name)[int(round(v * 255))]
    return int(r), int(g), int(b)
