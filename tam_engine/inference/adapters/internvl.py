"""InternVL3 (-hf layout): one 448-px tile per image, pixel-shuffled to a 16 x 16 token grid.

The processor can also cut an image into several tiles plus a thumbnail; the adapter asks for a
single tile per image (``crop_to_patches=False``), the setting the TAM paper's maps use, so each
image has one square grid. Videos are native: each frame is one tile, one slot per frame.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tam_engine.core.media import MediaItem
from tam_engine.core.spans import VisionGrid
from tam_engine.inference.adapters.base import Adapter, SpanError, token_id
from tam_engine.inference.settings import GenerationSettings


class InternVLAdapter(Adapter):
    family = "internvl"
    native_video = True
    model_types: tuple[str, ...] = ("internvl",)
    title = "InternVL3 (-hf layout)"
    examples = ("OpenGVLab/InternVL3-1B-hf",)
    media = ("image", "images", "video")
    notes = "16 x 16 per 448-px tile (one tile per image)"

    @classmethod
    def supports(cls, config: Any) -> bool:
        return getattr(config, "model_type", None) in cls.model_types

    def _processor_kwargs(self, settings: GenerationSettings) -> dict[str, Any]:
        return {"images_kwargs": {"crop_to_patches": False}}

    def _video_kwargs(self, media: list[MediaItem]) -> dict[str, Any]:
        return {"videos_kwargs": {"do_sample_frames": False}}

    def _grids(self, media: list[MediaItem], inputs: Any, ids: np.ndarray
               ) -> tuple[list[VisionGrid], list[np.ndarray]]:
        tid = token_id(self.processor, self.config, "image_token_id")
        if tid is None:
            raise SpanError("This InternVL checkpoint names no image token.",
                            "Check that the processor files are complete.")
        positions = np.flatnonzero(ids == tid)
        seq = getattr(self.processor, "image_seq_length", None) or getattr(
            self.config, "image_seq_length", None)
        if not seq:
            raise SpanError("This InternVL checkpoint gives no image_seq_length.",
                            "Check that the processor files are complete.")
        h, w = self._square(int(seq))
        per_tile = [(h, w)] * (positions.size // (h * w))
        # Natively processed videos and single-tile images both give one tile per frame.
        return self._frames_as_images(media, per_tile, positions)
