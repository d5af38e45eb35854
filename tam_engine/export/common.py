"""What every exporter shares: the error type, progress/cancel, token and media checks, the
defaults of the style options, and atomic PNG writes."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import numpy as np

from tam_engine.core.atomic import atomic_write_bytes
from tam_engine.core.errors import Cancelled, TamError
from tam_engine.core.explanation import Explanation
from tam_engine.core.media import MediaItem
from tam_engine.core.token_maps import TokenKind
from tam_engine.core.tokens import token_label
from tam_engine.render.png import png_bytes

Progress = Callable[[int, int], None]
ShouldStop = Callable[[], bool]
Layout = Literal["figure", "overlay", "textmap"]

#: Defaults of the MP4 options, shared by every exporter, the CLI and the app (the opacity and
#: colour map defaults are the renderer's).
DEFAULT_CRF = 23
DEFAULT_PRESET = "veryfast"
#: Frame rate of a token sweep over an image, and of a video export.
SWEEP_FPS = 2.0
VIDEO_FPS = 10.0
#: MP4 exports are at least this wide by default (a 224-pixel sample is scaled up; wider media
#: keep their own width), with the colour bar beside and the caption above.
MIN_VIDEO_WIDTH = 720
#: A video that follows the answer shows each token at least this long (slowed down if needed).
FOLLOW_SECONDS_PER_TOKEN = 1.0


def video_width(media_width: int, width: int | None) -> int:
    """The width an MP4 export draws the media at: ``width`` when given, else the media's own
    or :data:`MIN_VIDEO_WIDTH`, whichever is wider."""
    return int(width) if width else max(int(media_width), MIN_VIDEO_WIDTH)


class ExportError(TamError):
    """An export cannot be made as asked (no media, bad token, unwritable folder)."""


# ------------------------------------------------------------------------------ helpers
def tick(i: int, n: int, progress: Progress | None, should_stop: ShouldStop | None) -> None:
    if should_stop is not None and should_stop():
        raise Cancelled("Export cancelled.", "Nothing was written; start the export again.")
    if progress is not None:
        progress(i, n)


def check_token(expl: Explanation, k: int, kind: TokenKind) -> None:
    n = len(expl.tokens(kind))
    if not 0 <= k < n:
        raise ExportError(f"There is no {token_label(k, kind=kind)} (this explanation has {n}).",
                          f"Choose a token between 1 and {n}.")


def media_item(expl: Explanation, media_index: int) -> MediaItem:
    if not expl.media or not 0 <= media_index < len(expl.media):
        raise ExportError(f"This explanation has no stored frames for media {media_index + 1}.",
                          "Re-run the explanation with the media, or export text maps only.")
    check_grid(expl, media_index)
    return expl.media[media_index]


def check_grid(expl: Explanation, media_index: int) -> None:
    try:
        expl.grid_for_media(media_index)
    except KeyError:
        n = len({g.media_index for g in expl.grids})
        raise ExportError(f"Media {media_index + 1} has no activation maps.",
                          f"This explanation has maps for {n} media item(s); choose one of "
                          "those.") from None


def write_png(path: str | os.PathLike, image: np.ndarray) -> Path:
    """Write an RGB array as a PNG, atomically."""
    path = Path(path)
    atomic_write_bytes(path, png_bytes(image))
    return path


