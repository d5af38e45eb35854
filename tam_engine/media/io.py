"""Reading images and videos from disk into :class:`~tam_engine.core.media.MediaItem`.

Images go through Pillow (EXIF orientation applied, converted to RGB). Videos are decoded with
PyAV and, when PyAV cannot open a file, with OpenCV; frames are sampled at a requested rate and
capped to a maximum count spread evenly over the whole clip. Every failure a user can cause
(missing, empty, corrupt, mislabelled or unsupported file) raises :class:`MediaError` naming the
file and the problem, with a hint.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from tam_engine.core.errors import MediaError
from tam_engine.core.media import MediaItem
from tam_engine.media.files import (
    IMAGE_EXTENSIONS,
    VIDEO_EXTENSIONS,
    check_file,
    sniff_image,
)
from tam_engine.media.images import load_image
from tam_engine.media.video import load_video


def media_kind(path: str | os.PathLike) -> str:
    """``"image"`` or ``"video"`` from the file's content, else its extension; raises
    :class:`MediaError` for anything else."""
    path = Path(path)
    head = check_file(path)
    if sniff_image(head) is not None:
        return "image"
    ext = path.suffix.lower()
    if ext in IMAGE_EXTENSIONS:
        return "image"
    if ext in VIDEO_EXTENSIONS:
        return "video"
    raise MediaError(
        f"{path.name}: unsupported file type '{ext or '(no extension)'}'.",
        "Supported images: " + ", ".join(IMAGE_EXTENSIONS) + "; videos: "
        + ", ".join(VIDEO_EXTENSIONS) + ".",
    )


def load_media(paths: str | os.PathLike | Iterable[str | os.PathLike], fps: float = 2.0,
               max_frames: int = 16) -> list[MediaItem]:
    """Load several images and/or videos, in the order given."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    items = []
    for p in paths:
        if media_kind(p) == "image":
            items.append(load_image(p))
        else:
            items.append(load_video(p, fps=fps, max_frames=max_frames))
    return items
