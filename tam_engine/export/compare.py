"""Exports of the side-by-side comparison figure: one PNG, or an H.264 MP4 of many pictures.

The pictures are pairs of :class:`~tam_engine.render.compare_figure.ComparePanel` (what side A
and side B show), made by :mod:`tam_engine.compare` from a comparison and a schedule. Files are
written atomically and the MP4 takes the exporters' ``progress``/``should_stop`` callbacks, as
everywhere in :mod:`tam_engine.export`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from tam_engine.export.common import ExportError, Progress, ShouldStop, tick, write_png
from tam_engine.render.compare_figure import (
    PANEL_WIDTH,
    ComparePanel,
    render_side_by_side,
    text_maps_height,
)
from tam_engine.render.mp4 import H264Writer

Picture = tuple[ComparePanel, ComparePanel]


def export_compare_png(path: str | os.PathLike, a: ComparePanel, b: ComparePanel,
                       **style) -> Path:
    """The side-by-side figure of ``a`` and ``b`` as a PNG (``style``: see
    :func:`~tam_engine.render.compare_figure.render_side_by_side`)."""
    image = render_side_by_side(a, b, **style)
    try:
        return write_png(path, image)
    except OSError as exc:
        raise _write_error(path, exc) from exc


def export_compare_mp4(path: str | os.PathLike, pictures: Sequence[Picture], fps: float = 2.0,
                       hold: int = 1, crf: int = 23, preset: str = "veryfast",
                       progress: Progress | None = None, should_stop: ShouldStop | None = None,
                       **style) -> Path:
    """The side-by-side figure of each picture as one H.264 MP4.

    Each picture is held for ``hold`` output frames. Text maps are off unless
    ``style["text_maps"]``; when on, every picture's text maps are padded to the tallest so
    the video keeps one size. ``should_stop()`` cancels (no file is left).
    """
    style.setdefault("text_maps", False)
    if style["text_maps"]:
        pw = int(style.get("panel_width", PANEL_WIDTH))
        style["text_min_height"] = max((text_maps_height(a, b, pw) for a, b in pictures),
                                       default=0)
    n = len(pictures)
    try:
        with H264Writer(path, fps, crf=crf, preset=preset) as writer:
            for i, (a, b) in enumerate(pictures):
                image = render_side_by_side(a, b, **style)
                tick(i, n, progress, should_stop)
                for _ in range(max(1, int(hold))):
                    writer.write(image)
            tick(n, n, progress, should_stop)
    except OSError as exc:
        raise _write_error(path, exc) from exc
    return Path(path)


def _write_error(path: str | os.PathLike, exc: OSError) -> ExportError:
    return ExportError(f"Could not write {Path(path).name}: {exc.strerror or exc}",
                       "Choose a folder you can write to, with free disk space.")
