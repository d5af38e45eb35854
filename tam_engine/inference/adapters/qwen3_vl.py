"""Qwen3-VL, Qwen3-VL-MoE, Qwen3.5 and Qwen3.5-MoE: Qwen2-VL's grids with timestamped video.

They share ``Qwen3VLProcessor``: images exactly as Qwen2-VL (``image_grid_thw``, merge 2, resize
only, so each grid shows the whole frame). A video is written as one block per temporal slot,
``<t seconds><|vision_start|> h*w x <|video_pad|> <|vision_end|>``, the timestamps taken from
the video's metadata; the displayed frames are passed as they are (never resampled) with their
own times, so the map's slots are exactly the frames shown.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, ClassVar

import numpy as np

from tam_engine.core.media import MediaItem
from tam_engine.inference.adapters.base import Prepared
from tam_engine.inference.adapters.qwen2_vl import Qwen2VLAdapter
from tam_engine.inference.settings import GenerationSettings


class Qwen3VLAdapter(Qwen2VLAdapter):
    family = "qwen3_vl"
    model_types = ("qwen3_vl",)
    title = "Qwen3-VL"
    examples: ClassVar[tuple[str, ...]] = ("Qwen/Qwen3-VL-2B-Instruct",
                                           "Qwen/Qwen3-VL-8B-Instruct")
    notes = ("`image_grid_thw / (1, 2, 2)` per image (16-px patches); one map per temporal "
             "slot (2 frames) for video, each with its timestamp")
    video_run_per_slot: ClassVar[bool] = True

    def prepare(self, media: list[MediaItem], prompt: str,
                settings: GenerationSettings | None = None) -> Prepared:
        # These video processors refuse a clip shorter than one temporal slot; repeat its last
        # frame to fill the slot, as the processor itself pads a partial last slot.
        tps = self.temporal_patch_size()
        if all(item.kind != "video" or item.n_frames >= tps for item in media):
            return super().prepare(media, prompt, settings)
        padded = [_pad_frames(item, tps) if item.kind == "video" else item for item in media]
        prepared = super().prepare(padded, prompt, settings)
        prepared.media = [replace(item, frame_slot=done.frame_slot[:item.n_frames])
                          for item, done in zip(media, prepared.media)]
        return prepared

    def _processor_kwargs(self, settings: GenerationSettings) -> dict[str, Any]:
        # Images only: these video processors bound a video's pixels over all its frames
        # together, so an image's limits would shrink every frame; videos keep the
        # checkpoint's own limits.
        kwargs = super()._processor_kwargs(settings)
        kwargs.pop("videos_kwargs", None)
        return kwargs

    def _video_kwargs(self, media: list[MediaItem]) -> dict[str, Any]:
        # As Qwen2-VL (frames never resampled, the reference per-frame pixel cap), but the
        # timestamps come from the metadata: the processor writes frames_indices / fps, so
        # with fps 1 and the frames' own times as "indices" it writes exactly the displayed
        # frames' times.
        kwargs = super()._video_kwargs(media)
        kwargs.pop("fps", None)
        kwargs["video_metadata"] = [
            {"total_num_frames": item.n_frames, "fps": 1.0,
             "frames_indices": [float(s) for s in item.timestamps],
             "height": item.size[1], "width": item.size[0]}
            for item in media if item.kind == "video"]
        return kwargs


class Qwen3VLMoeAdapter(Qwen3VLAdapter):
    family = "qwen3_vl_moe"
    model_types = ("qwen3_vl_moe",)
    title = "Qwen3-VL-MoE"
    examples = ("Qwen/Qwen3-VL-30B-A3B-Instruct",)
    notes = "as Qwen3-VL"


class Qwen3_5Adapter(Qwen3VLAdapter):  # noqa: N801 - the family's own spelling
    family = "qwen3_5"
    model_types = ("qwen3_5",)
    title = "Qwen3.5"
    examples = ("Qwen/Qwen3.5-2B", "Qwen/Qwen3.5-9B", "Qwen/Qwen3.5-27B")
    notes = "as Qwen3-VL"


class Qwen3_5MoeAdapter(Qwen3VLAdapter):  # noqa: N801 - the family's own spelling
    family = "qwen3_5_moe"
    model_types = ("qwen3_5_moe",)
    title = "Qwen3.5-MoE"
    examples = ("Qwen/Qwen3.5-35B-A3B", "Qwen/Qwen3.5-122B-A10B")
    notes = "as Qwen3-VL"


def _pad_frames(item: MediaItem, n: int) -> MediaItem:
    """``item`` with its last frame repeated up to ``n`` frames (unchanged if it has enough)."""
    extra = n - item.n_frames
    if extra <= 0:
        return item
    last = np.arange(item.n_frames + extra).clip(max=item.n_frames - 1)
    return replace(item, frames=item.frames[last], frame_slot=np.arange(last.size),
                   timestamps=item.timestamps[last])
