"""Gemma 3: one square grid per image, and pan-and-scan crops when the checkpoint enables them.

Each image is squashed to the tower's input size and average-pooled to ``mm_tokens_per_image``
cells (16 x 16). The cells are the ``<image_soft_token>`` tokens between ``<start_of_image>`` and
``<end_of_image>``: the processor's ``image_token_id`` is ``<start_of_image>`` (the placeholder
in the prompt), so the cell token comes from the tokenizer. With pan-and-scan the processor
follows the whole image (the global view) with crops of it side by side, each squashed to its own
grid; the crops' boxes come from the image processor's own crop function.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from tam_engine.core.media import MediaItem
from tam_engine.core.spans import FULL_BOX, Box
from tam_engine.inference.adapters.base import SpanError
from tam_engine.inference.adapters.tiles import Piece, TiledAdapter, image_setting

_PAN_AND_SCAN = ("pan_and_scan_min_crop_size", "pan_and_scan_max_num_crops",
                 "pan_and_scan_min_ratio_to_activate")


class Gemma3Adapter(TiledAdapter):
    family = "gemma3"
    model_types = ("gemma3",)
    cell_token_owner = "tokenizer"
    cell_token_names = ("image_token_id", "image_token_index")
    title = "Gemma 3"
    examples = ("google/gemma-3-4b-it", "google/gemma-3-27b-it")
    tiling = True
    notes = ("16 x 16 per image; pan-and-scan crops side by side when the checkpoint enables "
             "them, plus the whole image")



    def images_kwargs(self) -> dict[str, Any]:
        """Pan-and-scan as the checkpoint's image processor config says: the processor's own
        defaults (off) would otherwise override it."""
        ip = self.processor.image_processor
        if not getattr(ip, "do_pan_and_scan", None):
            return {}
        kw: dict[str, Any] = {"do_pan_and_scan": True}
        kw.update({n: getattr(ip, n) for n in _PAN_AND_SCAN if getattr(ip, n, None) is not None})
        return kw

    def cells(self) -> tuple[int, int]:
        n = int(self.config.mm_tokens_per_image)
        side = math.isqrt(n)
        if side * side != n:
            raise SpanError(f"gemma3: {n} tokens per image do not form a square grid.",
                            "This model family needs its own adapter.")
        return side, side

    def image_pieces(self, media: list[MediaItem], inputs: Any) -> list[list[Piece]]:
        settings = self.image_settings()
        cells = self.cells()
        out = []
        for item in media:
            if item.kind != "image":
                continue
            crops = self.crop_boxes(settings, *item.frames.shape[1:3])
            if not crops:
                out.append([Piece("full", FULL_BOX, *cells)])
            else:
                out.append([Piece("thumbnail", FULL_BOX, *cells)] +
                           [Piece("tile", box, *cells) for box in crops])
        return out

    def crop_boxes(self, settings: dict[str, Any], height: int, width: int) -> list[Box]:
        """The pan-and-scan crops of a ``height x width`` image, as boxes of the frame.

        The image processor's own crop function is run on two coordinate maps (each pixel's
        row, then its column: broadcast views, no memory), so each crop tells where it was cut.
        """
        if not image_setting(self.processor, settings, "do_pan_and_scan", False):
            return []
        ip = self.processor.image_processor
        kw = {n: image_setting(self.processor, settings, n) for n in _PAN_AND_SCAN}
        if hasattr(ip, "pan_and_scan_batched"):  # the torchvision backend
            import torch

            rows: Any = torch.arange(height).view(1, height, 1).expand(1, height, width)
            cols: Any = torch.arange(width).view(1, 1, width).expand(1, height, width)
            cut = ip.pan_and_scan_batched
        else:  # the PIL backend, one channels-first array at a time
            rows = np.broadcast_to(np.arange(height).reshape(1, height, 1), (1, height, width))
            cols = np.broadcast_to(np.arange(width).reshape(1, 1, width), (1, height, width))
            cut = ip.pan_and_scan
        return [(int(x[0, 0, 0]) / width, int(y[0, 0, 0]) / height,
                 (int(x[0, 0, -1]) + 1) / width, (int(y[0, -1, 0]) + 1) / height)
                for y, x in zip(cut(rows, **kw), cut(cols, **kw))]
