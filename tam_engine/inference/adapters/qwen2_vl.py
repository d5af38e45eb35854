"""Qwen2-VL and Qwen2.5-VL: dynamic-resolution images and native video.

The processor reports each image's patch grid in ``image_grid_thw`` (each video's in
``video_grid_thw``); the model merges ``merge x merge`` patches into one token, so the map grid is
``(t, h / merge, w / merge)``. A video's ``temporal_patch_size`` consecutive frames share one
temporal slot.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tam_engine.core.media import MediaItem
from tam_engine.core.spans import VisionGrid
from tam_engine.inference.adapters.base import Adapter, SpanError, token_id
from tam_engine.inference.settings import GenerationSettings


class Qwen2VLAdapter(Adapter):
    family = "qwen2_vl"
    native_video = True
    model_types: tuple[str, ...] = ("qwen2_vl",)
    title = "Qwen2-VL"
    examples = ("Qwen/Qwen2-VL-2B-Instruct", "Qwen/Qwen2-VL-7B-Instruct")
    media = ("image", "images", "video")
    notes = ("`image_grid_thw / (1, 2, 2)` per image; one map per temporal slot (2 frames) "
             "for video")

    @classmethod
    def supports(cls, config: Any) -> bool:
        return getattr(config, "model_type", None) in cls.model_types

    # ------------------------------------------------------------------ geometry
    def _vision_attr(self, name: str, default: int) -> int:
        vc = getattr(self.config, "vision_config", None)
        return int(getattr(vc, name, default) or default)

    def merge_size(self, video: bool = False) -> int:
        proc = getattr(self.processor, "video_processor" if video else "image_processor", None)
        value = getattr(proc, "merge_size", None)
        return int(value) if value else self._vision_attr("spatial_merge_size", 2)

    def temporal_patch_size(self) -> int:
        value = getattr(getattr(self.processor, "video_processor", None),
                        "temporal_patch_size", None)
        return int(value) if value else self._vision_attr("temporal_patch_size", 2)

    # ------------------------------------------------------------------ processor call
    def _processor_kwargs(self, settings: GenerationSettings) -> dict[str, Any]:
        if settings.min_pixels is None and settings.max_pixels is None:
            return {}
        size = dict(getattr(self.processor.image_processor, "size", {}) or {})
        if settings.min_pixels is not None:
            size["shortest_edge"] = int(settings.min_pixels)
        if settings.max_pixels is not None:
            size["longest_edge"] = int(settings.max_pixels)
        return {"images_kwargs": {"size": size}, "videos_kwargs": {"size": size}}

    def _video_kwargs(self, media: list[MediaItem]) -> dict[str, Any]:
        # The frames are already sampled by media_io; the processor must not resample them.
        fps = [m.fps for m in media if m.kind == "video"]
        kw: dict[str, Any] = {"do_sample_frames": False}
        if fps and all(f > 0 for f in fps):
            kw["fps"] = fps[0] if len(fps) == 1 else fps
        vp = getattr(self.processor, "video_processor", None)
        if vp is not None and getattr(vp, "cap_pixels_per_frame", False) is None:
            # Bound a video's total pixels as Qwen's reference code (qwen-vl-utils) does.
            kw["cap_pixels_per_frame"] = True
        return kw

    # ------------------------------------------------------------------ spans
    def _grids(self, media: list[MediaItem], inputs: Any, ids: np.ndarray
               ) -> tuple[list[VisionGrid], list[np.ndarray]]:
        image_id = token_id(self.processor, self.config, "image_token_id")
        video_id = token_id(self.processor, self.config, "video_token_id")
        if image_id is None or video_id is None:
            raise SpanError("This Qwen-VL checkpoint names no image/video token.",
                            "Check that the processor files are complete.")
        image_pos = np.flatnonzero(ids == image_id)
        video_pos = np.flatnonzero(ids == video_id)
        image_thw = _rows(inputs.get("image_grid_thw"))
        video_thw = _rows(inputs.get("video_grid_thw"))
        grids: list[VisionGrid] = []
        slots: list[np.ndarray] = []
        ii = vi = 0
        i_start = v_start = 0
        for mi, item in enumerate(media):
            video = item.kind == "video"
            thw = video_thw[vi] if video else image_thw[ii]
            m = self.merge_size(video)
            t, h, w = int(thw[0]), int(thw[1]) // m, int(thw[2]) // m
            if video:
                pos = self._take(video_pos, v_start, t * h * w, "video")
                v_start += t * h * w
                vi += 1
                tps = self.temporal_patch_size()
                slot = np.minimum(np.arange(item.n_frames) // tps, t - 1)
            else:
                pos = self._take(image_pos, i_start, t * h * w, "image")
                i_start += t * h * w
                ii += 1
                slot = np.zeros(item.n_frames, dtype=np.int64)
            grids.append(VisionGrid(kind=item.kind, media_index=mi, t=t, h=h, w=w,
                                    positions=pos))
            slots.append(slot.astype(np.int64))
        if i_start != image_pos.size or v_start != video_pos.size:
            raise SpanError("The processor produced more vision tokens than its grids need.",
                            "This model family needs its own adapter.")
        return grids, slots


class Qwen2_5_VLAdapter(Qwen2VLAdapter):  # noqa: N801 - the family's own spelling
    family = "qwen2_5_vl"
    model_types = ("qwen2_5_vl",)
    title = "Qwen2.5-VL"
    examples = ("Qwen/Qwen2.5-VL-3B-Instruct", "Qwen/Qwen2.5-VL-7B-Instruct")
    notes = "as Qwen2-VL"


def _rows(value: Any) -> np.ndarray:
    if value is None:
        return np.zeros((0, 3), dtype=np.int64)
    arr = value.cpu().numpy() if hasattr(value, "cpu") else np.asarray(value)
    return arr.reshape(-1, 3).astype(np.int64)
