"""What the windows of one app share: settings, the loaded model, the decoded media, workers."""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tam_desktop.settings import AppSettings, save_settings
from tam_desktop.worker import MediaCache, ModelCache, TaskRunner


@dataclass
class AppContext:
    """One per app: the main window makes it and hands it to the compare window.

    ``models`` keeps the last loaded model (a compare run reuses the main window's), ``media``
    the last decoded media (opening a file and running on it decode it once), ``tasks`` runs
    the short jobs of every window (their kinds must differ between windows).
    """

    settings: AppSettings = field(default_factory=AppSettings)
    settings_path: Path | None = None
    models: ModelCache = field(default_factory=ModelCache)
    media: MediaCache = field(default_factory=MediaCache)
    tasks: TaskRunner = field(default_factory=TaskRunner)

    def save_settings(self, on_error: Callable[[BaseException], None], *,
                      background: bool = True) -> None:
        """Write the settings; in the background (a copy) unless the app is closing."""
        if background:
            self.tasks.submit("settings", save_settings, copy.deepcopy(self.settings),
                              self.settings_path, on_result=lambda _p: None, on_error=on_error)
            return
        try:
            save_settings(self.settings, self.settings_path)
        except OSError as exc:
            on_error(exc)
