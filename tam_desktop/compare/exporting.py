"""Exports of the side-by-side view, run through :func:`tam_desktop.exporting.export_job`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tam_engine.compare.comparison import Comparison, Mode, compare_pictures
from tam_engine.core.placement import DEFAULT_LAYER, Layer
from tam_engine.export.compare import export_compare_mp4, export_compare_png


def png_job(cmp: Comparison, path: str, *, tokens_a: Sequence[int], tokens_b: Sequence[int],
            media_index: int = 0, frame: int = 0, how: str = "mean",
            layer: Layer = DEFAULT_LAYER, **style) -> Path:
    """One selection's side-by-side picture as a PNG (a quick export: no progress steps)."""
    a, b = cmp.panels(tokens_a, tokens_b, media_index, frame, how, layer)
    return export_compare_png(path, a, b, **style)


def mp4_job(cmp: Comparison, path: str, *, mode: Mode = "auto",
            tokens_a: Sequence[int] | None = None, tokens_b: Sequence[int] | None = None,
            media_index: int = 0, frame: int = 0, how: str = "mean",
            layer: Layer = DEFAULT_LAYER, **export) -> Path:
    """The side-by-side view as an MP4: a video plays with the selection, an image steps
    through A's words (see :func:`~tam_engine.compare.comparison.compare_schedule`)."""
    pictures = compare_pictures(cmp, mode, tokens_a, tokens_b, media_index, frame, how, layer)
    return export_compare_mp4(path, pictures, **export)
