"""Which map value the top colour stands for: the one choice of colour scale for the app and
every export.

The engine's maps are never changed; only their colouring is:

- ``joint``: the method's own scale. Each token's vision and text relevances are normalised
  together (joint min-max, section 5 of the method), so 0 .. 1 of the colour map is 0 .. 1 of
  that normalised map. The paper's figures look like this; exports default to it.
- ``token``: per-token stretch. The colours span 0 .. the selection's strongest cell on the
  media item (any frame, any tile), so a weak map shows its shape.
- ``shared``: one scale for every token. The colours span 0 .. the strongest cell of any token
  (of the same kind) on the media item, so two tokens' colours can be compared.

A stretched map is coloured from its bilinearly resized float values, quantised only at the end
(to the 256 colours), so a weak map shows no 8-bit contour bands.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

from tam_engine.core.explanation import Explanation
from tam_engine.core.token_maps import TokenKind

MapScale = Literal["joint", "token", "shared"]
MAP_SCALES: tuple[MapScale, ...] = ("joint", "token", "shared")
#: The exports' default (the paper's figures); the app starts with the same.
DEFAULT_SCALE: MapScale = "joint"
#: How each scale is named on screen and in the command-line help.
SCALE_NAMES: dict[MapScale, str] = {
    "joint": "method's joint normalisation",
    "token": "per-token stretch",
    "shared": "one scale for all tokens",
}


def check_scale(name: str) -> MapScale:
    if name not in MAP_SCALES:
        raise ValueError(f"scale must be one of {', '.join(MAP_SCALES)}, not {name!r}")
    return name  # type: ignore[return-value]


def scale_top(expl: Explanation, tokens: Sequence[int], scale: str, media_index: int = 0,
              how: str = "mean", kind: TokenKind = "answer") -> int:
    """The uint8 map value (1 .. 255) drawn with the top colour for a selection on a media
    item under ``scale``."""
    scale = check_scale(scale)
    if scale == "joint":
        return 255
    grids = expl.item_grids(media_index)
    if not grids:
        return 255
    if scale == "token":
        maps = expl.selection_grid_maps([int(t) for t in tokens], how, kind)
        peak = max(int(maps[i].max()) for i in grids)
    else:
        tm = expl.tokens(kind)
        slices = expl.grid_slices
        cols = np.concatenate([np.arange(slices[i].start, slices[i].stop) for i in grids])
        peak = int(tm.maps[:, cols].max()) if len(tm) and cols.size else 0
    return max(1, min(255, peak))
