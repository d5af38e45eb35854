"""The centre of the compare window: pane A | pane B | the A-B view above the alignment."""

from __future__ import annotations

import html

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QSplitter, QVBoxLayout, QWidget

from tam_desktop.app_window import short_model_name
from tam_desktop.compare.alignment_view import SIDE_COLOURS, AlignmentView
from tam_desktop.compare.diff_view import DiffView
from tam_desktop.compare.link import SIDES
from tam_desktop.models.playback import PlaybackState
from tam_desktop.views.given_answer import GIVEN_ANSWER_NAME, is_given
from tam_desktop.views.pane import ExplanationPane
from tam_engine.compare.alignment import Side


class CompareBody(QSplitter):
    """Two ``ExplanationPane`` s under their model headers, and the difference column.

    Both panes share one display bar (A's, shown by the window above them), so their media
    start at the same height.
    """

    def __init__(self, states: dict[Side, PlaybackState], parent: QWidget | None = None
                 ) -> None:
        super().__init__(Qt.Orientation.Horizontal, parent)
        self.states = states
        self.panes: dict[Side, ExplanationPane] = {}
        self.headers: dict[Side, QLabel] = {}
        for side in SIDES:
            box = QWidget(self)
            # An explicit minimum: before the first show Qt sizes the boxes by the (moved)
            # display bar and the window would open wider than a laptop screen.
            box.setMinimumWidth(360)
            col = QVBoxLayout(box)
            col.setContentsMargins(2, 2, 2, 2)
            col.setSpacing(2)
            header = QLabel(box)
            header.setTextFormat(Qt.TextFormat.RichText)
            header.setWordWrap(True)
            pane = ExplanationPane(states[side], parent=box)
            # Side by side there is little width: media above the tokens, not beside them.
            pane.h_split.setOrientation(Qt.Orientation.Vertical)
            pane.h_split.setSizes([500, 420])
            pane.v_split.setSizes([800, 110])
            col.addWidget(header)
            col.addWidget(pane, 1)
            self.panes[side], self.headers[side] = pane, header
            self.addWidget(box)
        self.display_bar = self.panes["a"].display_bar
        self.panes["b"].display_bar.hide()
        right = QWidget(self)
        rcol = QVBoxLayout(right)
        rcol.setContentsMargins(2, 2, 2, 2)
        self.diff_view = DiffView(right)
        self.alignment_label = AlignmentView(right)
        rcol.addWidget(self.diff_view, 3)
        rcol.addWidget(self.alignment_label, 2)
        self.addWidget(right)
        for i, stretch in enumerate((5, 5, 4)):
            self.setStretchFactor(i, stretch)

    def fit(self, width: int) -> None:
        """A wider difference column than the stretch factors alone give, in ``width``."""
        inner = width - 40
        self.setSizes([int(inner * 0.37), int(inner * 0.37), int(inner * 0.26)])

    def show_headers(self, models: dict[Side, str], running: Side | None = None) -> None:
        """Each side's model and token count (and which one is running)."""
        for side in SIDES:
            ex = self.states[side].explanation
            name = short_model_name(models[side]) or "(no model yet)"
            bits = [f"<b style='color:{SIDE_COLOURS[side]}'>{side.upper()}</b> · "
                    f"{html.escape(name)}"]
            if ex is not None:
                given = f" of the {GIVEN_ANSWER_NAME}" if is_given(ex) else ""
                bits.append(f"<span style='color:#5f6368'>{ex.n_answer} tokens{given}</span>")
            if side == running:
                bits.append("<i>running…</i>")
            self.headers[side].setText(" &nbsp; ".join(bits))
