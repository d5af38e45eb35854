"""Idefics3 and SmolVLM: an image split into rows x cols tiles plus a global image.

The processor resizes the image (longest edge to ``size``), stretches it to whole tiles of
``max_image_size`` and splits it row-major; each tile is written ``<fake_token_around_image>
<row_r_col_c>`` + its cells, and the global image (the whole image squashed to one tile) comes
last, after ``<global-img>``. A small image is the global image alone. Every tile is
pixel-shuffled to a square grid (13 x 13 for Idefics3, 8 x 8 for SmolVLM). SmolVLM has a video
path: each frame is one global-image block after its timestamp.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from tam_engine.core.media import MediaItem
from tam_engine.inference.adapters.tiles import Piece, TiledAdapter, square_cells, tile_pieces


class Idefics3Adapter(TiledAdapter):
    family = "idefics3"
    model_types = ("idefics3",)
    title = "Idefics3"
    examples: ClassVar[tuple[str, ...]] = ("HuggingFaceM4/Idefics3-8B-Llama3",
                                           "HuggingFaceTB/SmolVLM-Instruct")
    tiling = True
    notes = "13 x 13 per 364-px tile, the tiles stitched, plus the global image"



    def tile_cells(self) -> tuple[int, int]:
        """Cells per tile from the model: the tower's patch grid shrunk by the connector's
        pixel shuffle (``scale_factor``)."""
        vc = self.config.vision_config
        return square_cells(vc.image_size, vc.patch_size, float(self.config.scale_factor))

    def image_pieces(self, media: list[MediaItem], inputs: Any) -> list[list[Piece]]:
        settings = self.image_settings()
        image_processor = self.processor.image_processor
        cells = self.tile_cells()
        out = []
        for item in media:
            if item.kind == "image":
                _, rows, cols = image_processor.get_number_of_image_patches(
                    *item.frames.shape[1:3], settings)
                # (0, 0): not split, the global image alone.
                out.append(tile_pieces(int(rows), int(cols), cells, cells))
        return out


class SmolVLMAdapter(Idefics3Adapter):
    family = "smolvlm"
    native_video = True
    model_types = ("smolvlm",)
    title = "SmolVLM2"
    examples = ("HuggingFaceTB/SmolVLM2-2.2B-Instruct", "HuggingFaceTB/SmolVLM2-500M-Video-Instruct")
    media = ("image", "images", "video")
    notes = ("a square grid per tile (8 x 8 at 512 px), the tiles stitched, plus the global "
             "image; a video frame is one global image with its timestamp (needs num2words)")

    def frame_cells(self, item: MediaItem, inputs: Any) -> tuple[int, int]:
        # Each frame is squashed to one tile, written as a global-image block.
        return self.tile_cells()

    def _video_kwargs(self, media: list[MediaItem]) -> dict[str, Any]:
        """The frames are already sampled: the processor must keep them, and it writes each
        frame's timestamp into the prompt, so it gets the sampling times."""
        from transformers.video_utils import VideoMetadata

        metadata = []
        for item in media:
            if item.kind != "video":
                continue
            fps = item.fps if item.fps > 0 else 1.0
            indices = np.round(item.timestamps * fps).astype(int).tolist()
            metadata.append(VideoMetadata(total_num_frames=max(indices) + 1, fps=fps,
                                          frames_indices=indices,
                                          duration=float(item.timestamps[-1]) + 1.0 / fps,
                                          height=int(item.frames.shape[1]),
                                          width=int(item.frames.shape[2])))
        return {"videos_kwargs": {"do_sample_frames": False, "video_metadata": metadata}}
