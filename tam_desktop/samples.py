"""The bundled samples: Help > Open Sample Image / Video / Comparison, and the first launch."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtGui import QAction

from tam_desktop.views.run_panel import demo_model_dir
from tam_engine.core.errors import TamError

if TYPE_CHECKING:
    from tam_desktop.main_window import MainWindow


def sample_paths(kind: str, on_error: Callable[[str, TamError], None]) -> list[str]:
    """The sample ``kind`` ("image" or "video") as a one-file list; [] (after ``on_error``)
    when this installation lacks it."""
    from tam_engine.core import resources

    try:
        path = resources.sample_video_path() if kind == "video" else resources.sample_image_path()
    except TamError as exc:   # ResourceMissingError: says where it looked and what to do
        on_error("The sample is missing", exc)
        return []
    return [str(path)]


def is_bundled(path: str) -> bool:
    """Whether ``path`` lies in the installed package's resources (samples, demo models)."""
    from tam_engine.core.resources import resources_dir

    try:
        return Path(path).resolve().is_relative_to(resources_dir().resolve())
    except OSError:
        return False


class SampleActions:
    """The Help menu's sample entries of the main window: each opens a bundled sample and
    explains it with the bundled demo model (two demo models for the comparison) at once."""

    def __init__(self, window: MainWindow) -> None:
        self.window = window
        act = window.add_action
        self.act_image = act("Open Sample &Image", lambda: self.open_sample("image"),
                             tip="The bundled sample image, explained by the demo model")
        self.act_video = act("Open Sample &Video", lambda: self.open_sample("video"),
                             tip="The bundled sample video, explained by the demo model")
        self.act_compare = act("Open Sample &Comparison", self.open_comparison,
                               tip="The two bundled demo models compared on the sample image")
        self.actions: list[QAction] = [self.act_image, self.act_video, self.act_compare]

    def open_sample(self, kind: str) -> None:
        """The sample ``kind`` with the demo model chosen, run as soon as it is read (after
        the user settled an unsaved explanation)."""
        w = self.window
        paths = sample_paths(kind, w.report_error)
        if paths:
            w.settle_unsaved("opening the sample", lambda: self._open(paths))

    def _open(self, paths: list[str]) -> None:
        demo = demo_model_dir()
        if demo is not None:
            self.window.run_panel.set_model(demo)
        self.window.open_now(paths, run=demo is not None)

    def open_comparison(self) -> None:
        """The compare window, on the preset "Compare the two demo models" and the sample."""
        w = self.window
        w.open_compare()
        if w.compare_window is not None:
            w.compare_window.use_demo_preset(on_sample=True)
