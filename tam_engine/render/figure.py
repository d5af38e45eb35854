"""Paper-style figures: the media with a token's map over it, its text map below."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tam_engine.core.explanation import Explanation
from tam_engine.core.placement import DEFAULT_LAYER, Layer, border_boxes
from tam_engine.core.token_maps import TokenKind
from tam_engine.render.colormaps import DEFAULT_COLORMAP, DEFAULT_OPACITY
from tam_engine.render.overlay import (
    add_caption,
    add_colorbar,
    draw_boxes,
    heatmap,
    overlay,
    token_caption,
)
from tam_engine.render.scale import DEFAULT_SCALE, MapScale, scale_top
from tam_engine.render.textmap import render_text_map


def resize_frame(frame: np.ndarray, width: int) -> np.ndarray:
    """``frame`` scaled to ``width`` pixels wide, aspect kept (area filter when shrinking)."""
    import cv2

    h, w = frame.shape[:2]
    if w == width:
        return frame
    height = max(1, int(round(h * width / w)))
    interp = cv2.INTER_AREA if width < w else cv2.INTER_LINEAR
    return cv2.resize(np.ascontiguousarray(frame), (int(width), height), interpolation=interp)


def map_over(image: np.ndarray, expl: Explanation, k: int, media_index: int = 0,
             frame: int = 0, kind: TokenKind = "answer", cmap: str = DEFAULT_COLORMAP,
             opacity: float = DEFAULT_OPACITY, tokens: Sequence[int] | None = None,
             how: str = "mean", layer: Layer = DEFAULT_LAYER, tile_borders: bool = False,
             scale: MapScale = DEFAULT_SCALE) -> np.ndarray:
    """Token ``k``'s map on displayed ``frame`` over ``image`` (that frame, at any size),
    placed where the item's grids looked (``layer`` of a tiled item): the plain image where no
    grid saw it.

    ``tokens`` draws a selection instead (several tokens combined by ``how``, see
    :meth:`Explanation.selection_grid_maps`). ``tile_borders`` outlines the boxes of the
    layer's tiles (and of a cropped or padded grid). ``scale``: which map value the top colour
    stands for (:mod:`tam_engine.render.scale`).
    """
    size = (image.shape[1], image.shape[0])
    sel = [int(t) for t in tokens] if tokens else [k]
    top = scale_top(expl, sel, scale, media_index, how, kind)
    placed = expl.placed_selection(sel, media_index, frame, how, kind, layer, size,
                                   as_float=top < 255)
    out = overlay(image, placed.values, cmap, opacity, placed.coverage, vmax=top / 255.0)
    return _borders(out, expl, media_index, layer) if tile_borders else out


def _borders(image: np.ndarray, expl: Explanation, media_index: int, layer: Layer
             ) -> np.ndarray:
    return draw_boxes(image, border_boxes(
        [expl.grids[i] for i in expl.item_grids(media_index)], layer))


def token_overlay(expl: Explanation, k: int, media_index: int = 0, frame: int = 0,
                  kind: TokenKind = "answer", cmap: str = DEFAULT_COLORMAP,
                  opacity: float = DEFAULT_OPACITY, width: int | None = None,
                  tokens: Sequence[int] | None = None, how: str = "mean",
                  layer: Layer = DEFAULT_LAYER, tile_borders: bool = False,
                  scale: MapScale = DEFAULT_SCALE) -> np.ndarray:
    """:func:`map_over` the stored ``frame`` of media ``media_index``, ``width`` pixels wide.

    Without stored media (an explanation saved without frames) the coloured map is shown alone,
    at the aspect ratio its grids imply.
    """
    if expl.media and media_index < len(expl.media):
        img = expl.media[media_index].frames[min(frame, expl.media[media_index].n_frames - 1)]
        if width is not None:
            img = resize_frame(img, width)
        return map_over(img, expl, k, media_index, frame, kind, cmap, opacity, tokens, how,
                        layer, tile_borders, scale)
    size = expl.frame_size(media_index, width or 448)
    sel = [int(t) for t in tokens] if tokens else [k]
    top = scale_top(expl, sel, scale, media_index, how, kind)
    placed = expl.placed_selection(sel, media_index, frame, how, kind, layer, size,
                                   as_float=top < 255)
    out = heatmap(placed.values, size, cmap, placed.coverage, vmax=top / 255.0)
    return _borders(out, expl, media_index, layer) if tile_borders else out


def frame_caption(expl: Explanation, k: int, media_index: int, frame: int,
                  kind: TokenKind = "answer") -> str:
    tm = expl.tokens(kind)
    text = token_caption(tm.texts[k], k, len(tm), "prompt " if kind == "prompt" else "")
    if expl.media and media_index < len(expl.media) and expl.media[media_index].kind == "video":
        m = expl.media[media_index]
        f = min(frame, m.n_frames - 1)
        text += f"  \u00b7  frame {f + 1}/{m.n_frames} at {m.timestamps[f]:.1f} s"
    return text


def paper_figure(expl: Explanation, k: int, media_index: int = 0, frame: int = 0,
                 cmap: str = DEFAULT_COLORMAP, opacity: float = DEFAULT_OPACITY,
                 kind: TokenKind = "answer", width: int = 640, colorbar: bool = True,
                 caption: bool = True, show_original: bool = False,
                 text_min_height: int | None = None, layer: Layer = DEFAULT_LAYER,
                 tile_borders: bool = False, scale: MapScale = DEFAULT_SCALE) -> np.ndarray:
    """One figure for token ``k``: caption, overlay (and colour bar), text map below.

    ``width`` is the width of the media panel; the text map spans the whole figure.
    ``show_original`` puts the untouched frame to the left of the overlay.
    ``text_min_height`` pads the text map (videos need every frame the same size).
    ``layer``, ``tile_borders`` and ``scale`` are those of :func:`token_overlay`; the colour
    bar's labels follow the scale.
    """
    parts: list[np.ndarray] = []
    if expl.grids:
        panel_w = (width - 4) // 2 if show_original else width
        top = token_overlay(expl, k, media_index, frame, kind, cmap, opacity, width=panel_w,
                            layer=layer, tile_borders=tile_borders, scale=scale)
        if show_original and expl.media and media_index < len(expl.media):
            m = expl.media[media_index]
            orig = resize_frame(m.frames[min(frame, m.n_frames - 1)], panel_w)
            orig = orig[: top.shape[0]]
            sep = np.full((top.shape[0], 4, 3), 255, np.uint8)
            top = np.concatenate([orig, sep, top], axis=1)
            if top.shape[1] < width:                   # odd width: keep the promised size
                top = np.pad(top, ((0, 0), (0, width - top.shape[1]), (0, 0)),
                             constant_values=255)
        if colorbar:
            vmax = scale_top(expl, [k], scale, media_index, kind=kind) / 255.0
            top = add_colorbar(top, cmap, vmax=vmax)
        if caption:
            top = add_caption(top, frame_caption(expl, k, media_index, frame, kind))
        parts.append(top)
        total_w = top.shape[1]
    else:
        total_w = width
        if caption:
            tm = expl.tokens(kind)
            parts.append(add_caption(np.zeros((0, total_w, 3), np.uint8),
                                     token_caption(tm.texts[k], k, len(tm))))
    parts.append(render_text_map(expl, k, kind, width=total_w, cmap=cmap,
                                 min_height=text_min_height))
    return np.ascontiguousarray(np.concatenate(parts, axis=0))
