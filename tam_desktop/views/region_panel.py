"""The answer tokens ranked by how much of their map lies inside the queried region."""

from __future__ import annotations

import html
from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QSizePolicy,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)
from superqt.utils import create_worker

from tam_desktop.models.playback import PlaybackState
from tam_desktop.models.region import TOP_MARKED, RegionQuery
from tam_desktop.views.region_box import REGION_COLOUR
from tam_engine.core.region import RegionRanking
from tam_engine.core.tokens import display_token, token_label

#: Rows listed; the rest of the ranking (lower shares) is summarised in one line.
MAX_ROWS = 100

HELP = ("Drag a box on the media (View > Query a Region, or Shift+drag): the answer tokens "
        "are ranked by the share of their map inside it. Esc clears it.")


class RegionPanel(QWidget):
    """Rank, token, text and share inside; clicking a row shows that token. Hidden while no
    region is queried."""

    def __init__(self, state: PlaybackState, region: RegionQuery,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state, self.region = state, region
        self.summary = QLabel(self)
        # Two fixed lines, no word wrap: a wrapped label in a nested layout is given one line.
        self.summary.setWordWrap(False)
        self.summary.setTextFormat(Qt.TextFormat.RichText)
        self.summary.setStyleSheet("color: #3c4043;")
        self.summary.setToolTip(HELP)
        # Clipped rather than widening a narrow pane (compare mode).
        self.summary.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Minimum)
        self.clear_button = QPushButton("Clear", self)
        self.clear_button.setToolTip("Clear the region (Esc)")
        self.clear_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.clear_button.clicked.connect(region.clear)
        self.table = QTableWidget(0, 4, self)
        self.table.setHorizontalHeaderLabels(["Rank", "Token", "Text", "Inside"])
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setFocusPolicy(Qt.FocusPolicy.NoFocus)   # arrows keep walking the tokens
        self.table.setToolTip("Share inside: the part of the token's map (its mass) that lies "
                              "inside the region. Click a row to see that token.")
        head = self.table.horizontalHeader()
        head.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        head.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.table.cellClicked.connect(self._on_row_clicked)
        self.table.setMinimumHeight(80)
        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        top.addWidget(self.summary, 1)
        top.addWidget(self.clear_button, 0, Qt.AlignmentFlag.AlignTop)
        col = QVBoxLayout(self)
        col.setContentsMargins(0, 0, 0, 0)
        col.setSpacing(2)
        col.addLayout(top)
        col.addWidget(self.table, 1)
        self.rows: list[int] = []   # the token of each row
        region.changed.connect(self.refresh)
        self.refresh()

    def refresh(self) -> None:
        q = self.region
        self.setVisible(q.active)
        r = q.ranking
        self.rows = []
        self.table.setRowCount(0)
        if not q.active:
            return
        assert q.box is not None
        x0, y0, x1, y1 = q.box
        where = f"<b>Region</b> {x1 - x0:.0f} \u00d7 {y1 - y0:.0f} px at ({x0:.0f}, {y0:.0f})"
        if q.pending:
            self.summary.setText(where + ": ranking the tokens \u2026")
            return
        if r is None:
            self.summary.setText(where + (f"<br>{html.escape(q.error)}" if q.error else
                                          "<br>run the model to rank the answer tokens"))
            return
        ex = self.state.explanation
        assert ex is not None
        frame = f" on frame {r.frame + 1}" if ex.media and ex.media[r.media_index].n_frames > 1 \
            else ""
        self.summary.setText(
            f"{where}{frame}<br>tokens by the share of their map inside (a uniform map: "
            f"{r.chance:.0%}); the top {TOP_MARKED} <span style='color:{REGION_COLOUR}'>"
            "marked</span>")
        texts, n = ex.answer.texts, len(ex.answer)
        shown = [int(k) for k in r.order[:MAX_ROWS]]
        self.table.setRowCount(len(shown) + (1 if n > len(shown) else 0))
        marked = set(q.marked())
        for row, k in enumerate(shown):
            cells = [str(row + 1), token_label(k), display_token(texts[k]),
                     f"{r.share[k]:.1%}" if r.mass[k] > 0 else "no map"]
            for c, text in enumerate(cells):
                item = QTableWidgetItem(text)
                if c in (0, 3):
                    item.setTextAlignment(Qt.AlignmentFlag.AlignRight
                                          | Qt.AlignmentFlag.AlignVCenter)
                if k in marked:
                    item.setForeground(QColor("#b06000"))
                self.table.setItem(row, c, item)
        self.rows = shown
        if n > len(shown):
            more = QTableWidgetItem(f"\u2026 {n - len(shown)} more, with smaller shares")
            more.setFlags(Qt.ItemFlag.NoItemFlags)
            self.table.setItem(len(shown), 0, more)
            self.table.setSpan(len(shown), 0, 1, 4)

    def _on_row_clicked(self, row: int, _col: int) -> None:
        if 0 <= row < len(self.rows):
            self.state.set_token(self.rows[row], "answer")


def run_in_thread(job: Callable[[], RegionRanking], done: Callable[[object], None]) -> None:
    """A :data:`Runner` on superqt's worker threads (the app's one threading idiom): ``done``
    gets the ranking, or the exception, on the UI thread."""
    worker = create_worker(job, _start_thread=False, _ignore_errors=True)
    worker.returned.connect(done)
    worker.errored.connect(done)
    worker.start()
