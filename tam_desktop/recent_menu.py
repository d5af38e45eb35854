"""File > Open Recent: one entry per open (several images opened together are one entry)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtWidgets import QMenu, QWidget

from tam_desktop.settings import AppSettings, recent_entry_paths


def recent_entry_label(entry: str) -> str:
    """A file's path; for files opened together, the first one's and how many more."""
    paths = recent_entry_paths(entry)
    if len(paths) <= 1:
        return entry
    folder = Path(paths[0]).parent
    names = [Path(p).name for p in paths]
    shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    return f"{folder}: {shown}"


class RecentMenu(QMenu):
    """Filled from the settings each time it opens; choosing an entry reopens all its files."""

    def __init__(self, settings: Callable[[], AppSettings],
                 open_paths: Callable[[list[str]], None], parent: QWidget) -> None:
        super().__init__("Open &Recent", parent)
        self._settings = settings
        self._open_paths = open_paths
        self.aboutToShow.connect(self.fill)

    def fill(self) -> None:
        self.clear()
        entries = self._settings().recent_files
        for entry in entries:
            act = self.addAction(recent_entry_label(entry))
            act.setToolTip("\n".join(recent_entry_paths(entry)))
            act.triggered.connect(
                lambda _=False, e=entry: self._open_paths(recent_entry_paths(e)))
        if not entries:
            self.addAction("No recent files").setEnabled(False)
        else:
            self.addSeparator()
            self.addAction("Clear List", self._clear)

    def _clear(self) -> None:
        self._settings().recent_files = []
