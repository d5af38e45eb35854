"""Where things are in the token sequence: vision grids and prompt text positions.

An adapter derives these from the model's own processor outputs; the engine only reads them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

VisionKind = Literal["image", "video"]
#: What part of a media item a grid shows: all of it, one tile of a tiled image, or the global
#: thumbnail a tiled image also gets.
GridRole = Literal["full", "tile", "thumbnail"]
#: ``(x0, y0, x1, y1)`` as fractions of the original frame's width and height.
Box = tuple[float, float, float, float]
FULL_BOX: Box = (0.0, 0.0, 1.0, 1.0)


@dataclass(frozen=True)
class VisionGrid:
    """One image or one video in the sequence, as the map grid the engine produces for it.

    Attributes
    ----------
    kind
        ``"image"`` or ``"video"``.
    media_index
        Index of the media item (in the order the user gave them) this grid belongs to.
    t, h, w
        Map grid: ``t`` temporal slots (1 for an image) of ``h x w`` cells each, after any
        spatial merge the model does (Qwen2-VL: ``image_grid_thw / (1, 2, 2)``).
    positions
        Sequence positions of the ``t*h*w`` vision tokens of this grid, in row-major
        ``(t, h, w)`` order.
    box
        The region of the ORIGINAL frame that the grid's cells cover, ``(x0, y0, x1, y1)`` as
        fractions of the frame's width and height: the whole frame for a plain resize, the
        central part for a centre crop, beyond ``[0, 1]`` where the processor padded, one tile's
        part for a tile. The adapter derives it from the processor's own settings and sizes.
    role
        ``"full"`` (the grid shows the whole item), ``"tile"`` or ``"thumbnail"``.
    """

    kind: VisionKind
    media_index: int
    t: int
    h: int
    w: int
    positions: np.ndarray = field(repr=False)
    box: Box = FULL_BOX
    role: GridRole = "full"

    def __post_init__(self) -> None:
        pos = np.asarray(self.positions, dtype=np.int64).reshape(-1)
        object.__setattr__(self, "positions", pos)
        x0, y0, x1, y1 = (float(v) for v in self.box)
        if not (x1 > x0 and y1 > y0):
            raise ValueError(f"grid box {self.box} is empty")
        object.__setattr__(self, "box", (x0, y0, x1, y1))
        if self.role not in ("full", "tile", "thumbnail"):
            raise ValueError(f"unknown grid role {self.role!r}")
        if pos.size != self.t * self.h * self.w:
            raise ValueError(
                f"grid {self.t}x{self.h}x{self.w} needs {self.t * self.h * self.w} positions, "
                f"got {pos.size}"
            )

    @property
    def size(self) -> int:
        return self.t * self.h * self.w

    def cell_box(self, row: int, col: int) -> Box:
        """The part of the original frame that cell ``(row, col)`` saw: the grid's box divided
        evenly into ``h x w`` cells. The one geometry rule the renderer and the checks share."""
        x0, y0, x1, y1 = self.box
        cw, ch = (x1 - x0) / self.w, (y1 - y0) / self.h
        return (x0 + col * cw, y0 + row * ch, x0 + (col + 1) * cw, y0 + (row + 1) * ch)

    def to_meta(self) -> dict:
        return {"kind": self.kind, "media_index": self.media_index, "t": self.t, "h": self.h,
                "w": self.w, "box": list(self.box), "role": self.role}


def grid_slices(grids: Iterable[VisionGrid]) -> list[slice]:
    """Where each grid's ``t*h*w`` cells sit in the flattened vision vector (grid after grid,
    the order of every ``(..., n_vision)`` array): the one place that layout is computed."""
    out, acc = [], 0
    for g in grids:
        out.append(slice(acc, acc + g.size))
        acc += g.size
    return out


@dataclass(frozen=True)
class Spans:
    """All spans the engine needs.

    ``grids`` are in sequence order; ``prompt_positions`` are the positions of the user's prompt
    text tokens (not the chat template's scaffolding), ascending.
    """

    grids: tuple[VisionGrid, ...]
    prompt_positions: np.ndarray = field(repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "grids", tuple(self.grids))
        object.__setattr__(
            self, "prompt_positions", np.asarray(self.prompt_positions, dtype=np.int64).reshape(-1)
        )

    @property
    def vision_positions(self) -> np.ndarray:
        """All vision positions, grid after grid (the flattened vision vector's order)."""
        if not self.grids:
            return np.zeros(0, dtype=np.int64)
        return np.concatenate([g.positions for g in self.grids])

    @property
    def grid_slices(self) -> list[slice]:
        """Each grid's columns in the flattened vision vector (see :func:`grid_slices`)."""
        return grid_slices(self.grids)

    @property
    def n_vision(self) -> int:
        return sum(g.size for g in self.grids)
