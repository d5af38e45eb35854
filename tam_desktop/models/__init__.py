"""Qt-free models of the application state. Views subscribe to their events."""

from __future__ import annotations

from tam_desktop.models.events import Event
from tam_desktop.models.playback import DisplayOptions, FrameCursor, PlaybackState

__all__ = ["DisplayOptions", "Event", "FrameCursor", "PlaybackState"]
