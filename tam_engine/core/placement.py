"""Maps placed where the tokens looked: a media item's grids drawn into its original frame.

Every grid covers a box of the original frame (:attr:`VisionGrid.box`) divided evenly into its
cells (:meth:`VisionGrid.cell_box`). Placing a grid's map resizes it (bilinear, as the renderer
always did) onto the pixels of its box and keeps the part inside the frame; pixels that no grid
of the layer covers are marked uncovered and never filled with a guess.

Layers (the user's choice for a tiled item):

``"tiles"``
    The tiles stitched into one map (the grids of role ``"tile"``, and ``"full"`` grids, which
    belong to every layer); where tiles overlap, their mean.
``"thumbnail"``
    The global thumbnail's map (role ``"thumbnail"``, and ``"full"`` grids).
``"fused"``
    Both: the mean of the two layers where both cover a pixel, the one layer where only one
    does. The maps are already on the method's joint [0, 1] scale (the engine normalises all
    vision tokens of a token together), so the two layers need no rescaling to be comparable;
    the mean credits the detailed tiles and the whole-image thumbnail equally, keeps the scale
    (a value means the same in every layer), and a pixel only one view saw shows what that view
    saw instead of being pulled towards zero.

A layer without grids of its own falls back to the other (an item with tiles only shows its
tiles as its thumbnail layer, and the other way round). An item with one ``"full"`` grid over
the whole frame is placed exactly as before this module existed: its map resized to the frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from tam_engine.core.spans import FULL_BOX, Box, VisionGrid

Layer = Literal["tiles", "thumbnail", "fused"]
LAYERS: tuple[Layer, ...] = ("tiles", "thumbnail", "fused")
DEFAULT_LAYER: Layer = "fused"


@dataclass(frozen=True)
class PlacedMap:
    """A map in original-frame pixels: ``values`` ``(H, W)`` (uint8; float32 in [0, 1] when
    placed ``as_float``; 0 where uncovered) and ``coverage`` ``(H, W)`` bool (the pixels some
    grid of the layer saw)."""

    values: np.ndarray
    coverage: np.ndarray

    @property
    def covers_all(self) -> bool:
        return bool(self.coverage.all())


def check_layer(layer: str) -> Layer:
    if layer not in LAYERS:
        raise ValueError(f"layer must be one of {', '.join(LAYERS)}, not {layer!r}")
    return layer  # type: ignore[return-value]


def layer_members(grids: Sequence[VisionGrid], layer: Layer) -> list[int]:
    """Indices (into ``grids``, one media item's) of the grids that make up ``layer``."""
    check_layer(layer)
    if layer == "fused":
        return list(range(len(grids)))
    own, other = ("tile", "thumbnail") if layer == "tiles" else ("thumbnail", "tile")
    picked = [i for i, g in enumerate(grids) if g.role in (own, "full")]
    return picked or [i for i, g in enumerate(grids) if g.role == other]


def box_pixels(box: Box, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """``box`` in pixels of a ``size = (W, H)`` frame, rounded (may lie outside the frame).
    Neighbouring boxes share their rounded edge, so stitched tiles leave no gap."""
    w, h = size
    x0, y0, x1, y1 = box
    return round(x0 * w), round(y0 * h), round(x1 * w), round(y1 * h)


def coverage(grids: Sequence[VisionGrid], size: tuple[int, int]) -> np.ndarray:
    """``(H, W)`` bool: the pixels of a ``size`` frame inside some grid's box."""
    w, h = size
    out = np.zeros((h, w), dtype=bool)
    for g in grids:
        x0, y0, x1, y1 = box_pixels(g.box, size)
        out[max(y0, 0):max(min(y1, h), 0), max(x0, 0):max(min(x1, w), 0)] = True
    return out


def resize_map(map_u8: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of a ``(h, w)`` uint8 map to ``size = (W, H)``: the one map resize of
    the renderer, the exporters and the GUI, so screen and files agree."""
    import cv2

    m = np.ascontiguousarray(map_u8, dtype=np.uint8)
    if m.shape[1] == size[0] and m.shape[0] == size[1]:
        return m
    return cv2.resize(m, size, interpolation=cv2.INTER_LINEAR)


def _resize_values(m: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """:func:`resize_map` for uint8 maps; the same bilinear resize kept in float for float32
    maps (the difference of two maps is taken on floats)."""
    if m.dtype == np.uint8:
        return resize_map(m, size)
    import cv2

    if m.shape[1] == size[0] and m.shape[0] == size[1]:
        return m
    return cv2.resize(np.ascontiguousarray(m), size, interpolation=cv2.INTER_LINEAR)


def _place_one_layer(grids: Sequence[VisionGrid], maps: Sequence[np.ndarray],
                     size: tuple[int, int]) -> PlacedMap:
    w, h = size
    if len(grids) == 1 and grids[0].box == FULL_BOX:
        return PlacedMap(_resize_values(maps[0], size), np.ones((h, w), dtype=bool))
    total = np.zeros((h, w), dtype=np.float32)
    count = np.zeros((h, w), dtype=np.float32)
    for g, m in zip(grids, maps):
        x0, y0, x1, y1 = box_pixels(g.box, size)
        if x1 <= x0 or y1 <= y0:
            continue                      # too small to show at this size
        cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
        if cx1 <= cx0 or cy1 <= cy0:
            continue                      # entirely outside the frame (padding only)
        full = _resize_values(m, (x1 - x0, y1 - y0))
        total[cy0:cy1, cx0:cx1] += full[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0]
        count[cy0:cy1, cx0:cx1] += 1.0
    covered = count > 0
    dtype = maps[0].dtype if maps else np.uint8
    values = np.zeros((h, w), dtype=dtype)
    mean = total[covered] / count[covered]
    values[covered] = np.rint(mean) if dtype == np.uint8 else mean
    return PlacedMap(values, covered)


def place(grids: Sequence[VisionGrid], maps: Sequence[np.ndarray], layer: Layer,
          size: tuple[int, int], as_float: bool = False) -> PlacedMap:
    """One media item's maps (``maps[i]``: grid ``i``'s ``(h, w)`` uint8 map on the shown
    frame) placed in a ``size = (W, H)`` frame, as ``layer``; ``as_float`` places them as
    float32 in [0, 1], resized without rounding."""
    if len(grids) != len(maps):
        raise ValueError("one map per grid is needed")
    if as_float:
        maps = [np.asarray(m, dtype=np.float32) / 255.0 for m in maps]
    if not grids:
        w, h = size
        return PlacedMap(np.zeros((h, w), np.uint8), np.zeros((h, w), bool))
    tiles, thumb = layer_members(grids, "tiles"), layer_members(grids, "thumbnail")
    if layer != "fused" or tiles == thumb:
        pick = layer_members(grids, "tiles" if layer == "fused" else layer)
        return _place_one_layer([grids[i] for i in pick], [maps[i] for i in pick], size)
    a = _place_one_layer([grids[i] for i in tiles], [maps[i] for i in tiles], size)
    b = _place_one_layer([grids[i] for i in thumb], [maps[i] for i in thumb], size)
    both = a.coverage & b.coverage
    values = np.where(a.coverage, a.values, b.values)
    if as_float:
        values[both] = (a.values[both] + b.values[both]) / 2
    else:
        mean = (a.values[both].astype(np.uint16) + b.values[both] + 1) // 2  # round half up
        values[both] = mean.astype(np.uint8)
    return PlacedMap(values, a.coverage | b.coverage)


def _cell_weights(g: VisionGrid) -> np.ndarray:
    """``(h, w)``: the area of each cell's box inside the frame (padding counts for nothing)."""
    x0, y0, x1, y1 = g.box
    xs = np.clip(np.linspace(x0, x1, g.w + 1), 0.0, 1.0)
    ys = np.clip(np.linspace(y0, y1, g.h + 1), 0.0, 1.0)
    return np.diff(ys)[:, None] * np.diff(xs)[None, :]


def _layer_strength(grids: Sequence[VisionGrid], maps: Sequence[np.ndarray]) -> float:
    if len(grids) == 1 and grids[0].box == FULL_BOX:
        return float(np.asarray(maps[0]).mean() / 255.0)
    num = den = 0.0
    for g, m in zip(grids, maps):
        wts = _cell_weights(g)
        num += float((wts * np.asarray(m, dtype=np.float64)).sum())
        den += float(wts.sum())
    return num / den / 255.0 if den > 0 else 0.0


def strength(grids: Sequence[VisionGrid], maps: Sequence[np.ndarray], layer: Layer) -> float:
    """The mean of the placed ``layer`` over the frame region it covers, in [0, 1], computed on
    the cells (each weighted by the area of its box inside the frame); ``"fused"`` is the mean
    of the two layers' strengths, as its map is their mean."""
    if not grids:
        return 0.0
    tiles, thumb = layer_members(grids, "tiles"), layer_members(grids, "thumbnail")
    if layer != "fused" or tiles == thumb:
        pick = layer_members(grids, "tiles" if layer == "fused" else layer)
        return _layer_strength([grids[i] for i in pick], [maps[i] for i in pick])
    return 0.5 * (_layer_strength([grids[i] for i in tiles], [maps[i] for i in tiles])
                  + _layer_strength([grids[i] for i in thumb], [maps[i] for i in thumb]))


def border_boxes(grids: Sequence[VisionGrid], layer: Layer) -> list[Box]:
    """The boxes worth outlining ("show tile borders"): those of the layer's grids that are not
    the whole frame (tiles, a thumbnail with padding, a centre crop)."""
    return [grids[i].box for i in layer_members(grids, layer) if grids[i].box != FULL_BOX]


def natural_size(grids: Sequence[VisionGrid], width: int) -> tuple[int, int]:
    """A ``(width, H)`` frame size for an item whose frames were not kept: the aspect ratio its
    largest grid implies, assuming square cells."""
    if not grids:
        return int(width), int(width)
    g = max(grids, key=lambda g: g.h * g.w)
    x0, y0, x1, y1 = g.box
    aspect = (g.h / (y1 - y0)) / (g.w / (x1 - x0))
    return int(width), max(1, int(round(width * aspect)))
