"""Mistral 3 (Mistral-Small-3.x, -hf layout): Pixtral-style images of any aspect ratio.

The processor shrinks an image to fit its longest edge and rounds each side up to a multiple of
``patch x merge`` pixels (``image_sizes`` holds the result); the vision tower cuts it into
patches and the model merges ``merge x merge`` patches into one token, row by row. In the
sequence every row of ``[IMG]`` tokens ends with ``[IMG_BREAK]``, the last with ``[IMG_END]``:
the separators belong to no cell, so a grid holds only the ``[IMG]`` positions.

Where a side is not a multiple of ``patch x merge`` the merge drops the remainder: the grid then
covers the image's top-left part, and its box says so. A video's frames go in as images.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tam_engine.core.media import MediaItem
from tam_engine.core.spans import VisionGrid, VisionKind
from tam_engine.inference.adapters.base import Adapter, SpanError, token_id


class Mistral3Adapter(Adapter):
    family = "mistral3"
    model_types = ("mistral3",)
    title = "Mistral 3"
    examples = ("mistralai/Mistral-Small-3.1-24B-Instruct-2503",
                "mistralai/Mistral-Small-3.2-24B-Instruct-2506")
    media = ("image", "images", "video")
    notes = ("(H / 28) x (W / 28) per image at its processed size (patch 14, 2 x 2 merge); "
             "a video's frames are images of one grid")


    def _pixels_per_token(self) -> int:
        """The side, in processed pixels, of what one token sees: the model's own patch size
        times its spatial merge (the processor's as a fallback)."""
        vc = getattr(self.config, "vision_config", None)
        patch = getattr(vc, "patch_size", None) or getattr(self.processor, "patch_size", None)
        merge = (getattr(self.config, "spatial_merge_size", None)
                 or getattr(self.processor, "spatial_merge_size", None) or 1)
        if not patch:
            raise SpanError("This Mistral 3 checkpoint gives no patch size.",
                            "Check that the config and processor files are complete.")
        return int(patch) * int(merge)

    def _image_grids(self, inputs: Any, ids: np.ndarray, n_images: int
                     ) -> list[tuple[np.ndarray, int, int, tuple[float, float, float, float]]]:
        """Per processed image: its ``[IMG]`` positions, grid ``(h, w)`` and box."""
        image_id = token_id(self.processor, self.config, "image_token_id", "image_token_index")
        break_id = token_id(self.processor, None, "image_break_token_id")
        end_id = token_id(self.processor, None, "image_end_token_id")
        if image_id is None or break_id is None or end_id is None:
            raise SpanError("This Mistral 3 processor names no [IMG]/[IMG_BREAK]/[IMG_END] token.",
                            "Check that the processor files are complete.")
        sizes = inputs.get("image_sizes")
        sizes = np.zeros((0, 2), np.int64) if sizes is None else np.asarray(
            sizes.cpu().numpy() if hasattr(sizes, "cpu") else sizes, dtype=np.int64).reshape(-1, 2)
        ends = np.flatnonzero(ids == end_id)
        if len(sizes) != n_images or ends.size != n_images:
            raise SpanError(
                f"Mistral 3: {n_images} images were given but the processor reports "
                f"{len(sizes)} image sizes and {ends.size} [IMG_END] tokens.",
                "This checkpoint's processor differs from Mistral 3's; please report it.")
        q = self._pixels_per_token()
        out, start = [], 0
        for j, end in enumerate(ends):
            segment = ids[start:end]
            pos = start + np.flatnonzero(segment == image_id)
            rows = int(np.count_nonzero(segment == break_id)) + 1
            h, w = (int(v) for v in sizes[j])
            gh, gw = h // q, w // q
            if pos.size != gh * gw or rows != gh:
                raise SpanError(
                    f"Mistral 3: image {j + 1} has {pos.size} image tokens in {rows} rows, but "
                    f"the vision tower gives {gh} x {gw} = {gh * gw} for its {h} x {w} pixels.",
                    "This checkpoint's processor and vision config disagree; please report it.")
            # The merge keeps whole (q x q)-pixel blocks: the grid covers that much of the image.
            out.append((pos, gh, gw, (0.0, 0.0, gw * q / w, gh * q / h)))
            start = int(end) + 1
        return out

    def _grids(self, media: list[MediaItem], inputs: Any, ids: np.ndarray
               ) -> tuple[list[VisionGrid], list[np.ndarray]]:
        per_image = self._image_grids(inputs, ids, sum(m.n_frames for m in media))
        grids, slots, j = [], [], 0
        for mi, item in enumerate(media):
            frames = per_image[j:j + item.n_frames]
            j += item.n_frames
            if len({(h, w, box) for _, h, w, box in frames}) != 1:
                raise SpanError(f"Mistral 3: the frames of video {mi + 1} were processed at "
                                "different sizes.", "Please report this video and model.")
            _, h, w, box = frames[0]
            kind: VisionKind = "video" if item.kind == "video" else "image"
            grids.append(VisionGrid(kind=kind, media_index=mi, t=item.n_frames, h=h, w=w,
                                    positions=np.concatenate([p for p, *_ in frames]), box=box))
            slots.append(np.arange(item.n_frames, dtype=np.int64))
        return grids, slots
