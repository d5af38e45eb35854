"""Qwen2-VL and Qwen2.5-VL: dynamic-resolution images and native video.

The processor reports each image's patch grid in ``image_grid_thw`` (each video's in
``video_grid_thw``); the model merges ``merge x merge`` patches into one token, so the map grid is
``(t, h / merge, w / merge)``. A video's ``temporal_patch_size`` consecutive frames share one
temporal slot. The processor only resizes (no crop, no padding), so every grid shows the whole
frame. Every grid's token count in the sequence is checked against its grid.

:class:`Qwen2VLAdapter` is also the base of the other ``*_grid_thw`` families (Qwen3-VL,
Qwen3.5, GLM-4V), which differ only in how a video is written and how frames are passed.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from tam_engine.core.media import MediaItem
from tam_engine.core.spans import VisionGrid
from tam_engine.inference.adapters.base import Adapter, SpanError, token_id
from tam_engine.inference.settings import GenerationSettings


class Qwen2VLAdapter(Adapter):
    family = "qwen2_vl"
    native_video = True
    model_types = ("qwen2_vl",)
    title = "Qwen2-VL"
    examples: ClassVar[tuple[str, ...]] = ("Qwen/Qwen2-VL-2B-Instruct",
                                           "Qwen/Qwen2-VL-7B-Instruct")
    media = ("image", "images", "video")
    notes = ("`image_grid_thw / (1, 2, 2)` per image; one map per temporal slot (2 frames) "
             "for video")
    #: A video is one run of video tokens per temporal slot (between timestamps), not one run.
    video_run_per_slot: ClassVar[bool] = False


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
    def _vision_runs(self, ids: np.ndarray) -> dict[str, list[np.ndarray]]:
        """The contiguous runs of vision tokens in the sequence, per media kind, in order."""
        image_id = token_id(self.processor, self.config, "image_token_id")
        video_id = token_id(self.processor, self.config, "video_token_id")
        if image_id is None or video_id is None:
            raise SpanError(f"This {self.family} checkpoint names no image/video token.",
                            "Check that the processor files are complete.")
        return {"image": contiguous_runs(np.flatnonzero(ids == image_id)),
                "video": contiguous_runs(np.flatnonzero(ids == video_id))}

    def _pool(self, kind: str) -> str:
        """Which run list of :meth:`_vision_runs` a media kind's tokens come from."""
        return kind

    def _grids(self, media: list[MediaItem], inputs: Any, ids: np.ndarray
               ) -> tuple[list[VisionGrid], list[np.ndarray]]:
        runs = self._vision_runs(ids)
        used = dict.fromkeys(runs, 0)
        thw = {"image": _rows(inputs.get("image_grid_thw")),
               "video": _rows(inputs.get("video_grid_thw"))}
        counts = {"image": 0, "video": 0}
        grids: list[VisionGrid] = []
        slots: list[np.ndarray] = []
        for mi, item in enumerate(media):
            kind = item.kind
            number = counts[kind] = counts[kind] + 1
            name = f"{kind} {number}"
            if number > len(thw[kind]):
                raise SpanError(f"{self.family}: the processor gave no grid for {name}.",
                                "This model family needs its own adapter.")
            t, h, w = self._map_grid(thw[kind][number - 1], kind == "video", name)
            pool = self._pool(kind)
            # Qwen2-VL writes a video as one run of t*h*w tokens; the timestamped families
            # write one run of h*w per temporal slot.
            n_runs = t if kind == "video" and self.video_run_per_slot else 1
            mine = runs[pool][used[pool]:used[pool] + n_runs]
            used[pool] += n_runs
            got = sum(r.size for r in mine)
            if len(mine) < n_runs or got != t * h * w or any(r.size * n_runs != got for r in mine):
                raise SpanError(
                    f"{self.family}: {name} has {got} vision tokens in the sequence, but its "
                    f"{t}x{h}x{w} grid from the processor needs {t * h * w}.",
                    "The processor and the model disagree; check the checkpoint's processor "
                    "files.")
            slot = np.zeros(item.n_frames, dtype=np.int64)
            if kind == "video":
                slot = self._frame_slots(item.n_frames, t, name)
            grids.append(VisionGrid(kind=kind, media_index=mi, t=t, h=h, w=w,
                                    positions=np.concatenate(mine)))
            slots.append(slot)
        extra = sum(r.size for pool, rs in runs.items() for r in rs[used[pool]:])
        if extra:
            raise SpanError(f"{self.family}: the sequence has {extra} vision tokens that belong "
                            "to no image or video.", "This model family needs its own adapter.")
        return grids, slots

    def _map_grid(self, thw: np.ndarray, video: bool, name: str) -> tuple[int, int, int]:
        """``(t, h, w)`` of the map: the patch grid with ``merge x merge`` patches per token."""
        m = self.merge_size(video)
        t, gh, gw = (int(v) for v in thw)
        if gh % m or gw % m:
            raise SpanError(f"{self.family}: the {gh}x{gw} patch grid of {name} does not "
                            f"merge by {m}.", "Check the checkpoint's processor files.")
        return t, gh // m, gw // m

    def _frame_slots(self, n_frames: int, t: int, name: str) -> np.ndarray:
        """Displayed frame -> temporal slot: ``temporal_patch_size`` consecutive frames share
        one slot (the processor pads the last slot by repeating the last frame)."""
        tps = self.temporal_patch_size()
        if t != -(-n_frames // tps):
            raise SpanError(f"{self.family}: {name} has {n_frames} frames but the processor "
                            f"kept {t} temporal slots of {tps} frames.",
                            "The processor resampled the frames; this model family needs its "
                            "own adapter.")
        return (np.arange(n_frames) // tps).astype(np.int64)


class Qwen2_5_VLAdapter(Qwen2VLAdapter):  # noqa: N801 - the family's own spelling
    family = "qwen2_5_vl"
    model_types = ("qwen2_5_vl",)
    title = "Qwen2.5-VL"
    examples = ("Qwen/Qwen2.5-VL-3B-Instruct", "Qwen/Qwen2.5-VL-7B-Instruct")
    notes = "as Qwen2-VL"


def contiguous_runs(positions: np.ndarray) -> list[np.ndarray]:
    """``positions`` (ascending) split into runs of consecutive positions."""
    if positions.size == 0:
        return []
    return np.split(positions, np.flatnonzero(np.diff(positions) != 1) + 1)


def _rows(value: Any) -> np.ndarray:
    if value is None:
        return np.zeros((0, 3), dtype=np.int64)
    arr = value.cpu().numpy() if hasattr(value, "cpu") else np.asarray(value)
    return arr.reshape(-1, 3).astype(np.int64)
