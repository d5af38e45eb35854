"""Each answer token's visual evidence (the mean of its map) over the answer, with a draggable
cursor."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QFont, QFontMetricsF
from PySide6.QtWidgets import QGraphicsItem, QWidget

from tam_desktop.models.evidence import answer_flags
from tam_desktop.models.playback import PlaybackState
from tam_desktop.models.text import EVIDENCE_LABEL
from tam_desktop.views.region_box import REGION_COLOUR
from tam_desktop.views.token_strip import FLAG_COLOUR
from tam_engine.core.flags import FLAG_LABEL
from tam_engine.core.tokens import display_token

MAX_LABEL_PX = 90.0   # a longer token label is shortened with an ellipsis
LABEL_GAP_PX = 6.0    # at least this much space between two token labels


def _bar_path(heights: np.ndarray, width: float = 0.8, at: np.ndarray | None = None
              ) -> tuple[np.ndarray, np.ndarray]:
    """x, y of one outline through bars of ``width`` centred on ``at`` (default 0, 1, 2, ...),
    at height 0 between bars."""
    i = np.arange(heights.size, dtype=float) if at is None else np.asarray(at, dtype=float)
    half = width / 2.0
    x = np.stack([i - half, i - half, i + half, i + half], axis=1).reshape(-1)
    h = np.asarray(heights, dtype=float)
    y = np.stack([np.zeros_like(h), h, h, np.zeros_like(h)], axis=1).reshape(-1)
    return x, y


class TokenTimeline(pg.PlotWidget):
    """``TokenMaps.visual_strength()`` per answer token; the ``InfiniteLine`` is the token."""

    def __init__(self, state: PlaybackState, parent: QWidget | None = None) -> None:
        super().__init__(parent, background="w")
        self.state = state
        self.setMouseEnabled(x=False, y=False)
        self.setMenuEnabled(False)
        self.hideButtons()
        # The timeline is low: its y-axis is named on the bottom line, which has the room.
        self.getAxis("left").enableAutoSIPrefix(False)
        self.setLabel("bottom", f"answer token  \u00b7  bar height: {EVIDENCE_LABEL}")
        # A known font for the token labels, so that thinning them measures what is drawn.
        self.tick_font = QFont(self.font())
        self.getAxis("bottom").setStyle(tickFont=self.tick_font)
        self.showGrid(x=False, y=True, alpha=0.2)
        # Moving the cursor repaints the plot; the axes (one label per token) do not change,
        # so keep them as pixmaps instead of redrawing their text on every token switch.
        for name in ("left", "bottom"):
            self.getAxis(name).setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        # All bars are one filled path (a bar item per token is slow to paint on long
        # answers); the phrase is a second path over it.
        self.bars = pg.PlotCurveItem(fillLevel=0.0, brush="#8ab4f8", pen=None)
        self.selection_bars = pg.PlotCurveItem(fillLevel=0.0, brush="#1a73e8", pen=None)
        # A long answer's bars are thousands of path points: keep them as a pixmap, so moving
        # the cursor repaints the line, not the bars.
        for item in (self.bars, self.selection_bars):
            item.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self.addItem(self.bars)
        self.addItem(self.selection_bars)
        # Object words with little visual evidence (tam_engine.core.flags): a mark above each
        # of their bars, wide enough to show on both sides of the cursor line.
        self.flag_marks = pg.ScatterPlotItem(symbol="t", size=13, pen=pg.mkPen("w"),
                                             brush=FLAG_COLOUR)
        self.addItem(self.flag_marks)
        self.cursor = pg.InfiniteLine(pos=0, angle=90, movable=True,
                                      pen=pg.mkPen("#d93025", width=2),
                                      hoverPen=pg.mkPen("#ea4335", width=4))
        self.addItem(self.cursor)
        self._strength: np.ndarray = np.zeros(0, np.float32)
        self.flagged: np.ndarray = np.zeros(0, bool)
        self.region_marks: pg.ScatterPlotItem | None = None   # see set_highlighted
        self._labels: list[str] = []
        self._elided: tuple[list[str], list[float]] | None = None  # labels as drawn, half widths
        self.cursor.sigPositionChanged.connect(self._on_cursor_dragged)
        self.scene().sigMouseClicked.connect(self._on_clicked)
        self.getPlotItem().vb.sigResized.connect(self._relabel)
        state.content_changed.connect(self._rebuild)
        state.token_changed.connect(self._sync)
        state.selection_changed.connect(self._sync)
        self._rebuild()

    def _rebuild(self) -> None:
        ex = self.state.explanation
        n = ex.n_answer if ex is not None else 0
        self._strength = ex.answer.visual_strength() if ex is not None else np.zeros(0)
        self.bars.setData(*_bar_path(self._strength))
        self.setXRange(-0.5, max(n, 1) - 0.5, padding=0.01)
        # Maps are sparse, so strengths are small: scale to the largest, not to 1.
        top = float(self._strength.max()) if n else 1.0
        y_top = max(top * 1.1, 0.02)
        self.setYRange(0.0, y_top, padding=0.0)
        # Scored by visual_strength, the bars' heights (computed once per explanation).
        flags = answer_flags(ex) if ex is not None and n else None
        self.flagged = flags.flagged if flags is not None else np.zeros(0, bool)
        xs = np.flatnonzero(self.flagged)
        # Above the bar (a flagged bar is low): "t" points down at it.
        self.flag_marks.setData(x=xs.astype(float), y=self._strength[xs] + 0.15 * y_top)
        self.setLabel("bottom", f"answer token  \u00b7  bar height: {EVIDENCE_LABEL}"
                      + (f"  \u00b7  \u25bc {FLAG_LABEL}" if xs.size else ""))
        self.cursor.setBounds((0, max(n - 1, 0)))
        self._labels = [display_token(t) for t in ex.answer_texts] if ex is not None else []
        self._elided = None
        self._relabel()
        self.cursor.setVisible(n > 0)
        self._sync()

    def token_x(self, i: float) -> float:
        """Where token ``i`` sits on the bottom axis, in the axis' own pixels."""
        vb = self.getPlotItem().vb
        return float(self.getAxis("bottom").mapFromScene(vb.mapViewToScene(QPointF(i, 0))).x())

    def _relabel(self, *_args: object) -> None:
        """Label as many tokens as fit without overlapping: from the left, each label that
        would touch the one before is left out (its bar stays); a label wider than
        ``MAX_LABEL_PX`` is shortened with an ellipsis."""
        axis = self.getAxis("bottom")
        if not self._labels:
            axis.setTicks([[]])
            return
        if self._elided is None:  # once per answer: resizing only moves the labels
            metrics = QFontMetricsF(self.tick_font)
            # Measured once per distinct text (an answer repeats most of its tokens).
            measured: dict[str, tuple[str, float]] = {}
            for t in set(self._labels):
                e = metrics.elidedText(t, Qt.TextElideMode.ElideRight, MAX_LABEL_PX)
                measured[t] = (e, metrics.horizontalAdvance(e) / 2)
            self._elided = ([measured[t][0] for t in self._labels],
                            [measured[t][1] for t in self._labels])
        shown, halves = self._elided
        # Token positions on the axis are linear in the index: two mappings give them all
        # (mapping each of a thousand tokens through the view box took a third of a second).
        x0 = self.token_x(0)
        dx = self.token_x(1) - x0
        ticks, last_right = [], -np.inf
        for i, half in enumerate(halves):
            x = x0 + i * dx
            if x - half >= last_right + LABEL_GAP_PX:
                ticks.append((i, shown[i]))
                last_right = x + half
        axis.setTicks([ticks])

    def _sync(self, *_args: object) -> None:
        st = self.state
        mine = st.kind == "answer" and st.explanation is not None
        sel: list[int] = []
        if mine:
            sel = sorted(i for i in st.selection if i < self._strength.size)
        # Only the phrase's own bars: redrawing a path through every bar of a long answer on
        # each token switch costs more than the switch itself.
        self.selection_bars.setData(*_bar_path(self._strength[sel], at=np.asarray(sel)))
        # A prompt token is current: the answer timeline has no position for it.
        self.cursor.setVisible(mine and self._strength.size > 0)
        if mine:
            with pg.SignalBlock(self.cursor.sigPositionChanged, self._on_cursor_dragged):
                self.cursor.setPos(st.token)

    def set_highlighted(self, tokens: Sequence[int]) -> None:
        """Mark these answer tokens (a region query's best ones) with a triangle over their
        bars; an empty list clears."""
        if self.region_marks is None:
            self.region_marks = pg.ScatterPlotItem(symbol="t", size=11, pen=None,
                                                   brush=REGION_COLOUR)
            self.region_marks.setZValue(5)
            self.addItem(self.region_marks)
        ks = [int(k) for k in tokens if 0 <= int(k) < self._strength.size]
        top = self.getPlotItem().vb.viewRange()[1][1]
        self.region_marks.setData(x=ks, y=[float(self._strength[k]) + 0.06 * top for k in ks])

    def _on_cursor_dragged(self, line: pg.InfiniteLine) -> None:
        if self._strength.size:
            k = int(round(line.value()))
            if k != self.state.token or self.state.kind != "answer":
                self.state.set_token(k, "answer")

    def _on_clicked(self, ev) -> None:
        if ev.button() != Qt.MouseButton.LeftButton or not self._strength.size:
            return
        vb = self.getPlotItem().vb
        if not vb.sceneBoundingRect().contains(ev.scenePos()):
            return
        x = vb.mapSceneToView(ev.scenePos()).x()
        self.state.set_token(int(np.clip(round(x), 0, self._strength.size - 1)), "answer")
