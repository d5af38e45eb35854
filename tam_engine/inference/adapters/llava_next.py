"""LLaVA-NeXT, LLaVA-OneVision and LLaVA-NeXT-Video: "anyres" tiling with a thumbnail.

Each image becomes two grids, in sequence order:

* the thumbnail (role ``"thumbnail"``): the whole image resized to one tile, ``f x f`` cells
  (``f`` = the vision tower's input side / its patch size);
* the high-resolution tiles (role ``"tile"``): the processor resizes the image into the best of
  the checkpoint's grid resolutions (``select_best_resolution``), pads it there and cuts it into
  tiles; the model stitches the tiles' features into one canvas and cuts the padding away again
  (``unpad_image``). The grid is that unpadded canvas, its box the part of the original image it
  covers. The model ends every canvas row with one ``image_newline`` token: those tokens saw no
  pixels of their own and belong to no cell.

LLaVA-OneVision shrinks a canvas larger than ``anyres_max_N`` tiles bilinearly (same box, fewer
cells) and, for several images in one prompt, gives each image one grid of its padded square
plus one newline token instead of tiles. Videos: LLaVA-NeXT-Video resizes and centre-crops each
frame, then average-pools its patch grid; OneVision squashes each frame, halves its patch grid
bilinearly and ends the video with one newline token. LLaVA-NeXT has no video path: a video's
frames go in as images, each tiled like an image.

The layouts come from the model's own helpers; every image's and video's token count is checked
against the number of placeholders the processor gave it.
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from tam_engine.core.media import MediaItem
from tam_engine.core.spans import FULL_BOX, Box, GridRole, VisionGrid
from tam_engine.inference.adapters.base import Adapter, SpanError, token_id

_HINT = "The processor and the model disagree; check that the checkpoint's files belong together."


@dataclass(frozen=True)
class _Block:
    """One grid's tokens inside the run of placeholders of its image (or video): ``t`` slots of
    ``h`` rows of ``w`` cells, each row followed by ``row_sep`` separator tokens (newlines), the
    whole followed by ``tail`` separators."""

    role: GridRole
    t: int
    h: int
    w: int
    box: Box
    row_sep: int = 0
    tail: int = 0

    @property
    def n_tokens(self) -> int:
        return self.t * self.h * (self.w + self.row_sep) + self.tail

    def cells(self, run: np.ndarray) -> np.ndarray:
        """The cells' positions in ``run`` (this block's tokens), row-major ``(t, h, w)``."""
        rows = run[:self.n_tokens - self.tail].reshape(self.t * self.h, self.w + self.row_sep)
        return rows[:, :self.w].reshape(-1)


class LlavaNextAdapter(Adapter):
    family = "llava_next"
    model_types = ("llava_next",)
    # What the family is, for messages and ``tam models``.
    title: ClassVar[str] = "LLaVA-NeXT (LLaVA-1.6)"
    examples: ClassVar[tuple[str, ...]] = ("llava-hf/llava-v1.6-mistral-7b-hf",
                                           "llava-hf/llava-v1.6-vicuna-7b-hf")
    media = ("image", "images", "video")
    tiling: ClassVar[bool] = True
    notes: ClassVar[str] = ("thumbnail 24 x 24 + the unpadded tiles stitched; a video's frames "
                            "are tiled images")
    #: The modeling module whose layout helpers (``get_anyres_image_grid_shape``,
    #: ``unpad_image``) the model itself uses.
    modeling: ClassVar[str] = "transformers.models.llava_next.modeling_llava_next"


    # ------------------------------------------------------------------ spans
    def _grids(self, media: list[MediaItem], inputs: Any, ids: np.ndarray
               ) -> tuple[list[VisionGrid], list[np.ndarray]]:
        names = [_image_name(mi, item, f) for mi, item in enumerate(media)
                 if not (item.kind == "video" and self.native_video)
                 for f in range(item.n_frames)]
        layouts = self._image_layouts(inputs, names)
        image_pos = np.flatnonzero(ids == self._token_id("image"))
        self._check_total("image", image_pos.size, layouts, names)
        video_pos = np.zeros(0, dtype=np.int64)
        videos = [(mi, item) for mi, item in enumerate(media)
                  if item.kind == "video" and self.native_video]
        video_blocks = [self._video_block(inputs, vi, mi, item)
                        for vi, (mi, item) in enumerate(videos)]
        if videos:
            video_pos = np.flatnonzero(ids == self._token_id("video"))
            self._check_total("video", video_pos.size, [[b] for b in video_blocks],
                              [f"video {mi + 1}" for mi, _ in videos])
        grids: list[VisionGrid] = []
        slots: list[np.ndarray] = []
        ii = vi = i_start = v_start = 0
        for mi, item in enumerate(media):
            n = item.n_frames
            slots.append(np.arange(n, dtype=np.int64))
            if item.kind == "video" and self.native_video:
                block = video_blocks[vi]
                run = video_pos[v_start:v_start + block.n_tokens]
                grids.append(VisionGrid(kind="video", media_index=mi, t=block.t, h=block.h,
                                        w=block.w, positions=block.cells(run), box=block.box,
                                        role=block.role))
                vi += 1
                v_start += block.n_tokens
                continue
            # An image, or a video whose frames went in as images (laid out alike): each
            # block of the layout becomes one grid with a slot per frame.
            frames = layouts[ii:ii + n]
            if any(layout != frames[0] for layout in frames):
                raise SpanError(f"{self.title}: the frames of video {mi + 1} were processed at "
                                "different sizes.", _HINT)
            cells: list[list[np.ndarray]] = [[] for _ in frames[0]]
            for layout in frames:
                for bi, block in enumerate(layout):
                    cells[bi].append(block.cells(image_pos[i_start:i_start + block.n_tokens]))
                    i_start += block.n_tokens
            for block, pos in zip(frames[0], cells):
                grids.append(VisionGrid(kind=item.kind, media_index=mi, t=n * block.t,
                                        h=block.h, w=block.w, positions=np.concatenate(pos),
                                        box=block.box, role=block.role))
            ii += n
        return grids, slots

    def _token_id(self, kind: str) -> int:
        tid = token_id(self.processor, self.config, f"{kind}_token_id", f"{kind}_token_index")
        if tid is None:
            raise SpanError(f"This {self.title} checkpoint names no {kind} token.",
                            "Check that the processor files are complete.")
        return tid

    def _check_total(self, kind: str, available: int, layouts: list[list[_Block]],
                     names: list[str]) -> None:
        """Every placeholder of ``kind`` belongs to exactly one item's layout."""
        need = [sum(b.n_tokens for b in layout) for layout in layouts]
        if sum(need) != available:
            parts = " + ".join(f"{n} ({name})" for n, name in zip(need, names))
            raise SpanError(f"{self.title}: the prompt holds {available} {kind} tokens, but its "
                            f"{kind}s need {parts or 0}.", _HINT)

    # ------------------------------------------------------------------ images
    def _image_layouts(self, inputs: Any, names: list[str]) -> list[list[_Block]]:
        """Each processed image's grids, checked against the processor's placeholder count."""
        sizes = _rows(inputs.get("image_sizes"))
        if len(sizes) != len(names):
            raise SpanError(f"{self.title}: the processor returned {len(sizes)} images for "
                            f"{len(names)} given.", _HINT)
        layouts = []
        for i, (h, w) in enumerate(sizes):
            layout = self._image_layout(inputs, i, int(h), int(w))
            want = _count(getattr(self.processor, "replace_image_token", None), inputs, i,
                          getattr(self.processor, "image_token", None))
            got = sum(b.n_tokens for b in layout)
            if want is not None and want != got:
                raise SpanError(f"{self.title}, {names[i]}: the processor gave it {want} image "
                                f"tokens, but its {_describe(layout)} make {got}.", _HINT)
            layouts.append(layout)
        return layouts

    def _image_layout(self, inputs: Any, i: int, h: int, w: int) -> list[_Block]:
        f = self._features_per_side()
        gh, gw, box = self._tile_canvas(h, w, int(inputs["pixel_values"].shape[-1]))
        gh, gw = self._shrink(gh, gw, f)
        return [_Block("thumbnail", 1, f, f, self._thumbnail_box()),
                _Block("tile", 1, gh, gw, box, row_sep=1)]

    def _features_per_side(self) -> int:
        vc = self.config.vision_config
        return int(vc.image_size) // int(vc.patch_size)

    def _shrink(self, gh: int, gw: int, f: int) -> tuple[int, int]:
        """The canvas after any shrinking the model does (none for LLaVA-NeXT)."""
        return gh, gw

    def _thumbnail_box(self) -> Box:
        """The processor squashes the whole image to its ``size`` (a square for a
        ``shortest_edge``), then resizes and centre-crops it like a tile."""
        ip = self.processor.image_processor
        side = _size(ip.size, "shortest_edge")
        h = _size(ip.size, "height") or side
        w = _size(ip.size, "width") or side
        if not (h and w):
            raise SpanError(f"{self.title}: unsupported image processor size {ip.size}.", _HINT)
        return _resize_crop_box(h, w, ip.size, _crop(ip))

    def _tile_canvas(self, h: int, w: int, side: int) -> tuple[int, int, Box]:
        """The unpadded tile canvas of an ``h x w`` image, in feature cells, and its box."""
        import torch
        from transformers.image_processing_utils import (
            get_patch_output_size,
            select_best_resolution,
        )
        from transformers.image_utils import ChannelDimension

        helpers = importlib.import_module(self.modeling)
        f = self._features_per_side()
        # What the processor did: resize into the best resolution, pad it centred, cut tiles.
        bh, bw = select_best_resolution((h, w), self.processor.image_processor.image_grid_pinpoints)
        nh, nw = get_patch_output_size(_shape_only(h, w), (bh, bw), ChannelDimension.FIRST)
        py, px = (bh - nh) // 2, (bw - nw) // 2
        # What the model does with the tiles' features.
        rows, cols = helpers.get_anyres_image_grid_shape(
            [h, w], self.config.image_grid_pinpoints, int(self.config.vision_config.image_size))
        if (rows * side, cols * side) != (bh, bw):
            raise SpanError(f"{self.title}: the processor tiles a {w}x{h} image as {bw}x{bh} "
                            f"pixels, the model as {cols}x{rows} tiles of {side}.", _HINT)
        height, width = rows * f, cols * f
        kept = helpers.unpad_image(torch.arange(height * width).reshape(1, height, width), [h, w])
        gh, gw = int(kept.shape[-2]), int(kept.shape[-1])
        y0, x0 = divmod(int(kept[0, 0, 0]), width)
        cell = side / f  # canvas pixels per feature cell
        box = ((x0 * cell - px) / nw, (y0 * cell - py) / nh,
               ((x0 + gw) * cell - px) / nw, ((y0 + gh) * cell - py) / nh)
        return gh, gw, box

    # ------------------------------------------------------------------ videos
    def _video_block(self, inputs: Any, vi: int, mi: int, item: MediaItem) -> _Block:
        raise NotImplementedError  # LLaVA-NeXT sends a video's frames as images

    def _video_frames(self, inputs: Any, vi: int, mi: int, item: MediaItem) -> int:
        t = int(inputs["pixel_values_videos"][vi].shape[0])
        if t != item.n_frames:
            raise SpanError(f"{self.title}, video {mi + 1}: the processor kept {t} of its "
                            f"{item.n_frames} frames.", "The frame slider needs every frame.")
        return t

    def _check_video(self, inputs: Any, vi: int, mi: int, block: _Block) -> _Block:
        want = _count(getattr(self.processor, "replace_video_token", None), inputs, vi,
                      getattr(self.processor, "video_token", None))
        if want is not None and want != block.n_tokens:
            raise SpanError(f"{self.title}, video {mi + 1}: the processor gave it {want} video "
                            f"tokens, but its {block.t} frames of {block.h}x{block.w} cells "
                            f"make {block.n_tokens}.", _HINT)
        return block

    def _video_kwargs(self, media: list[MediaItem]) -> dict[str, Any]:
        # The frames are already sampled by media_io; the processor must not resample them.
        return {"videos_kwargs": {"do_sample_frames": False}}


class LlavaNextVideoAdapter(LlavaNextAdapter):
    family = "llava_next_video"
    model_types = ("llava_next_video",)
    title = "LLaVA-NeXT-Video"
    examples = ("llava-hf/LLaVA-NeXT-Video-7B-hf",)
    notes = "images as LLaVA-NeXT; video frames centre-cropped, 12 x 12 per frame"
    modeling = "transformers.models.llava_next_video.modeling_llava_next_video"
    native_video = True

    def _video_block(self, inputs: Any, vi: int, mi: int, item: MediaItem) -> _Block:
        t = self._video_frames(inputs, vi, mi, item)
        vp = self.processor.video_processor
        x0, y0, x1, y1 = _resize_crop_box(item.frames.shape[1], item.frames.shape[2], vp.size,
                                          _crop(vp))
        f = self._features_per_side()
        stride = int(getattr(self.config, "spatial_pool_stride", 2) or 2)
        q = f // stride
        keep = q * stride / f  # the pooling drops a last partial window of patches
        box = (x0, y0, x0 + (x1 - x0) * keep, y0 + (y1 - y0) * keep)
        return self._check_video(inputs, vi, mi, _Block("full", t, q, q, box))


class LlavaOnevisionAdapter(LlavaNextAdapter):
    family = "llava_onevision"
    model_types = ("llava_onevision",)
    title = "LLaVA-OneVision"
    examples = ("llava-hf/llava-onevision-qwen2-7b-ov-hf",
                "llava-hf/llava-onevision-qwen2-0.5b-ov-hf")
    notes = ("thumbnail 27 x 27 + the unpadded tiles (at most 9 tiles' worth); several images: "
             "27 x 27 each, padded square; video 14 x 14 per frame")
    modeling = "transformers.models.llava_onevision.modeling_llava_onevision"
    native_video = True

    def _images_arg(self, images: list[np.ndarray]) -> Any:
        # Several images in one prompt must come as one nested list: only then does the
        # processor (and the model, through batch_num_images) use the multi-image layout.
        return [images] if len(images) > 1 else images or None

    def _image_layout(self, inputs: Any, i: int, h: int, w: int) -> list[_Block]:
        counts = _rows(inputs.get("batch_num_images"), 1).reshape(-1)
        if counts.size and int(counts[0]) > 1:
            # Several images: each padded to a centred square, resized to one tile, no tiles.
            ip = self.processor.image_processor
            m = max(h, w)
            px, py = (m - w) // 2, (m - h) // 2
            c0, c1, c2, c3 = _resize_crop_box(m, m, ip.size, _crop(ip))
            box = ((c0 * m - px) / w, (c1 * m - py) / h, (c2 * m - px) / w, (c3 * m - py) / h)
            f = self._features_per_side()
            return [_Block("full", 1, f, f, box, tail=1)]
        return super()._image_layout(inputs, i, h, w)

    def _shrink(self, gh: int, gw: int, f: int) -> tuple[int, int]:
        """``anyres_max_N``: a canvas of more than about N tiles is resized bilinearly to
        N tiles' worth of cells (the model's rule; the box stays the same)."""
        text = str(getattr(self.config, "vision_aspect_ratio", "anyres_max_9"))
        tail = text.rsplit("_", 1)[-1]
        if not text.startswith("anyres_max_") or not tail.isdigit():
            raise SpanError(f"{self.title}: unsupported vision_aspect_ratio {text!r}.", _HINT)
        ratio = math.sqrt(gh * gw / (int(tail) * f * f))
        if ratio > 1.1:
            return int(gh // ratio), int(gw // ratio)
        return gh, gw

    def _video_block(self, inputs: Any, vi: int, mi: int, item: MediaItem) -> _Block:
        t = self._video_frames(inputs, vi, mi, item)
        vp = self.processor.video_processor
        box = _resize_crop_box(item.frames.shape[1], item.frames.shape[2], vp.size, _crop(vp))
        q = math.ceil(self._features_per_side() / 2)  # bilinear halving keeps the whole frame
        return self._check_video(inputs, vi, mi, _Block("full", t, q, q, box, tail=1))


# ---------------------------------------------------------------------- helpers
def _image_name(mi: int, item: MediaItem, frame: int) -> str:
    return f"frame {frame + 1} of video {mi + 1}" if item.kind == "video" else f"image {mi + 1}"


def _describe(layout: list[_Block]) -> str:
    return " and ".join(f"{b.role} grid ({b.h}x{b.w}"
                        f"{' + a newline per row' if b.row_sep else ''}"
                        f"{' + a newline' if b.tail else ''})" for b in layout)


def _count(replace: Any, inputs: Any, i: int, token: str | None) -> int | None:
    """How many placeholders the processor gave item ``i``: its own expansion of the item's
    token (``None`` where the processor has no such method)."""
    if replace is None or not token:
        return None
    return str(replace(inputs, i)).count(token)


def _rows(value: Any, width: int = 2) -> np.ndarray:
    if value is None:
        return np.zeros((0, width), dtype=np.int64)
    arr = value.cpu().numpy() if hasattr(value, "cpu") else np.asarray(value)
    return arr.reshape(-1, width).astype(np.int64)


def _size(size: Any, key: str) -> int | None:
    value = size.get(key) if isinstance(size, dict) else getattr(size, key, None)
    return int(value) if value else None


def _crop(processor: Any) -> Any:
    """The processor's centre-crop size, or ``None`` where it does not crop."""
    return getattr(processor, "crop_size", None) if getattr(processor, "do_center_crop",
                                                            False) else None


def _shape_only(h: int, w: int) -> np.ndarray:
    """A channels-first array of an ``h x w`` image's shape, for the size helpers (no memory)."""
    return np.broadcast_to(np.uint8(0), (1, h, w))


def _resize_crop_box(h: int, w: int, size: Any, crop: Any) -> Box:
    """The part of an ``h x w`` frame left by a processor's resize to ``size`` and centre crop
    to ``crop`` (``None``: no crop), as fractions of the frame (beyond ``[0, 1]`` where the
    crop pads)."""
    from transformers.image_transforms import get_resize_output_image_size
    from transformers.image_utils import ChannelDimension

    height, width, side = (_size(size, k) for k in ("height", "width", "shortest_edge"))
    if height and width:
        rh, rw = height, width
    elif side and not _size(size, "longest_edge"):
        rh, rw = get_resize_output_image_size(_shape_only(h, w), size=side,
                                              default_to_square=False,
                                              input_data_format=ChannelDimension.FIRST)
    else:
        raise SpanError(f"Unsupported resize setting {size}.", _HINT)
    ch, cw = (_size(crop, "height"), _size(crop, "width")) if crop else (None, None)
    if not (ch and cw):
        return FULL_BOX
    # torchvision's centre crop: floor offsets inside, centred zero padding outside.
    top = int((rh - ch) / 2) if ch <= rh else -((ch - rh) // 2)
    left = int((rw - cw) / 2) if cw <= rw else -((cw - rw) // 2)
    return (left / rw, top / rh, (left + cw) / rw, (top + ch) / rh)
