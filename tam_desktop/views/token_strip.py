"""The answer (or the prompt) as a paragraph of clickable token chips.

The chips are painted by one widget rather than being one widget each: a 500-token answer then
shows as fast as a 5-token one, and restyling the current token repaints two rectangles.
"""

from __future__ import annotations

import html
import time
from bisect import bisect_left
from collections.abc import Callable, Sequence

import numpy as np
from PySide6.QtCore import QEvent, QRect, QSize, Qt, QTimer, Signal
from PySide6.QtGui import (
    QColor,
    QHelpEvent,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPen,
    QPixmap,
    QResizeEvent,
)
from PySide6.QtWidgets import QFrame, QScrollArea, QSizePolicy, QToolTip, QWidget

from tam_desktop.models.evidence import answer_flags
from tam_desktop.models.playback import PlaybackState
from tam_desktop.models.text import token_tooltip
from tam_desktop.views.region_box import REGION_COLOUR
from tam_engine.core.flags import EvidenceFlags
from tam_engine.core.token_maps import TokenKind
from tam_engine.core.tokens import display_token

# look -> (background, text, border)
LOOKS: dict[str, tuple[str, str, str]] = {
    "plain": ("#f1f3f4", "#202124", "#dadce0"),
    "selected": ("#d2e3fc", "#174ea6", "#8ab4f8"),
    "current": ("#1a73e8", "#ffffff", "#1967d2"),
    "streaming": ("#fafafa", "#80868b", "#dadce0"),
}
_PAD_X, _PAD_Y, _GAP, _MARGIN = 6, 3, 4, 4
# The chip pictures are drawn ahead in slices of at most this many seconds, and not while the
# user is switching tokens (each switch puts the next slice this many milliseconds off).
WARM_SLICE_S = 0.004
WARM_PAUSE_MS = 150
# "Little visual evidence" (tam_engine.core.flags): an orange underline (red is the cursor's).
FLAG_COLOUR = "#e8710a"


def _paint_chip(p: QPainter, r: QRect, text: str, look: str) -> None:
    bg, fg, border = LOOKS[look]
    pen = QPen(QColor(border))
    if look == "streaming":
        pen.setStyle(Qt.PenStyle.DashLine)
    p.setPen(pen)
    p.setBrush(QColor(bg))
    p.drawRoundedRect(r.adjusted(0, 0, -1, -1), 4, 4)
    p.setPen(QColor(fg))
    p.drawText(r, Qt.AlignmentFlag.AlignCenter, text)


class TokenCanvas(QWidget):
    """Paints the chips, lays them out like words and reports clicks with their modifiers."""

    clicked = Signal(int, object)  # (index, Qt.KeyboardModifier)

    def __init__(self, tooltip: Callable[[int], str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._tooltip = tooltip
        self.texts: list[str] = []
        self.looks: list[str] = []
        self.marks: frozenset[int] = frozenset()   # flagged chips: underlined
        self._rects: list[QRect] = []
        self._bottoms: list[int] = []  # each chip's bottom edge: rising, to find a row at once
        self._widths: list[int] = []   # each chip's width, measured once
        self._widths_font = self.font()
        self._chips: dict[tuple[int, str], QPixmap] = {}  # (index, look) -> its picture
        self._warmed = 0
        self._warm_timer = QTimer(self)
        self._warm_timer.timeout.connect(self._warm_up)
        self._laid_out_width = -1
        self.highlighted: list[int] = []   # chips outlined (a region query's best tokens)
        font = self.font()
        font.setPointSizeF(font.pointSizeF() + 1)
        self.setFont(font)

    # ------------------------------------------------------------------ content
    def set_tokens(self, texts: Sequence[str], look: str) -> None:
        self._widths = []
        self._chips.clear()
        self.texts = [display_token(t) for t in texts]
        self.looks = [look] * len(self.texts)
        self.marks = frozenset()
        self._relayout()
        self._warmed = 0
        if look == "plain" and len(self.texts) > 64:
            self._warm_timer.start(0)
        else:
            self._warm_timer.stop()

    def append(self, texts: Sequence[str], look: str) -> None:
        self.texts += [display_token(t) for t in texts]
        self.looks += [look] * len(texts)
        self._relayout()

    def set_look(self, index: int, look: str) -> None:
        if 0 <= index < len(self.looks) and self.looks[index] != look:
            self.looks[index] = look
            self.update(self._rects[index].adjusted(-2, -2, 2, 2))
            if self._warm_timer.isActive():   # a switch: the warm-up waits for a pause
                self._warm_timer.start(WARM_PAUSE_MS)

    def chip_rect(self, index: int) -> QRect:
        return QRect(self._rects[index])

    def index_at(self, x: int, y: int) -> int | None:
        for i in range(bisect_left(self._bottoms, y), len(self._rects)):
            r = self._rects[i]
            if r.top() > y:
                break
            if r.contains(x, y):
                return i
        return None

    # ------------------------------------------------------------------ layout
    def _relayout(self) -> None:
        self._rects = self._layout(self.width())
        self._bottoms = [r.bottom() for r in self._rects]
        self._laid_out_width = self.width()
        self.setMinimumHeight(self._height(self._rects))
        self.update()

    def _layout(self, width: int) -> list[QRect]:
        fm = self.fontMetrics()
        h = fm.height() + 2 * _PAD_Y
        right = max(width - _MARGIN, 80)
        x, y, rects = _MARGIN, _MARGIN, []
        if self._widths_font != self.font():
            self._widths, self._widths_font = [], self.font()
        # Each text measured once (layout runs on every size query of the strip).
        self._widths += [fm.horizontalAdvance(t) + 2 * _PAD_X
                         for t in self.texts[len(self._widths):]]
        for w in self._widths:
            if x + w > right and x > _MARGIN:
                x, y = _MARGIN, y + h + _GAP
            rects.append(QRect(x, y, w, h))
            x += w + _GAP
        return rects

    @staticmethod
    def _height(rects: list[QRect]) -> int:
        return (rects[-1].bottom() + 1 + _MARGIN) if rects else 0

    def hasHeightForWidth(self) -> bool:  # noqa: N802
        return True

    def heightForWidth(self, width: int) -> int:  # noqa: N802
        return self._height(self._layout(width))

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(200, self._height(self._rects))

    def resizeEvent(self, ev: QResizeEvent) -> None:  # noqa: N802
        super().resizeEvent(ev)
        if ev.size().width() != self._laid_out_width:
            self._relayout()

    # ------------------------------------------------------------------ painting and input
    def paintEvent(self, ev: QPaintEvent) -> None:  # noqa: N802
        p = QPainter(self)
        area = ev.rect()
        dpr = self.devicePixelRatioF()
        # Only the rows in the painted area (a long answer has a thousand chips), each drawn
        # from its cached picture: jumping to a far token scrolls the strip and repaints
        # every chip in view, which drawn afresh costs more than the rest of the switch.
        for i in range(bisect_left(self._bottoms, area.top()), len(self._rects)):
            r = self._rects[i]
            if r.top() > area.bottom():
                break
            if r.intersects(area):
                p.drawPixmap(r.topLeft(), self._chip(i, dpr))
        if self.marks:
            p.setPen(QPen(QColor(FLAG_COLOUR), 3))
            for i in self.marks:
                r = self._rects[i]
                if r.intersects(area):
                    p.drawLine(r.left() + 3, r.bottom() + 1, r.right() - 3, r.bottom() + 1)
        self._paint_highlights(p)
        p.end()

    def _chip(self, i: int, dpr: float) -> QPixmap:
        key = (i, self.looks[i])
        pm = self._chips.get(key)
        if pm is None or pm.devicePixelRatio() != dpr:
            r = self._rects[i]
            pm = QPixmap(round(r.width() * dpr), round(r.height() * dpr))
            pm.setDevicePixelRatio(dpr)
            pm.fill(Qt.GlobalColor.transparent)
            q = QPainter(pm)
            q.setRenderHint(QPainter.RenderHint.Antialiasing)
            q.setFont(self.font())
            _paint_chip(q, QRect(0, 0, r.width(), r.height()), self.texts[i], self.looks[i])
            q.end()
            self._chips[key] = pm
        return pm

    def _warm_up(self) -> None:
        """Idle time after a new answer: draw the plain chips' pictures a few milliseconds at
        a time, so that later jumps through a long answer only copy them."""
        dpr = self.devicePixelRatioF()
        stop = time.perf_counter() + WARM_SLICE_S
        i, n = self._warmed, len(self._rects)
        while i < n and time.perf_counter() < stop:
            if self.looks[i] == "plain":
                self._chip(i, dpr)
            i += 1
        self._warmed = i
        if i >= n:
            self._warm_timer.stop()
        elif self._warm_timer.interval():
            self._warm_timer.setInterval(0)   # after a pause: the next slices at once

    def changeEvent(self, ev: QEvent) -> None:  # noqa: N802
        if ev.type() == QEvent.Type.FontChange:
            self._chips.clear()
        super().changeEvent(ev)

    def set_highlighted(self, indices: Sequence[int]) -> None:
        """Outline these chips (in the region's colour) until set again."""
        old, self.highlighted = self.highlighted, [i for i in indices if 0 <= i < len(self._rects)]
        for i in set(old) | set(self.highlighted):
            if i < len(self._rects):
                self.update(self._rects[i].adjusted(-3, -3, 3, 3))

    def _paint_highlights(self, p: QPainter) -> None:
        pen = QPen(QColor(REGION_COLOUR))
        pen.setWidthF(2.0)
        p.setPen(pen)
        p.setBrush(Qt.BrushStyle.NoBrush)
        for i in self.highlighted:
            if i < len(self._rects):
                p.drawRoundedRect(self._rects[i].adjusted(-1, -1, 0, 0), 5, 5)

    def mousePressEvent(self, ev: QMouseEvent) -> None:  # noqa: N802
        pos = ev.position().toPoint()
        i = self.index_at(pos.x(), pos.y())
        if ev.button() == Qt.MouseButton.LeftButton and i is not None \
                and self.looks[i] != "streaming":
            self.clicked.emit(i, ev.modifiers())
            ev.accept()
            return
        super().mousePressEvent(ev)

    def mouseMoveEvent(self, ev: QMouseEvent) -> None:  # noqa: N802
        pos = ev.position().toPoint()
        i = self.index_at(pos.x(), pos.y())
        clickable = i is not None and self.looks[i] != "streaming"
        self.setCursor(Qt.CursorShape.PointingHandCursor if clickable
                       else Qt.CursorShape.ArrowCursor)

    def event(self, ev: QEvent) -> bool:
        # PySide6 hands over the event's own class, so a tool-tip event is a QHelpEvent.
        if ev.type() == QEvent.Type.ToolTip and isinstance(ev, QHelpEvent):
            i = self.index_at(ev.pos().x(), ev.pos().y())
            if i is None:
                QToolTip.hideText()
            else:  # written only when asked for: showing a new answer costs nothing here
                QToolTip.showText(ev.globalPos(), self._tooltip(i), self, self._rects[i])
            return True
        return super().event(ev)


class TokenStrip(QScrollArea):
    """Chips of one kind of token (answer or prompt); writes back only through the state."""

    def __init__(self, state: PlaybackState, kind: TokenKind = "answer",
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.kind: TokenKind = kind
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Maximum)
        self.canvas = TokenCanvas(self._tooltip)
        self.canvas.setMouseTracking(True)
        self.setWidget(self.canvas)
        self._styled: dict[int, str] = {}
        self.flags: EvidenceFlags | None = None   # of the answer's object words
        self.canvas.clicked.connect(self._on_chip_clicked)
        state.content_changed.connect(self._rebuild)
        state.selection_changed.connect(self._restyle)
        state.token_changed.connect(self._restyle)
        if kind == "answer":
            state.streamed.connect(self._on_streamed)
        self._rebuild()

    def sizeHint(self) -> QSize:  # noqa: N802
        # As tall as the chips (so a short answer leaves room for the text map), up to a cap.
        h = self.canvas.heightForWidth(max(self.viewport().width(), 200))
        return QSize(300, min(max(h, 34), self.max_hint_height) + 2 * self.frameWidth())

    max_hint_height = 240

    @property
    def count(self) -> int:
        return len(self.canvas.texts)

    @property
    def looks(self) -> list[str]:
        return list(self.canvas.looks)

    def _rebuild(self) -> None:
        ex = self.state.explanation
        texts: list[str] = []
        if ex is not None and (self.kind == "answer" or ex.prompt is not None):
            texts = ex.tokens(self.kind).texts
        self._styled = {}
        self.canvas.set_tokens(texts, "plain")
        self.flags = None
        if ex is not None and self.kind == "answer" and texts:
            self.flags = answer_flags(ex)
            assert self.flags is not None
            self.canvas.marks = frozenset(int(i) for i in np.flatnonzero(self.flags.flagged))
        self._restyle()
        self.updateGeometry()

    def _on_streamed(self, texts: list[str]) -> None:
        c = self.canvas
        if c.looks and (c.looks[0] != "streaming" or len(texts) < len(c.texts)):
            c.set_tokens([], "streaming")
        c.append(texts[len(c.texts):], "streaming")
        self.updateGeometry()
        if c.texts:
            r = c.chip_rect(len(c.texts) - 1)
            self.ensureVisible(r.center().x(), r.center().y(), 4, r.height())

    def _tooltip(self, index: int) -> str:
        ex = self.state.explanation
        if ex is None:
            return "Still generating: the maps appear when the answer is complete."
        note = self.flags.note(index) if self.flags is not None else None
        tip = token_tooltip(ex, index, self.kind)
        return tip if note is None else (
            f"<span style='color:{FLAG_COLOUR}'><b>{html.escape(note)}</b></span><br>{tip}")

    def _restyle(self, *_args: object) -> None:
        st, c = self.state, self.canvas
        if st.explanation is None or not c.looks or c.looks[0] == "streaming":
            return
        mine = st.kind == self.kind
        wanted: dict[int, str] = {}
        if mine:
            wanted = {i: "selected" for i in st.selection}
            wanted[st.token] = "current"
        for i in set(self._styled) | set(wanted):
            c.set_look(i, wanted.get(i, "plain"))
        self._styled = wanted
        if mine and st.token < len(c.texts):
            r = c.chip_rect(st.token)
            self.ensureVisible(r.center().x(), r.center().y(), 4, r.height())

    def set_highlighted(self, indices: Sequence[int]) -> None:
        """Outline these tokens (a region query's best ones); an empty list clears."""
        self.canvas.set_highlighted(indices)

    def _on_chip_clicked(self, index: int, modifiers: Qt.KeyboardModifier) -> None:
        st = self.state
        if modifiers & Qt.KeyboardModifier.ControlModifier:
            st.toggle_in_selection(index, self.kind)
        elif modifiers & Qt.KeyboardModifier.ShiftModifier:
            st.extend_selection(index, self.kind)
        else:
            st.set_token(index, self.kind)
