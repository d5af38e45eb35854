"""View > Query a Region for a window's panes: the mode, Esc, and (compare mode) one box for
both sides."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtGui import QAction

from tam_desktop.app_window import AppWindow
from tam_desktop.views.pane import ExplanationPane

HINT = ("Drag a box on the media to rank the answer tokens by how much of their map lies "
        "inside it (Shift+drag works at any time); Esc clears it.")


class RegionAction:
    """A checkable action (Q) that puts the panes' media views in region mode. Two panes (compare
    mode) show the same media, so a box drawn on one queries the other too."""

    def __init__(self, window: AppWindow, panes: Sequence[ExplanationPane], tip: str) -> None:
        self.window = window
        self.panes = list(panes)
        self.action: QAction = window.add_action("&Query a Region", self._on_triggered, "Q",
                                                 tip=tip)
        self.action.setCheckable(True)
        for pane in self.panes:
            for other in self.panes:
                if other is not pane:   # set_box ignores the echo of its own box
                    pane.region.box_changed.connect(other.region.set_box)

    @property
    def mode(self) -> bool:
        return self.action.isChecked()

    def set_mode(self, on: bool) -> None:
        self.action.setChecked(on)
        for pane in self.panes:
            pane.set_region_mode(on)
        if on:
            self.window.show_status(HINT)

    def escape(self) -> bool:
        """Esc: leave region mode and clear the region; False when there was neither (Esc
        then does what it did before: back to the gallery, cancel a run)."""
        if not self.mode and not any(p.region.active for p in self.panes):
            return False
        self.set_mode(False)
        for pane in self.panes:
            pane.region.clear()
        return True

    def _on_triggered(self) -> None:
        self.set_mode(self.action.isChecked())
