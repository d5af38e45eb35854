"""Still exports of an explanation: one token as PNG, a PNG sequence, a contact sheet."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import numpy as np

from tam_engine.core.atomic import temp_dir
from tam_engine.core.explanation import Explanation
from tam_engine.core.placement import DEFAULT_LAYER, Layer
from tam_engine.core.token_maps import TokenKind
from tam_engine.core.tokens import display_token, token_number
from tam_engine.export.common import (
    ExportError,
    Layout,
    Progress,
    ShouldStop,
    check_grid,
    check_token,
    tick,
    write_png,
)
from tam_engine.render.colormaps import DEFAULT_COLORMAP, DEFAULT_OPACITY
from tam_engine.render.figure import frame_caption, paper_figure, token_overlay
from tam_engine.render.overlay import add_caption, caption_strip, colorbar
from tam_engine.render.png import png_bytes
from tam_engine.render.scale import DEFAULT_SCALE, MapScale, scale_top
from tam_engine.render.textmap import render_text_map


def render_token(expl: Explanation, k: int, layout: Layout = "figure", kind: TokenKind = "answer",
                 media_index: int = 0, frame: int = 0, cmap: str = DEFAULT_COLORMAP,
                 opacity: float = DEFAULT_OPACITY, width: int = 640,
                 layer: Layer = DEFAULT_LAYER, tile_borders: bool = False,
                 scale: MapScale = DEFAULT_SCALE) -> np.ndarray:
    """One token as an image: the paper figure, the captioned overlay, or the text map (the
    map placed where the grids looked, as ``layer``; see :func:`render.figure.map_over`)."""
    check_token(expl, k, kind)
    if layout == "textmap" or not expl.grids:
        return render_text_map(expl, k, kind, width=width, cmap=cmap)
    check_grid(expl, media_index)
    if layout == "overlay":
        img = token_overlay(expl, k, media_index, frame, kind, cmap, opacity, width=width,
                            layer=layer, tile_borders=tile_borders, scale=scale)
        return add_caption(img, frame_caption(expl, k, media_index, frame, kind))
    if layout == "figure":
        return paper_figure(expl, k, media_index, frame, cmap, opacity, kind, width=width,
                            layer=layer, tile_borders=tile_borders, scale=scale)
    raise ValueError(f"layout must be 'figure', 'overlay' or 'textmap', not {layout!r}")


# ------------------------------------------------------------------------------ PNG
def export_token_png(expl: Explanation, path: str | os.PathLike, k: int,
                     layout: Layout = "figure", **render) -> Path:
    """The token ``k`` as one PNG (``layout``: figure, overlay or textmap)."""
    return write_png(path, render_token(expl, k, layout, **render))


_SEQUENCE_NAME = re.compile(r"^token_\d{4,}\.png$")


def export_png_sequence(expl: Explanation, folder: str | os.PathLike, layout: Layout = "figure",
                        kind: TokenKind = "answer", progress: Progress | None = None,
                        should_stop: ShouldStop | None = None, **render) -> list[Path]:
    """Every token as ``token_0001.png``, ... in ``folder``.

    The images are written into a hidden temporary folder beside ``folder`` and moved in when
    all are done, so a cancelled export leaves no file.
    """
    folder = Path(folder)
    n = len(expl.tokens(kind))
    if folder.exists() and not folder.is_dir():
        raise ExportError(f"{folder} is a file; a PNG sequence needs a folder.",
                          "Give the name of a new or existing folder.")
    tmp = temp_dir(folder)
    try:
        names = []
        for k in range(n):
            tick(k, n, progress, should_stop)
            name = f"token_{token_number(k):04d}.png"
            (tmp / name).write_bytes(png_bytes(render_token(expl, k, layout, kind, **render)))
            names.append(name)
        tick(n, n, progress, should_stop)
        if not folder.exists():
            os.replace(tmp, folder)
        else:
            for name in names:
                os.replace(tmp / name, folder / name)
            # A longer sequence exported here before leaves its tail: remove the frames of
            # ours (named token_NNNN.png) that this export did not write, and nothing else.
            for old in folder.glob("token_*.png"):
                if _SEQUENCE_NAME.match(old.name) and old.name not in names:
                    old.unlink(missing_ok=True)
        return [folder / name for name in names]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def export_contact_sheet(expl: Explanation, path: str | os.PathLike, kind: TokenKind = "answer",
                         media_index: int = 0, frame: int = 0, cmap: str = DEFAULT_COLORMAP,
                         opacity: float = DEFAULT_OPACITY, thumb_width: int = 200, columns: int | None = None,
                         progress: Progress | None = None, should_stop: ShouldStop | None = None,
                         layer: Layer = DEFAULT_LAYER, tile_borders: bool = False,
                         scale: MapScale = DEFAULT_SCALE) -> Path:
    """All tokens' overlays in one grid image, each captioned with its token (``scale``
    "token" stretches each tile to its own peak; the colour bar then says "per token")."""
    tm = expl.tokens(kind)
    n = len(tm)
    if n == 0 or not expl.grids:
        raise ExportError("Nothing to put on a contact sheet (no tokens or no vision maps).",
                          "Export the text maps instead.")
    check_grid(expl, media_index)
    columns = columns or int(np.ceil(np.sqrt(n * 0.75)))
    tiles = []
    for k in range(n):
        tick(k, n, progress, should_stop)
        img = token_overlay(expl, k, media_index, frame, kind, cmap, opacity, width=thumb_width,
                            layer=layer, tile_borders=tile_borders, scale=scale)
        label = caption_strip(f"{token_number(k)}. \u201c{display_token(tm.texts[k])}\u201d",
                              img.shape[1], font_size=max(11, thumb_width // 16))
        tiles.append(np.concatenate([label, img], axis=0))
    tick(n, n, progress, should_stop)
    th, tw = tiles[0].shape[:2]
    gap = 6
    rows = int(np.ceil(n / columns))
    sheet = np.full((rows * (th + gap) + gap, columns * (tw + gap) + gap, 3), 255, np.uint8)
    for k, tile in enumerate(tiles):
        r, c = divmod(k, columns)
        y, x = gap + r * (th + gap), gap + c * (tw + gap)
        sheet[y:y + th, x:x + tw] = tile[:th, :tw]
    # One bar for all tiles: exact for the joint and the shared scale; per-token stretch
    # tops each tile at its own peak, so its bar is labelled 0 .. 1 of that peak.
    vmax = scale_top(expl, [0], scale, media_index, kind=kind) / 255.0 if scale == "shared" else 1.0
    bar = colorbar(min(sheet.shape[0], 240), cmap, vmax=vmax)
    side = np.full((sheet.shape[0], bar.shape[1], 3), 255, np.uint8)
    side[:bar.shape[0]] = bar
    return write_png(path, np.concatenate([sheet, side], axis=1))
