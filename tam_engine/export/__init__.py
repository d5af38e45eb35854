"""Exports of an explanation: PNG, PNG sequences, contact sheets, MP4, HTML, JSON and NPZ.

Everything is drawn by the Qt-free renderer, so exports are deterministic and match the app.
Every file is written atomically (a temporary file in the same folder, then ``os.replace``).
Long exports take ``progress(i, n)`` and ``should_stop()`` callbacks; when ``should_stop()``
returns true they raise :class:`~tam_engine.core.errors.Cancelled` and leave no file behind.
"""

from __future__ import annotations

from tam_engine.export.common import (
    DEFAULT_CRF,
    DEFAULT_PRESET,
    FOLLOW_SECONDS_PER_TOKEN,
    MIN_VIDEO_WIDTH,
    SWEEP_FPS,
    VIDEO_FPS,
    ExportError,
    Layout,
    Progress,
    ShouldStop,
    write_png,
)
from tam_engine.export.data import explanation_json, export_html, export_json, export_npz
from tam_engine.export.images import (
    export_contact_sheet,
    export_png_sequence,
    export_token_png,
    render_token,
)
from tam_engine.export.video import (
    export_sweep_mp4,
    export_video_mp4,
    follow_schedule,
    sweep_frames,
)

__all__ = [
    "DEFAULT_CRF",
    "DEFAULT_PRESET",
    "FOLLOW_SECONDS_PER_TOKEN",
    "MIN_VIDEO_WIDTH",
    "SWEEP_FPS",
    "VIDEO_FPS",
    "ExportError",
    "Layout",
    "Progress",
    "ShouldStop",
    "explanation_json",
    "export_contact_sheet",
    "export_html",
    "export_json",
    "export_npz",
    "export_png_sequence",
    "export_sweep_mp4",
    "export_token_png",
    "export_video_mp4",
    "follow_schedule",
    "render_token",
    "sweep_frames",
    "write_png",
]
