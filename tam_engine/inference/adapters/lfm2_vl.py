"""LFM2-VL: a small image whole, a large one as tiles plus a thumbnail.

The processor resizes a small image (area within its token budget) to multiples of
``patch x downsample`` and keeps its aspect ratio: one grid. A large image is squashed to
``rows x cols`` tiles (row-major, each labelled ``<|img_row_r_col_c|>``) and followed by a
thumbnail, the small-image resize of the whole frame (after ``<|img_thumbnail|>``). The tower
takes each piece at its own patch grid (``spatial_shapes``); the projector unshuffles
``downsample x downsample`` patches into one cell.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tam_engine.core.media import MediaItem
from tam_engine.core.spans import FULL_BOX
from tam_engine.inference.adapters.base import SpanError
from tam_engine.inference.adapters.tiles import Piece, TiledAdapter, tile_pieces


class Lfm2VlAdapter(TiledAdapter):
    family = "lfm2_vl"
    model_types = ("lfm2_vl",)
    title = "LFM2-VL"
    examples = ("LiquidAI/LFM2-VL-450M", "LiquidAI/LFM2-VL-1.6B")
    tiling = True
    notes = ("a small image: one grid at its own aspect ratio; a large one: the tiles stitched, "
             "plus a thumbnail")



    def image_pieces(self, media: list[MediaItem], inputs: Any) -> list[list[Piece]]:
        images = [item.frames[0] for item in media if item.kind == "image"]
        if not images:
            return []
        # The processor keeps the layout (rows, cols) to itself; its image processor reports it.
        settings = {k: v for k, v in self.image_settings().items() if k != "return_tensors"}
        layout = self.processor.image_processor(
            [np.require(im, requirements="W") for im in images],
            **{**settings, "return_row_col_info": True})
        shapes = np.asarray(inputs["spatial_shapes"]).reshape(-1, 2)
        factor = int(self.config.downsample_factor)
        use_thumbnail = bool(settings.get("use_thumbnail", getattr(
            self.processor.image_processor, "use_thumbnail", True)))
        out, k = [], 0
        for rows, cols in zip(layout["image_rows"], layout["image_cols"]):
            rows, cols = int(rows), int(cols)
            n = rows * cols + (1 if rows * cols > 1 and use_thumbnail else 0)
            if k + n > len(shapes):
                raise SpanError(f"{self.family}: the processor gave {len(shapes)} image pieces; "
                                f"its layout needs at least {k + n}.",
                                "This model family needs its own adapter.")
            # The model's own cell count: each piece's patch grid over the unshuffle factor.
            cells = [(int(h) // factor, int(w) // factor) for h, w in shapes[k:k + n]]
            if rows * cols > 1:
                pieces = tile_pieces(rows, cols, cells[0], cells[-1] if use_thumbnail else None)
                pieces = [Piece(p.role, p.box, *c) for p, c in zip(pieces, cells)]
            else:
                pieces = [Piece("full", FULL_BOX, *cells[0])]
            out.append(pieces)
            k += n
        return out
