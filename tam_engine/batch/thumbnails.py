"""A batch item's thumbnail: its first frame with the map of the answer's strongest content
word (``top_word`` of the index), cached on disk beside the batch."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from tam_engine.core.atomic import atomic_write_bytes
from tam_engine.core.explanation import Explanation
from tam_engine.render.figure import map_over, resize_frame
from tam_engine.render.png import png_bytes

THUMBS_DIR = ".thumbnails"
THUMB_WIDTH = 160


def render_thumbnail(folder: Path, rec: dict, width: int = THUMB_WIDTH) -> np.ndarray:
    """``(H, W, 3)`` uint8: the first frame of the first media, and the top word's map over
    it (the plain frame when the answer has no content word)."""
    expl = Explanation.load(folder / rec["file"])
    frame = resize_frame(expl.media[0].frames[0], width)
    top = rec.get("top_word")
    if top is None:
        return frame
    tokens = rec["words"][top]["tokens"]
    return map_over(frame, expl, tokens[0], tokens=tokens)


def thumbnail_path(folder: Path, rec: dict, width: int = THUMB_WIDTH) -> Path:
    # The record's file and its answer name the picture: a re-explained item gets a new one.
    key = hashlib.sha1(f"{rec['file']}\0{rec.get('answer')}\0{width}".encode()).hexdigest()
    return folder / THUMBS_DIR / f"{key[:20]}.png"


def cached_thumbnail(folder: str | Path, rec: dict, width: int = THUMB_WIDTH) -> Path:
    """The thumbnail's PNG file, rendered and written (atomically) the first time."""
    folder = Path(folder)
    path = thumbnail_path(folder, rec, width)
    if not path.is_file():
        atomic_write_bytes(path, png_bytes(render_thumbnail(folder, rec, width)))
    return path
