"""InternVL3 / InternVL3.5 (-hf layout): dynamic tiling as the checkpoint's processor does it.

The processor cuts an image into ``rows x cols`` tiles of the tower's input size (the canvas
closest to the image's aspect ratio within its ``min_patches..max_patches``), row-major, then adds
a thumbnail of the whole image when there is more than one tile; each tile is pixel-shuffled to a
square grid (16 x 16 for 448-px tiles). All of an image's tokens form one run between ``<img>``
and ``</img>``. Videos are native: each frame is one tile, one slot per frame.
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


class InternVLAdapter(TiledAdapter):
    family = "internvl"
    native_video = True
    pieces_share_runs = True
    model_types = ("internvl",)
    title = "InternVL3 / InternVL3.5 (-hf layout)"
    examples = ("OpenGVLab/InternVL3-8B-hf", "OpenGVLab/InternVL3_5-2B-HF")
    media = ("image", "images", "video")
    tiling = True
    notes = ("16 x 16 per 448-px tile: the tiles stitched, plus a thumbnail, as the checkpoint's "
             "processor tiles; a video frame is one tile")


    def _video_kwargs(self, media: list[MediaItem]) -> dict[str, Any]:
        # The frames are already sampled by media_io; the processor must not resample them.
        return {"videos_kwargs": {"do_sample_frames": False}}


    def tile_cells(self) -> tuple[int, int]:
        """Cells per tile from the model: the tower's patch grid shrunk by the pixel shuffle."""
        vc = self.config.vision_config
        ratio = float(getattr(self.config, "downsample_ratio", 0.5))
        return square_cells(vc.image_size, vc.patch_size, 1.0 / ratio)

    def image_pieces(self, media: list[MediaItem], inputs: Any) -> list[list[Piece]]:
        settings = self.image_settings()
        cells = self.tile_cells()
        out = []
        for item in media:
            if item.kind == "image":
                rows, cols = gotocr2_tiles(self.processor, settings, *item.frames.shape[1:3])
                out.append(tile_pieces(rows, cols, cells, cells))
        return out

    def frame_cells(self, item: MediaItem, inputs: Any) -> tuple[int, int]:
        return self.tile_cells()
