"""Saving the main window's explanation, and asking (Save / Discard / Cancel) before an unsaved
one is dropped by opening something else or quitting, as document apps do."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from PySide6.QtWidgets import QFileDialog, QWidget

from tam_desktop.app_window import (
    EXPLANATION_SUFFIX,
    remember_save_folder,
    save_folder,
    write_explanation,
)
from tam_desktop.dialogs import ask_save_changes
from tam_desktop.models.playback import PlaybackState
from tam_desktop.settings import AppSettings
from tam_desktop.worker import TaskRunner


class SaveHost(Protocol):
    """What saving needs of its window."""

    @property
    def state(self) -> PlaybackState: ...
    @property
    def settings(self) -> AppSettings: ...
    @property
    def tasks(self) -> TaskRunner: ...
    @property
    def current_file(self) -> str: ...
    def show_status(self, text: str) -> None: ...
    def report_error(self, title: str, exc: BaseException) -> None: ...


class ExplanationSaver:
    """``unsaved`` is True while the shown explanation came from a run the user started and
    has not been saved; ``settle`` asks before it is dropped (when ``ask``)."""

    def __init__(self, host: SaveHost, parent: QWidget, ask: bool = True) -> None:
        self.host = host
        self.parent = parent
        self.ask = ask
        self.unsaved = False

    def save_dialog(self, then: Callable[[], object] | None = None) -> None:
        """Ask where, then save (and, once saved, ``then``)."""
        if self.host.state.explanation is None:
            self.host.show_status("Nothing to save yet: run a model first.")
            return
        current = self.host.current_file
        stem = Path(current).name.split(".")[0] if current else "explanation"
        start = str(save_folder(self.host.settings) / f"{stem}{EXPLANATION_SUFFIX}")
        path = self.ask_path(start)
        if path:
            remember_save_folder(self.host.settings, path)
            self.save(path, then)

    def ask_path(self, start: str) -> str:
        """The save dialog (tests replace it); an empty string: the user gave up."""
        path, _ = QFileDialog.getSaveFileName(self.parent, "Save the explanation", start,
                                              f"Explanations (*{EXPLANATION_SUFFIX})")
        return path

    def save(self, path: str, then: Callable[[], object] | None = None) -> None:
        """Write the shown explanation to ``path`` off the UI thread; ``then`` once written."""
        host, expl = self.host, self.host.state.explanation
        if expl is None:
            return
        if not path.endswith(".npz"):
            path += EXPLANATION_SUFFIX

        def saved(written: object) -> None:
            if host.state.explanation is expl:
                self.unsaved = False
            host.show_status(f"Saved {written}")
            if then is not None:
                then()
        host.show_status(f"Saving {Path(path).name} …")
        host.tasks.submit("save", write_explanation, expl, path, on_result=saved,
                          on_error=lambda exc: host.report_error(
                              "Cannot save the explanation", exc))

    def needs_asking(self) -> bool:
        return self.unsaved and self.ask and self.host.state.explanation is not None

    def settle(self, doing: str, then: Callable[[], object]) -> None:
        """``then()`` now, or once the unsaved explanation is saved or discarded; nothing if
        the user cancels (or gives up choosing where to save). ``doing``: "quitting", ..."""
        if not self.needs_asking():
            then()
            return
        choice = ask_save_changes(self.parent, doing)
        if choice == "discard":
            self.unsaved = False
            then()
        elif choice == "save":
            self.save_dialog(then)
