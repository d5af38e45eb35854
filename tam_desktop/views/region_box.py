"""The media view's ``ViewBox`` with a box drawn by dragging (region query).

In region mode a left drag draws a box instead of panning; Shift+drag draws one at any time.
Box coordinates are the view's own, which are the frame's pixels (the frame image sits at the
origin, one unit per pixel).
"""

from __future__ import annotations

from collections.abc import Callable

import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QPen
from PySide6.QtWidgets import QGraphicsRectItem

REGION_COLOUR = "#f29900"   # the region's outline, and its marks in the strip and timeline

Box = tuple[float, float, float, float]


def _rect_item(dashed: bool) -> QGraphicsRectItem:
    item = QGraphicsRectItem()
    pen = QPen(QColor(REGION_COLOUR))
    pen.setCosmetic(True)   # the same width at any zoom
    pen.setWidthF(2.0)
    if dashed:
        pen.setStyle(Qt.PenStyle.DashLine)
    item.setPen(pen)
    fill = QColor(REGION_COLOUR)
    fill.setAlpha(0 if dashed else 40)
    item.setBrush(QBrush(fill))
    item.setZValue(3)
    item.hide()
    return item


class RegionViewBox(pg.ViewBox):
    """A ``ViewBox`` that reports a dragged box to ``on_drawn(x0, y0, x1, y1)`` (view
    coordinates, ordered) and shows the queried one."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.region_mode = False
        self.on_drawn: Callable[[Box], None] | None = None
        self._drawing = False
        self.band = _rect_item(dashed=True)       # while dragging
        self.region = _rect_item(dashed=False)    # the box being queried
        for item in (self.band, self.region):
            self.addItem(item, ignoreBounds=True)

    def show_region(self, box: Box | None) -> None:
        if box is None:
            self.region.hide()
            return
        x0, y0, x1, y1 = box
        self.region.setRect(QRectF(x0, y0, x1 - x0, y1 - y0))
        self.region.show()

    def mouseDragEvent(self, ev, axis=None) -> None:  # noqa: N802 (pyqtgraph override)
        if ev.isStart():
            self._drawing = (ev.button() == Qt.MouseButton.LeftButton and axis is None and (
                self.region_mode or bool(ev.modifiers() & Qt.KeyboardModifier.ShiftModifier)))
        if not self._drawing:
            super().mouseDragEvent(ev, axis)
            return
        ev.accept()
        rect = QRectF(self.mapToView(ev.buttonDownPos()), self.mapToView(ev.pos())).normalized()
        if not ev.isFinish():
            self.band.setRect(rect)
            self.band.show()
            return
        self._drawing = False
        self.band.hide()
        if self.on_drawn is not None:
            self.on_drawn((rect.left(), rect.top(), rect.right(), rect.bottom()))
