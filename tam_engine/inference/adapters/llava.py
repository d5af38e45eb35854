"""LLaVA-1.5 (llava-hf layout): a CLIP patch grid per image, one ``<image>`` placeholder each.

Each image is resized/cropped to the tower's input size; its patch grid is
``(H / patch, W / patch)`` of ``pixel_values`` (24 x 24 for LLaVA-1.5 at 336 px). A video's frames
go in as images and are gathered into one grid with one slot per frame.

The CLIP processor resizes the shortest edge and then centre-crops (or, with ``do_pad``, first
pads the image to a square), so a grid covers only part of a non-square image (or more than
it): :func:`clip_box` computes that part from the processor's own settings.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from tam_engine.core.media import MediaItem
from tam_engine.core.spans import Box, VisionGrid
from tam_engine.inference.adapters.base import Adapter, SpanError, token_id


class LlavaAdapter(Adapter):
    family = "llava"
    model_types = ("llava",)
    title = "LLaVA-1.5 (llava-hf layout)"
    examples = ("llava-hf/llava-1.5-7b-hf",)
    media = ("image", "images", "video")
    notes = ("24 x 24 over the processor's centre crop (or padded square), drawn only there; a "
             "video's frames are images of one grid")


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
        grids, slots = self._frames_as_images(media, [(h, w)] * n_images, positions)
        ip = getattr(self.processor, "image_processor", None)
        boxes = [clip_box(ip, *media[g.media_index].frames.shape[1:3]) for g in grids]
        return [replace(g, box=b) for g, b in zip(grids, boxes)], slots


def _setting(obj: Any, name: str) -> Any:
    value = getattr(obj, name, None)
    return value if value is not None or not isinstance(obj, dict) else obj.get(name)


def clip_box(image_processor: Any, height: int, width: int) -> Box:
    """The part of a ``height x width`` image that a CLIP-style processor's output shows, as
    fractions of the image (beyond ``[0, 1]`` where it pads).

    The processor's own steps, in its order: optional padding to a centred square (``do_pad``,
    LLaVA's image processor), resizing (the shortest edge to ``size["shortest_edge"]``, the long
    edge to ``int(short * long / short_side)``; or to ``height x width``), then the centre crop
    of ``crop_size`` at offset ``(resized - crop) // 2`` (padded evenly where the crop is
    larger). Settings it cannot follow raise :class:`SpanError` rather than guess.
    """
    if image_processor is None:
        return (0.0, 0.0, 1.0, 1.0)
    # 1. Pad to a square: the canvas, in original pixels, starts at (-left, -top).
    cx0, cy0, cw, ch = 0.0, 0.0, float(width), float(height)
    if _setting(image_processor, "do_pad") and height != width:
        side = max(height, width)
        cx0, cy0, cw, ch = -float((side - width) // 2), -float((side - height) // 2), side, side
    # 2. Resize.
    rw, rh = int(cw), int(ch)
    size = _setting(image_processor, "size")
    if _setting(image_processor, "do_resize") is not False and size is not None:
        short = _setting(size, "shortest_edge")
        if short and not _setting(size, "longest_edge"):
            if rh <= rw:
                rh, rw = int(short), int(int(short) * rw / rh)
            else:
                rh, rw = int(int(short) * rh / rw), int(short)
        elif _setting(size, "height") and _setting(size, "width"):
            rh, rw = int(_setting(size, "height")), int(_setting(size, "width"))
        else:
            raise SpanError(f"Cannot follow this LLaVA image processor's resize setting {size}.",
                            "Use a checkpoint whose processor resizes by shortest_edge or to a "
                            "fixed height and width.")
    # 3. Centre crop, in resized pixels (negative offsets where the crop pads).
    x0, y0, x1, y1 = 0.0, 0.0, float(rw), float(rh)
    crop = _setting(image_processor, "crop_size")
    if _setting(image_processor, "do_center_crop") and crop is not None:
        kh, kw = int(_setting(crop, "height")), int(_setting(crop, "width"))
        left = (rw - kw) // 2 if kw <= rw else -((kw - rw) // 2)
        top = (rh - kh) // 2 if kh <= rh else -((kh - rh) // 2)
        x0, y0, x1, y1 = left, top, left + kw, top + kh
    # Resized canvas pixels -> original-image fractions.
    sx, sy = cw / rw, ch / rh
    return ((cx0 + x0 * sx) / width, (cy0 + y0 * sy) / height,
            (cx0 + x1 * sx) / width, (cy0 + y1 * sy) / height)
