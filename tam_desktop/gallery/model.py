"""The gallery's list model: the batch's records in the chosen order and filter, thumbnails
rendered off the UI thread (and cached on disk) only for the rows a view asks for."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Any

from PySide6.QtCore import QAbstractListModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QImage, QPixmap
from shiboken6 import Shiboken
from superqt.utils import create_worker

from tam_engine.batch.browse import arrange
from tam_engine.batch.thumbnails import cached_thumbnail

RECORD_ROLE = Qt.ItemDataRole.UserRole + 1
#: Pixmaps kept in memory (the disk cache holds them all): a few screens' worth.
PIXMAP_CACHE = 1000
#: Thumbnails rendered at the same time; the newest requests (the rows on screen) go first.
MAX_IN_FLIGHT = 2

Index = QModelIndex | QPersistentModelIndex


def _load_thumbnail(folder: Path, rec: dict) -> QImage:
    # QImage (not QPixmap) may be made off the UI thread.
    return QImage(str(cached_thumbnail(folder, rec)))


class GalleryModel(QAbstractListModel):
    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.folder = Path()
        self.records: list[dict] = []
        self.rows: list[int] = []
        self._pixmaps: OrderedDict[int, QPixmap] = OrderedDict()
        self._wanted: list[int] = []          # record numbers waiting for a thumbnail
        self._in_flight: set[int] = set()
        self._failed: set[int] = set()
        self._generation = 0
        self._workers: set[Any] = set()
        self._empty = QPixmap()

    # ------------------------------------------------------------------ content
    def set_batch(self, folder: Path, records: list[dict]) -> None:
        self.beginResetModel()
        self.folder, self.records = Path(folder), records
        self.rows = list(range(len(records)))
        self._pixmaps.clear()
        self._wanted.clear()
        self._in_flight.clear()
        self._failed.clear()
        self._generation += 1  # thumbnails of the previous batch are dropped on arrival
        self.endResetModel()

    def arrange(self, **how: Any) -> None:
        """Filter and sort (see :func:`tam_engine.batch.browse.arrange`)."""
        self.beginResetModel()
        self.rows = arrange(self.records, **how)
        self.endResetModel()

    def record(self, row: int) -> dict:
        return self.records[self.rows[row]]

    def row_of(self, rec_no: int) -> int | None:
        try:
            return self.rows.index(rec_no)
        except ValueError:
            return None

    # ------------------------------------------------------------------ Qt model
    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: N802, B008
        return 0 if parent.isValid() else len(self.rows)

    def has_thumbnail(self, row: int) -> bool:
        return self.rows[row] in self._pixmaps

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= len(self.rows):
            return None
        n = self.rows[index.row()]
        rec = self.records[n]
        if role == Qt.ItemDataRole.DisplayRole:
            if rec["status"] != "ok":
                return f"failed: {rec['id']}"
            return " ".join((rec.get("answer") or "").split())
        if role == Qt.ItemDataRole.ToolTipRole:
            return f"{rec['id']}\n{rec.get('error') or rec.get('answer') or ''}"
        if role == Qt.ItemDataRole.DecorationRole:
            return self._pixmap(n)
        if role == RECORD_ROLE:
            return rec
        return None

    # ------------------------------------------------------------------ thumbnails
    def _pixmap(self, n: int) -> QPixmap:
        """The thumbnail, or an empty pixmap (asked for, it arrives with ``dataChanged``)."""
        pm = self._pixmaps.get(n)
        if pm is not None:
            self._pixmaps.move_to_end(n)
            return pm
        if self.records[n]["status"] == "ok" and n not in self._failed:
            if n in self._wanted:
                self._wanted.remove(n)
            self._wanted.append(n)
            self._pump()
        return self._empty

    def _pump(self) -> None:
        while self._wanted and len(self._in_flight) < MAX_IN_FLIGHT:
            n = self._wanted.pop()  # newest first: what is on screen now
            if n in self._in_flight or n in self._pixmaps:
                continue
            self._in_flight.add(n)
            self._start(n, self._generation)
        # Requests for rows scrolled past long ago are dropped rather than rendered late.
        del self._wanted[:-200]

    def _start(self, n: int, gen: int) -> None:
        worker = create_worker(_load_thumbnail, self.folder, self.records[n],
                               _start_thread=False, _ignore_errors=True)
        worker.returned.connect(lambda img: self._on_thumbnail(gen, n, img))
        worker.errored.connect(lambda exc: self._on_failed(gen, n))
        self._workers.add(worker)

        def done(*_: object) -> None:
            self._workers.discard(worker)

        worker.finished.connect(done)
        worker.start()

    def _alive(self, gen: int) -> bool:
        # A thumbnail may arrive after its batch was replaced or its window closed.
        return Shiboken.isValid(self) and gen == self._generation

    def _on_thumbnail(self, gen: int, n: int, image: QImage) -> None:
        if not self._alive(gen):
            return
        self._in_flight.discard(n)
        if image.isNull():
            self._failed.add(n)
        else:
            self._pixmaps[n] = QPixmap.fromImage(image)
            while len(self._pixmaps) > PIXMAP_CACHE:
                self._pixmaps.popitem(last=False)
            self._changed(n)
        self._pump()

    def _on_failed(self, gen: int, n: int) -> None:
        if not self._alive(gen):
            return
        self._in_flight.discard(n)
        self._failed.add(n)
        self._pump()

    def _changed(self, n: int) -> None:
        row = self.row_of(n)
        if row is not None:
            idx = self.index(row)
            self.dataChanged.emit(idx, idx, [Qt.ItemDataRole.DecorationRole])

    @property
    def busy(self) -> bool:
        return bool(self._workers)
