"""Any other image-text-to-text model whose processor has an image token and a patch grid.

The image token's positions are split per image into contiguous runs; each run's grid comes
from ``pixel_values`` and the processor's ``patch_size`` when they agree, else from a square
token count. Videos go in as frames.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tam_engine.core.media import MediaItem
from tam_engine.core.spans import VisionGrid
from tam_engine.inference.adapters.base import Adapter, SpanError, token_id


class GenericAdapter(Adapter):
    family = "generic"

    @classmethod
    def supports(cls, config: Any) -> bool:
        from transformers.models.auto.modeling_auto import (
            MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES,
        )

        return (getattr(config, "vision_config", None) is not None
                and getattr(config, "model_type", None) in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES)

    def _grids(self, media: list[MediaItem], inputs: Any, ids: np.ndarray
               ) -> tuple[list[VisionGrid], list[np.ndarray]]:
        tid = token_id(self.processor, self.config, "image_token_id", "image_token_index")
        if tid is None:
            raise SpanError("The processor names no image token.",
                            "This model family needs its own adapter.")
        positions = np.flatnonzero(ids == tid)
        n_images = sum(m.n_frames if m.kind == "video" else 1 for m in media)
        if n_images == 0 or positions.size % n_images:
            raise SpanError("The image tokens do not split evenly between the images.",
                            "This model family needs its own adapter.")
        per = positions.size // n_images
        shape = None
        pv = inputs.get("pixel_values")
        ps = getattr(self.processor, "patch_size", None)
        if pv is not None and ps and getattr(pv, "ndim", 0) == 4:
            h, w = int(pv.shape[-2]) // int(ps), int(pv.shape[-1]) // int(ps)
            shape = (h, w) if h * w == per else None
        shape = shape or self._square(per)
        return self._frames_as_images(media, [shape] * n_images, positions)
