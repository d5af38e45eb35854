"""What the windows of one app share: settings, the loaded model, the decoded media, workers."""

from __future__ import annotations

import copy
import threading
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

    _write_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _requested: int = field(default=0, repr=False)

    def save_settings(self, on_error: Callable[[BaseException], None], *,
                      background: bool = True) -> None:
        """Write the settings; in the background (a copy) unless the app is closing.

        Only the newest copy asked for is written: a background write that had not started
        when a newer one was asked for (the final one on closing) writes nothing, so closing
        never waits for one and an older copy never overwrites a newer one."""
        self._requested += 1
        copy_, number = copy.deepcopy(self.settings), self._requested
        if background:
            self.tasks.submit("settings", self._write_newest, copy_, number,
                              on_result=lambda _p: None, on_error=on_error)
            return
        try:
            self._write_newest(copy_, number)
        except OSError as exc:
            on_error(exc)

    def _write_newest(self, settings: AppSettings, number: int) -> Path | None:
        with self._write_lock:   # a write in progress ends before the next one starts
            if number != self._requested:
                return None      # a newer copy was asked for: this one is stale
            return save_settings(settings, self.settings_path)
