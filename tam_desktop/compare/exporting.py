"""Exports of the side-by-side view (run by :class:`tam_desktop.exporting.ExportRunner`)."""

from __future__ import annotations

from pathlib import Path

from tam_engine.compare import Comparison


def png_job(cmp: Comparison, path: str, *, progress=None, should_stop=None, **render
            ) -> Path:
    """:func:`export_compare_png` with the exporters' progress/cancel keywords."""
    from tam_engine.compare import export_compare_png

    if progress is not None:
        progress(0, 1)
    out = export_compare_png(cmp, path, **render)
    if progress is not None:
        progress(1, 1)
    return out
