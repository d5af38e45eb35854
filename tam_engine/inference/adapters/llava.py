"""LLaVA-1.5 (llava-hf layout): a CLIP patch grid per image, one ``<image>`` placeholder each.

Each image is resized/cropped to the tower's input size; its patch grid is
``(H / patch, W / patch)`` of ``pixel_values`` (24 x 24 for LLaVA-1.5 at 336 px). A video's frames
go in as images and are gathered into one grid with one slot per frame.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tam_engine.core.media import MediaItem
from tam_engine.core.spans import VisionGrid
from tam_engine.inference.adapters.base import Adapter, SpanError, token_id


class LlavaAdapter(Adapter):
    family = "llava"
    model_types: tuple[str, ...] = ("llava",)
    title = "LLaVA-1.5 (llava-hf layout)"
    examples = ("llava-hf/llava-1.5-7b-hf",)
    media = ("image", "images", "video")
    notes = "24 x 24; a video's frames are images of one grid"

    @classmethod
    def supports(cls, config: Any) -> bool:
        return getattr(config, "model_type", None) in cls.model_types

    def image_token_id(self) -> int:
        tid = token_id(self.processor, self.config, "image_token_id", "image_token_index")
        if tid is None:
            raise SpanError("This LLaVA checkpoint names no image token.",
                            "Check that the processor files are complete.")
        return tid

    def patch_size(self) -> int:
        ps: Any = getattr(self.processor, "patch_size", None) or getattr(
            getattr(self.config, "vision_config", None), "patch_size", None)
        return int(ps or 14)

    def _grids(self, media: list[MediaItem], inputs: Any, ids: np.ndarray
               ) -> tuple[list[VisionGrid], list[np.ndarray]]:
        positions = np.flatnonzero(ids == self.image_token_id())
        pv = inputs["pixel_values"]
        n_images = int(pv.shape[0])
        ps = self.patch_size()
        h, w = int(pv.shape[-2]) // ps, int(pv.shape[-1]) // ps
        per = positions.size // max(n_images, 1)
        if per * n_images != positions.size:
            raise SpanError("The image tokens do not split evenly between the images.",
                            "This model family needs its own adapter.")
        if per == h * w + 1:
            # "full" feature selection keeps the CLS token first: it has no place on the grid.
            keep = np.ones(positions.size, dtype=bool)
            keep[::per] = False
            positions = positions[keep]
        elif per != h * w:
            raise SpanError(f"{per} tokens per image do not match the {h}x{w} patch grid.",
                            "This model family needs its own adapter.")
        return self._frames_as_images(media, [(h, w)] * n_images, positions)
