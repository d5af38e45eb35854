"""Aya Vision: GotOcr2 tiling, each tile labelled.

The processor cuts an image into ``rows x cols`` tiles as InternVL's does (the canvas closest
to the image's aspect ratio), row-major, plus a thumbnail of the whole image when there is more
than one tile; the text labels them ``TILE_1 ... TILE_GLOBAL`` between ``<|START_OF_IMG|>`` and
``<|END_OF_IMG|>``, each followed by its ``<|IMG_PATCH|>`` cells (13 x 13 for 364-px tiles after
the 2 x 2 pixel shuffle).
"""

from __future__ import annotations

from typing import Any

from tam_engine.core.media import MediaItem
from tam_engine.inference.adapters.tiles import (
    Piece,
    TiledAdapter,
    gotocr2_tiles,
    square_cells,
    tile_pieces,
)


class AyaVisionAdapter(TiledAdapter):
    family = "aya_vision"
    model_types = ("aya_vision",)
    cell_token_names = ("image_token_id", "image_token_index")
    title = "Aya Vision"
    examples = ("CohereLabs/aya-vision-8b",)
    tiling = True
    notes = "13 x 13 per 364-px tile, the tiles stitched, plus a thumbnail"



    def tile_cells(self) -> tuple[int, int]:
        vc = self.config.vision_config
        return square_cells(vc.image_size, vc.patch_size,
                            float(getattr(self.config, "downsample_factor", 1)))

    def image_pieces(self, media: list[MediaItem], inputs: Any) -> list[list[Piece]]:
        settings = self.image_settings()
        cells = self.tile_cells()
        return [tile_pieces(*gotocr2_tiles(self.processor, settings, *item.frames.shape[1:3]),
                            cells, cells)
                for item in media if item.kind == "image"]
