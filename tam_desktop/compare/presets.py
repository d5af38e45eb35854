"""Ready-made comparisons: "Compare the two demo models" works offline, on first try."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from tam_desktop.samples import sample_paths
from tam_desktop.views.run_panel import demo_model_b_dir, demo_model_dir
from tam_engine.core.errors import TamError

if TYPE_CHECKING:
    from tam_desktop.compare.window import CompareWindow

DEMO_PRESET = "Compare the two demo models"


def demo_pair() -> tuple[str, str] | None:
    """The folders of the two bundled demo models (A: the demo model, B: its 8 x 8 version),
    or None when this installation lacks one."""
    a, b = demo_model_dir(), demo_model_b_dir()
    return (a, b) if a is not None and b is not None else None


def default_model_b(model_a: str, recent: Sequence[str]) -> str:
    """Model B when none is given: the last other model used, else the bundled demo model
    that A is not (so a fresh installation compares two models without a download)."""
    others = [m for m in recent if m and m != model_a]
    if others:
        return others[0]
    pair = demo_pair()
    if pair is None:
        return ""
    return pair[1] if model_a != pair[1] else pair[0]


def use_demo_preset(window: CompareWindow, on_sample: bool = False) -> None:
    """A and B become the bundled demo models, run on the window's media (on the sample
    image when ``on_sample`` or when none is chosen), with the default prompt for them."""
    pair = demo_pair()
    if pair is None:
        window.report_error("No demo models", TamError(
            "This installation lacks the bundled demo models.",
            "Reinstall tam-desktop, or choose two models (Hub ids or folders)."))
        return
    window.cancel_run()
    window.run_bar.model_a.set_model(pair[0])
    window.run_bar.model_b.set_model(pair[1])
    wants_sample = on_sample or not window.media_paths
    sample = sample_paths("image", window.report_error) if wants_sample else []
    if sample and sample != window.media_paths:
        window.run_when_media_read(sample)
    else:
        window.run_bar.follow_media(any(m.kind == "video" for m in window.media))
        window.run()
