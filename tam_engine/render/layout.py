"""Placing RGB pictures in rows and columns on a white page.

Figures are assembled from parts of different sizes (captions, panels, text maps, colour
bars); these helpers pad every part with white to the size its row or column needs, so
callers say what goes where instead of computing offsets.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

WHITE = 255


def blank(height: int, width: int) -> np.ndarray:
    """A white ``(height, width, 3)`` picture (either side may be 0)."""
    return np.full((int(height), int(width), 3), WHITE, np.uint8)


def pad_to(img: np.ndarray, height: int, width: int) -> np.ndarray:
    """``img`` at the top left of a white ``(height, width)`` picture (never cropped)."""
    return np.pad(img, ((0, int(height) - img.shape[0]), (0, int(width) - img.shape[1]),
                        (0, 0)), constant_values=WHITE)


def column(parts: Sequence[np.ndarray], width: int | None = None) -> np.ndarray:
    """``parts`` top to bottom, left-aligned, each padded to ``width`` (default: the widest)."""
    w = max(p.shape[1] for p in parts) if width is None else int(width)
    return np.concatenate([pad_to(p, p.shape[0], w) for p in parts], axis=0)


def row(parts: Sequence[np.ndarray], gap: int = 0) -> np.ndarray:
    """``parts`` left to right, top-aligned, ``gap`` white pixels apart, padded to the tallest."""
    h = max(p.shape[0] for p in parts)
    cells: list[np.ndarray] = []
    for p in parts:
        if cells and gap:
            cells.append(blank(h, gap))
        cells.append(pad_to(p, h, p.shape[1]))
    return np.concatenate(cells, axis=1)
