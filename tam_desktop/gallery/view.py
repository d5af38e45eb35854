"""The gallery widget: filter and sort controls over a virtualised grid of thumbnails."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QModelIndex, QSize, Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QVBoxLayout,
    QWidget,
)

from tam_desktop.gallery.model import GalleryModel

SORTS = (("Batch order", "index"), ("Visual evidence", "evidence"), ("Answer", "answer"),
         ("Failed first", "status"))
STATUSES = (("All items", ""), ("Explained", "ok"), ("Failed", "error"))
CELL = QSize(184, 176)
ICON = QSize(160, 120)


class GalleryWidget(QWidget):
    """``open_requested(path, id)`` when the user opens an item (Enter or double-click)."""

    open_requested = Signal(str, str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = GalleryModel(self)
        self.filter_edit = QLineEdit(self)
        self.filter_edit.setPlaceholderText("Word in the answer")
        self.filter_edit.setClearButtonEnabled(True)
        self.status_box = QComboBox(self)
        for text, value in STATUSES:
            self.status_box.addItem(text, value)
        self.sort_box = QComboBox(self)
        for text, value in SORTS:
            self.sort_box.addItem(text, value)
        self.word_edit = QLineEdit(self)
        self.word_edit.setPlaceholderText("of the word (default: strongest object word)")
        self.count_label = QLabel(self)

        self.view = QListView(self)
        self.view.setModel(self.model)
        self.view.setViewMode(QListView.ViewMode.IconMode)
        self.view.setMovement(QListView.Movement.Static)
        self.view.setResizeMode(QListView.ResizeMode.Adjust)
        # Uniform cells and batched layout keep 10,000 items cheap: only visible rows are asked
        # for their data, so only their thumbnails are rendered.
        self.view.setUniformItemSizes(True)
        self.view.setLayoutMode(QListView.LayoutMode.Batched)
        self.view.setBatchSize(500)
        self.view.setGridSize(CELL)
        self.view.setIconSize(ICON)
        self.view.setWordWrap(True)
        self.view.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.view.setSpacing(4)
        self.view.activated.connect(self._on_activated)
        self.view.doubleClicked.connect(self._on_activated)

        bar = QHBoxLayout()
        bar.addWidget(QLabel("Filter:", self))
        bar.addWidget(self.filter_edit, 2)
        bar.addWidget(self.status_box)
        bar.addSpacing(12)
        bar.addWidget(QLabel("Sort:", self))
        bar.addWidget(self.sort_box)
        bar.addWidget(self.word_edit, 2)
        bar.addWidget(self.count_label)
        col = QVBoxLayout(self)
        col.setContentsMargins(6, 6, 6, 0)
        col.addLayout(bar)
        col.addWidget(self.view, 1)

        self.filter_edit.textChanged.connect(self._rearrange)
        self.word_edit.textChanged.connect(self._rearrange)
        self.status_box.currentIndexChanged.connect(self._rearrange)
        self.sort_box.currentIndexChanged.connect(self._rearrange)

    def set_batch(self, folder: Path, records: list[dict]) -> None:
        self.model.set_batch(folder, records)
        self._rearrange()
        if self.model.rowCount():
            self.view.setCurrentIndex(self.model.index(0))

    def _rearrange(self) -> None:
        current = self.view.currentIndex()
        keep = self.model.rows[current.row()] if current.isValid() else None
        self.model.arrange(text=self.filter_edit.text(), status=self.status_box.currentData(),
                           sort=self.sort_box.currentData(), word=self.word_edit.text())
        n, total = self.model.rowCount(), len(self.model.records)
        self.count_label.setText(f"{n} of {total}" if n != total else f"{total} items")
        row = self.model.row_of(keep) if keep is not None else None
        if row is None and n:
            row = 0
        if row is not None:
            self.view.setCurrentIndex(self.model.index(row))
            self.view.scrollTo(self.model.index(row))

    def _on_activated(self, index: QModelIndex) -> None:
        if not index.isValid():
            return
        rec = self.model.record(index.row())
        if rec["status"] == "ok":
            self.open_requested.emit(str(self.model.folder / rec["file"]), rec["id"])

    def focus_grid(self) -> None:
        self.view.setFocus()
