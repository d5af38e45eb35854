"""Media as the engine, renderer and GUI see it: decoded RGB frames plus their map slots."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

MediaKind = Literal["image", "video"]


class LazyFrames:
    """Base of frames decoded on demand (a long video reopened from its file): indexing with an
    int gives one ``(H, W, 3)`` uint8 frame, with a slice or index array a stack, iterating one
    frame at a time, ``np.asarray`` all of them."""

    shape: tuple[int, int, int, int]
    dtype = np.dtype(np.uint8)
    ndim = 4

    def __getitem__(self, index):
        raise NotImplementedError

    def __len__(self) -> int:
        return int(self.shape[0])

    def __iter__(self):
        return (self[i] for i in range(len(self)))

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = np.stack([self[i] for i in range(len(self))])
        return out if dtype is None else out.astype(dtype)


@dataclass
class MediaItem:
    """One image or one (sampled) video.

    Attributes
    ----------
    kind
        ``"image"`` or ``"video"``.
    path
        Where it came from (informational; an explanation keeps its own frames).
    frames
        ``(n, H, W, 3)`` uint8 RGB frames as displayed (EXIF orientation applied). An image has
        ``n == 1``. Either an array or :class:`LazyFrames` (index it a frame at a time).
    frame_slot
        ``(n,)`` temporal slot of each displayed frame in the map grid (0 for an image).
    timestamps
        ``(n,)`` seconds of each frame in the source (0 for an image).
    fps
        Playback rate of the sampled frames (sampling fps for video, 0 for an image).
    """

    kind: MediaKind
    path: str
    frames: np.ndarray | LazyFrames = field(repr=False)
    frame_slot: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(1, np.int64))
    timestamps: np.ndarray = field(repr=False, default_factory=lambda: np.zeros(1, np.float64))
    fps: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.frames, LazyFrames):
            self.frames = np.asarray(self.frames, dtype=np.uint8)
            if self.frames.ndim == 3:
                self.frames = self.frames[None]
        if len(self.frames.shape) != 4 or self.frames.shape[-1] != 3:
            raise ValueError(f"frames must be (n, H, W, 3) RGB, got {self.frames.shape}")
        n = self.frames.shape[0]
        self.frame_slot = np.asarray(self.frame_slot, dtype=np.int64).reshape(-1)
        self.timestamps = np.asarray(self.timestamps, dtype=np.float64).reshape(-1)
        if self.frame_slot.size != n:
            self.frame_slot = np.zeros(n, np.int64) if n == 1 else self.frame_slot
        if self.timestamps.size != n:
            self.timestamps = np.zeros(n, np.float64) if n == 1 else self.timestamps
        if self.frame_slot.size != n or self.timestamps.size != n:
            raise ValueError("frame_slot and timestamps need one entry per frame")

    @property
    def n_frames(self) -> int:
        return int(self.frames.shape[0])

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the frames."""
        return int(self.frames.shape[2]), int(self.frames.shape[1])

    @property
    def name(self) -> str:
        from pathlib import PurePath

        return PurePath(self.path).name or self.kind
