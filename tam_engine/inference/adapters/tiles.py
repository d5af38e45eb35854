"""What the tiling families share: an image cut into tiles plus a global thumbnail, each piece
its own grid of vision tokens.

InternVL, Aya Vision, Idefics3/SmolVLM, LFM2-VL and Gemma 3 (pan-and-scan crops) all cut a large
image into pieces the vision tower sees one at a time. A family adapter says, per image, which
pieces its processor made and in which order (:class:`Piece`: role, the box of the original
frame it shows, and its cells from the model's own feature count); :class:`TiledAdapter` then
walks the runs of the cell token in the processed sequence, gives every piece its own
:class:`~tam_engine.core.spans.VisionGrid`, and checks every count on the way: a piece whose
cells do not match the tokens the processor placed is a :class:`SpanError` naming the family,
the image and both counts. Separator tokens (row/column markers, tile labels, image start/end)
end a run, so they never land inside a grid.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from tam_engine.core.errors import MediaError
from tam_engine.core.media import MediaItem
from tam_engine.core.spans import FULL_BOX, Box, GridRole, VisionGrid
from tam_engine.inference.adapters.base import Adapter, Prepared, SpanError, token_id
from tam_engine.inference.settings import GenerationSettings


@dataclass(frozen=True)
class Piece:
    """One piece of an image as the processor cut it: ``h x w`` cells covering ``box``."""

    role: GridRole
    box: Box
    h: int
    w: int

    @property
    def size(self) -> int:
        return self.h * self.w


def tile_pieces(rows: int, cols: int, cells: tuple[int, int],
                thumbnail: tuple[int, int] | None) -> list[Piece]:
    """``rows x cols`` tiles splitting the whole frame evenly, row-major, each of ``cells``
    (h, w), then the global thumbnail of ``thumbnail`` cells. A single tile is the whole frame."""
    if rows * cols <= 1:
        return [Piece("full", FULL_BOX, *(thumbnail or cells))]
    out = [Piece("tile", (c / cols, r / rows, (c + 1) / cols, (r + 1) / rows), *cells)
           for r in range(rows) for c in range(cols)]
    if thumbnail is not None:
        out.append(Piece("thumbnail", FULL_BOX, *thumbnail))
    return out


def token_runs(ids: np.ndarray, token: int) -> list[np.ndarray]:
    """The positions of ``token`` in ``ids``, split into runs of consecutive positions."""
    pos = np.flatnonzero(ids == token)
    if pos.size == 0:
        return []
    return np.split(pos, np.flatnonzero(np.diff(pos) != 1) + 1)


def merged_images_kwargs(processor: Any, call_kwargs: dict[str, Any] | None = None
                         ) -> dict[str, Any]:
    """The image settings a processor call with ``call_kwargs`` uses.

    Several processors carry defaults of their own that override the image processor's saved
    config (InternVL and Aya Vision tile, Gemma 3 turns pan-and-scan off): the processor's own
    merge gives what a call really does. A setting it does not mention comes from the image
    processor's config (see :func:`image_setting`).
    """
    call_kwargs = dict(call_kwargs or {})
    try:
        merged = processor._merge_kwargs(
            tokenizer_init_kwargs=getattr(getattr(processor, "tokenizer", None), "init_kwargs", {}),
            **call_kwargs)
        return dict(merged["images_kwargs"])
    except (AttributeError, KeyError, TypeError, ValueError):
        return {**getattr(processor, "images_kwargs", {}), **call_kwargs.get("images_kwargs", {})}


def image_setting(processor: Any, settings: dict[str, Any], name: str, default: Any = None) -> Any:
    value = settings.get(name)
    if value is None:
        value = getattr(getattr(processor, "image_processor", None), name, None)
    return default if value is None else value


def gotocr2_tiles(processor: Any, settings: dict[str, Any], height: int, width: int
                  ) -> tuple[int, int]:
    """``(rows, cols)`` of the tiles ``GotOcr2ImageProcessor`` cuts a ``height x width`` image
    into (InternVL, Aya Vision), from the processor's own canvas choice; ``(1, 1)`` untiled."""
    from transformers.models.got_ocr2.image_processing_got_ocr2 import get_optimal_tiled_canvas

    max_patches = int(image_setting(processor, settings, "max_patches", 12))
    if not image_setting(processor, settings, "crop_to_patches", False) or max_patches <= 1:
        return 1, 1
    size = image_setting(processor, settings, "size", {})
    tile = (int(size["height"]), int(size["width"]))
    min_patches = int(image_setting(processor, settings, "min_patches", 1))
    cols, rows = get_optimal_tiled_canvas((height, width), tile, min_patches, max_patches)
    return int(rows), int(cols)


def _side(value: Any) -> int:
    """One side of a config's ``image_size``/``patch_size`` (an int or a (h, w) pair)."""
    return int(value[0] if isinstance(value, (list, tuple)) else value)


def square_cells(image_size: Any, patch_size: Any, shrink: float) -> tuple[int, int]:
    """The model's own cells per tile: ``image_size / patch_size`` patches a side, shrunk by the
    pixel shuffle or pooling factor (``shrink``: 2 for a 2 x 2 shuffle)."""
    side = int(round(_side(image_size) / _side(patch_size) / shrink))
    return side, side


class _Runs:
    """Walks the runs of the cell token, piece by piece, checking every count."""

    def __init__(self, runs: list[np.ndarray], family: str) -> None:
        self.runs, self.family = runs, family
        self.i = self.off = 0
        self.start = (0, 0)

    def begin(self) -> None:
        self.start = (self.i, self.off)

    def take(self, n: int, image: int, role: str, whole_run: bool) -> np.ndarray:
        """The next ``n`` cells; ``whole_run``: they must be a whole run (separators around)."""
        if self.i >= len(self.runs):
            raise SpanError(
                f"{self.family}: image {image} needs {n} more vision tokens for its {role} grid "
                "but the processor placed none.", "This model family needs its own adapter.")
        run = self.runs[self.i]
        left = run.size - self.off
        if left < n or (whole_run and left != n):
            raise SpanError(
                f"{self.family}: image {image}, {role} grid: the model makes {n} vision tokens "
                f"for it but the processor placed {left}.",
                "The checkpoint's processor and model configs disagree; check its files.")
        pos = run[self.off:self.off + n]
        self.off += n
        if self.off == run.size:
            self.i, self.off = self.i + 1, 0
        return pos

    def end(self, image: int) -> None:
        """An image (or a video frame) ends where the processor's run of its tokens ends."""
        if self.off == 0:
            return
        i0, off0 = self.start
        placed = sum(r.size for r in self.runs[i0:self.i + 1]) - off0
        expected = placed - (self.runs[self.i].size - self.off)
        raise SpanError(
            f"{self.family}: image {image}: the processor placed {placed} vision tokens, the "
            f"model's layout for it has {expected}.",
            "The checkpoint's processor and model configs disagree; check its files.")

    def finish(self) -> None:
        extra = sum(r.size for r in self.runs[self.i:]) - self.off
        if extra:
            raise SpanError(
                f"{self.family}: the processor placed {extra} vision tokens more than the "
                "images' grids hold.", "This model family needs its own adapter.")


class TiledAdapter(Adapter):
    """Base of the tiling families. Subclasses give :meth:`cell_token`, :meth:`image_pieces`
    and, for families with a video path (``native_video``), :meth:`frame_cells`. A family
    without one refuses videos: its processor would tile every frame on its own, and those
    pieces form no video grid."""

    def prepare(self, media: list[MediaItem], prompt: str,
                settings: GenerationSettings | None = None) -> Prepared:
        if not self.native_video and any(m.kind == "video" for m in media):
            raise MediaError(f"{self.family} takes no video (its processor has no video path).",
                             "Explain single frames as images, or use a model family with "
                             "video (Qwen2-VL, InternVL, SmolVLM).")
        return super().prepare(media, prompt, settings)

    def images_kwargs(self) -> dict[str, Any]:
        """Image settings passed to every processor call: none by default, so the checkpoint's
        processor tiles the way it is configured to."""
        return {}

    def _processor_kwargs(self, settings: GenerationSettings) -> dict[str, Any]:
        kw = self.images_kwargs()
        return {"images_kwargs": kw} if kw else {}

    def image_settings(self) -> dict[str, Any]:
        """The image settings the processor really uses for this adapter's calls."""
        return merged_images_kwargs(self.processor, {"images_kwargs": self.images_kwargs()})

    #: Where the id of a vision cell's token is declared, first match wins: on the processor
    #: (most families) or on the tokenizer (Gemma 3, whose processor's ``image_token_id`` is
    #: the ``<start_of_image>`` marker, not a cell), then on the config.
    cell_token_owner: ClassVar[str] = "processor"
    cell_token_names: ClassVar[tuple[str, ...]] = ("image_token_id",)

    def cell_token(self) -> int:
        """The token id of one vision cell."""
        owner = self.tokenizer if self.cell_token_owner == "tokenizer" else self.processor
        tid = token_id(owner, self.config, *self.cell_token_names)
        if tid is None:
            raise SpanError(f"This {self.title or self.family} checkpoint names no image token.",
                            f"Check that the {self.cell_token_owner} files are complete.")
        return tid

    def image_pieces(self, media: list[MediaItem], inputs: Any) -> list[list[Piece]]:
        """The pieces of every image item (not videos), in the user's order."""
        raise NotImplementedError

    #: All pieces of an image share one run of cell tokens (InternVL); otherwise separators
    #: (tile labels, row/column markers) end every piece's run.
    pieces_share_runs: ClassVar[bool] = False

    def frame_cells(self, item: MediaItem, inputs: Any) -> tuple[int, int]:
        """``(h, w)`` cells of one frame of a video (families with a video path)."""
        raise NotImplementedError

    def _grids(self, media: list[MediaItem], inputs: Any, ids: np.ndarray
               ) -> tuple[list[VisionGrid], list[np.ndarray]]:
        runs = _Runs(token_runs(ids, self.cell_token()), self.family)
        pieces = iter(self.image_pieces(media, inputs))
        grids: list[VisionGrid] = []
        slots: list[np.ndarray] = []
        for mi, item in enumerate(media):
            if item.kind == "video":
                # One run per frame; the frames form one grid with a slot each.
                h, w = self.frame_cells(item, inputs)
                frames = [runs.take(h * w, mi + 1, "video frame", whole_run=True)
                          for _ in range(item.n_frames)]
                grids.append(VisionGrid(kind="video", media_index=mi, t=item.n_frames, h=h, w=w,
                                        positions=np.concatenate(frames)))
                slots.append(np.arange(item.n_frames, dtype=np.int64))
                continue
            runs.begin()
            for piece in next(pieces):
                pos = runs.take(piece.size, mi + 1, piece.role,
                                whole_run=not self.pieces_share_runs)
                grids.append(VisionGrid(kind="image", media_index=mi, t=1, h=piece.h,
                                        w=piece.w, positions=pos, box=piece.box,
                                        role=piece.role))
            runs.end(mi + 1)
            slots.append(np.zeros(item.n_frames, dtype=np.int64))
        runs.finish()
        return grids, slots
