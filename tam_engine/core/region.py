"""Region query: which tokens looked at a box of the media (the reverse of the token view).

A token's *share* of a box is the part of its final uint8 map's mass that lies inside the box,
on the media item's displayed frame:

* Each map cell carries its uint8 value spread evenly over the part of the original frame it
  saw: its grid's box divided evenly into cells (:meth:`VisionGrid.cell_box`, the geometry the
  placement code draws with), so for a tiled, cropped or padded input the box is met where the
  model actually looked, and padding (cells outside the frame) carries nothing.
* A cell cut by the box counts with the area of its part inside the box (partial cells are
  weighted by overlap area).
* The layer is the display's (:mod:`tam_engine.core.placement`): where grids of one layer
  overlap, each counts with weight ``1/n`` (their mean, as placed); ``"fused"`` weighs each of
  the two layers by ``1/2`` where both cover a point and by 1 where only one does (the fused
  map's mean).
* ``share = mass inside the box / mass over the whole frame``, in [0, 1]. A token whose map is
  all zero (or who only shows in parts of the frame no grid of the layer saw) has no mass:
  share 0, ranked after every token with a map.

For a video the maps are those of the temporal slot that holds the queried displayed frame
(each grid's slot clamped to its own length, as :meth:`Explanation.place` does).

This is the cell geometry of the placed map, not its bilinear smoothing: a share is exact on
the cells, and the box and map agree pixel for pixel wherever cells are whole. The ranking is
``share`` descending, then tokens with mass before those without, then token order.

Maps are read a block of rows at a time (lazily loaded files never hold all of them as
floats), and each block is one matrix product with the box's cell weights: 1,000 tokens take
milliseconds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from tam_engine.core.errors import TamError
from tam_engine.core.placement import DEFAULT_LAYER, Layer, check_layer, layer_members
from tam_engine.core.spans import FULL_BOX, Box, VisionGrid, grid_slices
from tam_engine.core.token_maps import TokenKind, TokenMaps
from tam_engine.core.tokens import display_token, token_label, token_number

if TYPE_CHECKING:
    from tam_engine.core.explanation import Explanation

#: Rows of maps turned into floats at a time.
ROW_BLOCK = 256


class RegionError(TamError):
    """A region that cannot be queried (outside the media, no area, an unknown frame)."""


@dataclass(frozen=True)
class RegionRanking:
    """The answer to a region query.

    Attributes
    ----------
    kind, media_index, frame, slot, layer
        What was queried: which tokens, on which displayed frame (0-based) of which media
        item, with the map of which temporal slot, as which layer.
    box
        The box in displayed-media pixels, ordered and clipped to the frame.
    frame_size
        ``(W, H)`` of the frame the box is in.
    share
        ``(N,)`` in token order: the share of each token's map mass inside the box.
    mass
        ``(N,)`` in token order: each token's map mass over the frame (uint8 value times the
        frame's area fraction), 0 for a token without a map there.
    order
        ``(N,)`` token indices, best first.
    chance
        The share a uniform map would have: the box's part of the seen area. A token above it
        looked at the box more than elsewhere.
    """

    kind: TokenKind
    media_index: int
    frame: int
    slot: int
    layer: Layer
    box: tuple[float, float, float, float]
    frame_size: tuple[int, int]
    share: np.ndarray
    mass: np.ndarray
    order: np.ndarray
    chance: float

    def __len__(self) -> int:
        return int(self.order.size)

    def top(self, n: int) -> list[int]:
        """The ``n`` best tokens with some share of the box, best first."""
        best = self.order[:max(int(n), 0)]
        return [int(k) for k in best if self.share[k] > 0]

    def rank_of(self, k: int) -> int:
        """Token ``k``'s rank, from 1."""
        return int(np.flatnonzero(self.order == int(k))[0]) + 1

    def records(self, texts: Sequence[str]) -> list[dict]:
        """One row per token, best first: rank and token numbered from 1 (``texts`` are the
        token set's texts)."""
        n = len(texts)
        return [{"rank": r + 1, "token": token_number(k),
                 "label": token_label(int(k), n, self.kind),
                 "text": texts[k], "shown": display_token(texts[k]),
                 "share": round(float(self.share[k]), 6),
                 "has_map": bool(self.mass[k] > 0)}
                for r, k in enumerate(self.order)]

    def describe(self) -> dict:
        """What was queried (for an export's header); frame and media numbered from 1."""
        return {"kind": self.kind, "media": self.media_index + 1, "frame": self.frame + 1,
                "slot": self.slot, "layer": self.layer,
                "box": [round(v, 3) for v in self.box], "frame_size": list(self.frame_size),
                "chance": round(self.chance, 6)}


def check_box(box: Sequence[float], size: tuple[int, int]) -> tuple[float, float, float, float]:
    """``box = (x0, y0, x1, y1)`` in pixels of a ``size = (W, H)`` frame (continuous
    coordinates: 0 is the frame's left edge, W its right one), ordered and clipped to the
    frame; refused when it is not four finite numbers, has no area or lies outside."""
    vals = [float(v) for v in box]
    if len(vals) != 4 or not all(math.isfinite(v) for v in vals):
        raise RegionError(f"a region is four finite numbers x0 y0 x1 y1, not {list(box)}.")
    w, h = size
    x0, x1 = sorted(vals[0::2])
    y0, y1 = sorted(vals[1::2])
    if x1 <= x0 or y1 <= y0:
        raise RegionError(f"the region ({x0:g}, {y0:g}) to ({x1:g}, {y1:g}) has no area.",
                          "Draw a box with some width and height.")
    cx0, cy0, cx1, cy1 = max(x0, 0.0), max(y0, 0.0), min(x1, float(w)), min(y1, float(h))
    if cx1 <= cx0 or cy1 <= cy0:
        raise RegionError(f"the region ({x0:g}, {y0:g}) to ({x1:g}, {y1:g}) lies outside the "
                          f"{w} x {h} media.",
                          f"Give a box that overlaps 0..{w} across and 0..{h} down.")
    return cx0, cy0, cx1, cy1


def _overlap(edges: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """``(len(lo), len(edges) - 1)``: length of ``[lo_i, hi_i]`` inside each interval between
    consecutive ``edges``."""
    a = np.maximum(lo[:, None], edges[None, :-1])
    b = np.minimum(hi[:, None], edges[None, 1:])
    return np.clip(b - a, 0.0, None)


def cell_weights(grids: Sequence[VisionGrid], box: Box, layer: Layer) -> list[np.ndarray]:
    """Per grid of one media item, ``(h, w)``: the area (as a fraction of the frame) of each
    cell's part inside ``box`` (fractions of the frame), weighted as the layer mixes its
    grids (see the module's docstring). ``box = FULL_BOX`` gives each cell's weight over the
    whole frame."""
    check_layer(layer)
    out = [np.zeros((g.h, g.w)) for g in grids]
    if not grids:
        return out
    tiles, thumb = layer_members(grids, "tiles"), layer_members(grids, "thumbnail")
    if layer != "fused" or tiles == thumb:
        layers = [layer_members(grids, "tiles" if layer == "fused" else layer)]
    else:
        layers = [tiles, thumb]
    members = sorted({i for group in layers for i in group})
    # The frame cut at every grid edge: on each elementary rectangle the number of grids of
    # each layer that cover it is constant.
    xs = np.unique(np.clip([0.0, 1.0, *(v for i in members for v in grids[i].box[0::2])], 0, 1))
    ys = np.unique(np.clip([0.0, 1.0, *(v for i in members for v in grids[i].box[1::2])], 0, 1))
    mx, my = (xs[:-1] + xs[1:]) / 2, (ys[:-1] + ys[1:]) / 2

    def inside(i: int) -> np.ndarray:   # (ny, nx): the rectangles grid i covers
        x0, y0, x1, y1 = grids[i].box
        return ((my > y0) & (my < y1))[:, None] & ((mx > x0) & (mx < x1))[None, :]

    covers = {i: inside(i) for i in members}
    counts = [np.sum([covers[i] for i in group], axis=0, dtype=float) for group in layers]
    n_layers = np.sum([c > 0 for c in counts], axis=0, dtype=float)
    bx0, by0, bx1, by1 = box
    # The rectangles cut down to the box, then against each grid's cell edges.
    rx = (np.maximum(xs[:-1], bx0), np.minimum(xs[1:], bx1))
    ry = (np.maximum(ys[:-1], by0), np.minimum(ys[1:], by1))
    for group, count in zip(layers, counts):
        for i in group:
            g = grids[i]
            gx0, gy0, gx1, gy1 = g.box
            ox = _overlap(np.linspace(gx0, gx1, g.w + 1), *rx)     # (nx, w)
            oy = _overlap(np.linspace(gy0, gy1, g.h + 1), *ry)     # (ny, h)
            with np.errstate(divide="ignore", invalid="ignore"):
                mix = np.where(covers[i], 1.0 / (count * n_layers), 0.0)   # (ny, nx)
            out[i] += oy.T @ mix @ ox
    return out


def rank_region(explanation: Explanation, box: Sequence[float], media_index: int = 0, frame: int = 0,
                layer: Layer = DEFAULT_LAYER, kind: TokenKind = "answer") -> RegionRanking:
    """Rank ``explanation``'s tokens of ``kind`` by the share of their final map inside
    ``box`` (displayed-media pixels ``x0, y0, x1, y1``) on displayed ``frame`` (0-based) of
    media ``media_index``, as ``layer`` (see the module's docstring for the definition).

    Raises :class:`RegionError` for a box outside the media or without area, a media item
    without maps, or a frame the media item does not have."""
    check_layer(layer)
    idx = explanation.item_grids(media_index)
    if not idx:
        raise RegionError(f"media {media_index + 1} has no maps to query.")
    media = explanation.media
    if 0 <= media_index < len(media):
        n_frames = media[media_index].n_frames
        if not 0 <= frame < n_frames:
            raise RegionError(f"media {media_index + 1} has {n_frames} frame(s), not frame "
                              f"{frame + 1}.", f"Choose a frame between 1 and {n_frames}.")
    elif frame != 0:
        raise RegionError(f"this explanation keeps no frames of media {media_index + 1}, so "
                          f"frame {frame + 1} cannot be told apart from the others.",
                          "Query frame 1, or explain the video again with its frames kept.")
    size = explanation.frame_size(media_index)
    x0, y0, x1, y1 = check_box(box, size)
    w, h = size
    grids = [explanation.grids[i] for i in idx]
    inner = cell_weights(grids, (x0 / w, y0 / h, x1 / w, y1 / h), layer)
    whole = cell_weights(grids, FULL_BOX, layer)
    # The columns of each grid's slot on this frame, and their weights in that order.
    raw_slot = explanation._raw_slot(media_index, frame)
    slices = grid_slices(explanation.grids)
    cols, w_in, w_all = [], [], []
    for i, g, a, b in zip(idx, grids, inner, whole):
        slot = min(raw_slot, g.t - 1)
        start = slices[i].start + slot * g.h * g.w
        cols.append(np.arange(start, start + g.h * g.w))
        w_in.append(a.reshape(-1))
        w_all.append(b.reshape(-1))
    weights = np.stack([np.concatenate(w_in), np.concatenate(w_all)], axis=1)   # (cells, 2)
    tm: TokenMaps = explanation.tokens(kind)
    sums = _weighted_sums(tm, np.concatenate(cols), weights)
    inside, mass = sums[:, 0], sums[:, 1]
    share = np.zeros(len(tm))
    has = mass > 0
    share[has] = np.clip(inside[has] / mass[has], 0.0, 1.0)
    order = np.lexsort((np.arange(len(tm)), ~has, -share))
    seen = float(weights[:, 1].sum())
    return RegionRanking(kind=kind, media_index=media_index, frame=int(frame),
                         slot=min(raw_slot, grids[0].t - 1), layer=layer,
                         box=(x0, y0, x1, y1), frame_size=(int(w), int(h)), share=share,
                         mass=mass, order=order.astype(np.int64),
                         chance=float(weights[:, 0].sum()) / seen if seen > 0 else 0.0)


def _weighted_sums(tm: TokenMaps, cols: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``(N, k)``: each token's map on columns ``cols`` times ``weights (len(cols), k)``, a
    block of rows at a time."""
    n = len(tm)
    out = np.zeros((n, weights.shape[1]))
    contiguous = cols.size and np.array_equal(cols, np.arange(cols[0], cols[0] + cols.size))
    pick = slice(int(cols[0]), int(cols[0]) + cols.size) if contiguous else cols
    # float32 products (a share needs no more than 7 digits), summed per block.
    w32 = weights.astype(np.float32)
    for s in range(0, n, ROW_BLOCK):
        rows = (tm.maps[s:s + ROW_BLOCK] if tm.maps_loaded
                else tm.map_rows(np.arange(s, min(s + ROW_BLOCK, n))))
        out[s:s + ROW_BLOCK] = rows[:, pick].astype(np.float32) @ w32
    return out
