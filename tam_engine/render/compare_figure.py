"""The side-by-side figure of two models' explanations: A | B | A - B.

Each side is described by a :class:`ComparePanel` (its explanation, the chosen answer tokens,
the displayed frame, their map on that frame and a caption), so this module only draws: which
tokens correspond, and their maps, are decided by :mod:`tam_engine.compare`.

Layout, per column: a caption strip, the panel (the map over the frame), and optionally the
text map of the selection's first token. The heat maps' colour bar follows B (one scale for A
and B) and the diverging colour bar follows A - B.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tam_engine.core.explanation import Explanation
from tam_engine.core.placement import DEFAULT_LAYER, Layer, PlacedMap
from tam_engine.render.colormaps import DEFAULT_COLORMAP, DEFAULT_OPACITY
from tam_engine.render.diff import diff_overlay, diverging_colorbar, placed_difference
from tam_engine.render.figure import resize_frame, token_overlay
from tam_engine.render.layout import blank, column, pad_to, row
from tam_engine.render.overlay import caption_strip, colorbar
from tam_engine.render.textmap import render_text_map, text_map_height

PANEL_WIDTH = 360
COLUMN_GAP = 8
DIFF_CAPTION = "A \u2212 B  (red: A stronger, blue: B stronger)"
NO_DIFF_CAPTION = "A \u2212 B: nothing to compare"


@dataclass(frozen=True)
class ComparePanel:
    """What one side of the figure shows.

    ``tokens`` are answer-token indices; empty means the side has nothing chosen (model B has
    no word matching A's): the frame is shown without a map and nothing is subtracted.
    ``map_u8`` is the selection's ``(h, w)`` map on ``frame`` on the item's first grid (None
    without tokens); what is drawn is the selection (combined by ``how``) placed where all the
    item's grids looked, as ``layer`` (:meth:`placed`).
    """

    expl: Explanation
    tokens: tuple[int, ...]
    media_index: int
    frame: int
    map_u8: np.ndarray | None
    caption: str
    how: str = "mean"
    layer: Layer = DEFAULT_LAYER

    def placed(self, size: tuple[int, int], as_float: bool = False) -> PlacedMap:
        """The selection's map placed in the frame at ``size = (W, H)``."""
        return self.expl.placed_selection(self.tokens, self.media_index, self.frame, self.how,
                                          layer=self.layer, size=size, as_float=as_float)

    def __post_init__(self) -> None:
        if bool(self.tokens) != (self.map_u8 is not None):
            raise ValueError("a panel has a map exactly when it has tokens")


def render_side_by_side(a: ComparePanel, b: ComparePanel, cmap: str = DEFAULT_COLORMAP,
                        opacity: float = DEFAULT_OPACITY, panel_width: int = PANEL_WIDTH,
                        show_diff: bool = True, text_maps: bool = True,
                        text_min_height: int = 0) -> np.ndarray:
    """A | B (| A - B) panels as one RGB image.

    ``text_maps`` puts each side's text map (of its first token) under its panel;
    ``text_min_height`` pads them (videos need every frame the same size).
    """
    if not a.tokens:
        raise ValueError("side A of a comparison needs at least one token")
    pw = int(panel_width)
    fs = max(11, min(22, pw // 24))
    caption_h = int(caption_strip("Ag", pw, font_size=fs).shape[0])
    img_a = token_overlay(a.expl, a.tokens[0], a.media_index, a.frame, "answer", cmap,
                          opacity, width=pw, tokens=a.tokens, how=a.how, layer=a.layer)
    if b.tokens:
        img_b = token_overlay(b.expl, b.tokens[0], b.media_index, b.frame, "answer", cmap,
                              opacity, width=pw, tokens=b.tokens, how=b.how, layer=b.layer)
    else:
        plain = _frame(b, pw)
        img_b = plain if plain is not None else np.full_like(img_a, 235)
    panels = [(a.caption, img_a), (b.caption, img_b)]
    if show_diff:
        panels.append(_difference_panel(a, b, img_a.shape[:2], pw))
    panel_h = max(img_a.shape[0], img_b.shape[0])
    columns = [[caption_strip(caption, pw, caption_h, fs), pad_to(img, panel_h, pw)]
               for caption, img in panels]
    if text_maps:
        texts = [render_text_map(p.expl, p.tokens[0], "answer", width=pw, cmap=cmap)
                 if p.tokens else blank(0, pw) for p in (a, b)]
        th = max(max(t.shape[0] for t in texts), int(text_min_height))
        texts += [blank(th, pw)] * (len(columns) - len(texts))   # A - B has no text map
        for col, text in zip(columns, texts):
            col.append(pad_to(text, th, pw))
    blocks = [column(col, pw) for col in columns]
    blocks[1] = _with_bar(blocks[1], colorbar(panel_h, cmap), caption_h)
    if show_diff:
        blocks[2] = _with_bar(blocks[2], diverging_colorbar(panel_h), caption_h)
    return np.ascontiguousarray(row(blocks, gap=COLUMN_GAP))


def text_maps_height(a: ComparePanel, b: ComparePanel, panel_width: int = PANEL_WIDTH) -> int:
    """Height of the taller of the two sides' text maps at ``panel_width``."""
    pw = int(panel_width)
    return max(text_map_height(p.expl, p.tokens[0], "answer", width=pw) if p.tokens else 0
               for p in (a, b))


def _difference_panel(a: ComparePanel, b: ComparePanel, size: tuple[int, int], width: int
                      ) -> tuple[str, np.ndarray]:
    """Caption and image of A - B over A's greyed frame, at the size of A's panel."""
    base = _frame(a, width)
    if a.tokens and b.tokens:
        wh = (size[1], size[0])
        return DIFF_CAPTION, diff_overlay(base, placed_difference(a.placed(wh, True),
                                                                  b.placed(wh, True)))
    return NO_DIFF_CAPTION, diff_overlay(base, np.zeros(size, np.float32), 0.0)


def _with_bar(block: np.ndarray, bar: np.ndarray, top: int) -> np.ndarray:
    """``block`` with the colour ``bar`` on its right, ``top`` pixels down (beside the panel)."""
    return row([block, column([blank(top, bar.shape[1]), bar])])


def _frame(panel: ComparePanel, width: int) -> np.ndarray | None:
    """The panel's displayed frame at ``width``, or None without stored media."""
    expl, mi = panel.expl, panel.media_index
    if not expl.media or mi >= len(expl.media):
        return None
    m = expl.media[mi]
    return resize_frame(m.frames[min(panel.frame, m.n_frames - 1)], width)
