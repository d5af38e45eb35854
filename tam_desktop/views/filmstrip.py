"""Video navigation: a frame slider with play/pause, and a filmstrip of thumbnails.

Under each thumbnail a bar shows how strongly the current token (or phrase) activates that
frame, so the frames that carried the evidence stand out.
"""

from __future__ import annotations

import threading
import time
import weakref

import cv2
import numpy as np
from PySide6.QtCore import QObject, QRect, QSize, Qt, QThreadPool, QTimer
from PySide6.QtGui import QColor, QImage, QMouseEvent, QPainter, QPaintEvent, QPen, QPixmap
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QScrollArea,
    QSlider,
    QStyle,
    QStyleOptionSlider,
    QToolButton,
    QVBoxLayout,
    QWidget,
)
from superqt.utils import signals_blocked

from tam_desktop.models.playback import FrameCursor, PlaybackState
from tam_desktop.models.text import EVIDENCE_LABEL
from tam_desktop.views.colors import css_color

THUMB_H = 64
BAR_H = 10
# The thumbnail thread pauses while new content is shown and while the user switches tokens or
# frames (until this many seconds after the last switch): it competes with the switch for the
# interpreter and the CPU.
THUMB_PAUSE_S = 0.15


class Filmstrip(QWidget):
    """Thumbnails of the sampled frames; click one to show it.

    A long video (hundreds of frames, decoded on demand from its file) must not stall the UI:
    thumbnails are made on a background thread, nearest the current frame first, and painted
    as they arrive (a grey placeholder until then); only the thumbnails in view are painted,
    and a thumbnail's place is arithmetic (all frames of a video have one size)."""

    def __init__(self, state: PlaybackState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self._thumbs: list[QPixmap | None] = []
        self._thumb_w = 0
        self._strengths: np.ndarray | None = None
        self._media_id = 0
        self._generation = 0
        self._ready: list[tuple[int, int, np.ndarray]] = []   # (generation, frame, rgb)
        self._lock = threading.Lock()
        self._busy_until = 0.0   # time.monotonic() until which the thumbnail thread waits
        self._outlined = 0       # the frame drawn with the current frame's outline
        self._poll = QTimer(self)
        self._poll.setInterval(30)
        self._poll.timeout.connect(self._collect)
        self.setMouseTracking(True)
        state.content_changed.connect(self._rebuild)
        state.media_index_changed.connect(self._rebuild)
        state.cursor.frame_changed.connect(self._on_frame)
        state.selection_changed.connect(self._update_strengths)
        state.token_changed.connect(self._update_strengths)
        state.display.changed.connect(self._update_strengths)
        self._rebuild()

    def _rebuild(self, *_args: object) -> None:
        m = self.state.current_media
        if m is None or m.n_frames < 2:
            self._thumbs = []
            self._generation += 1
        elif id(m) != self._media_id or not self._thumbs:
            self._generation += 1
            h, w = m.frames.shape[1:3]
            self._thumb_w = max(1, round(w * THUMB_H / h))
            self._thumbs = [None] * m.n_frames
            start = min(self.state.cursor.frame, m.n_frames - 1)
            order = sorted(range(m.n_frames), key=lambda i: abs(i - start))
            gen, frames, tw = self._generation, m.frames, self._thumb_w
            QThreadPool.globalInstance().start(
                lambda: self._make_thumbnails(gen, frames, tw, order))
            self._poll.start()
        self._media_id = id(m) if m is not None else 0
        self._update_strengths()
        self.updateGeometry()
        self.adjustSize()

    def _make_thumbnails(self, generation: int, frames, tw: int, order: list[int]) -> None:
        """Background thread: small RGB arrays only (QPixmaps are made on the UI thread); stops
        as soon as other media are shown."""
        for i in order:
            while time.monotonic() < self._busy_until and generation == self._generation:
                time.sleep(0.02)
            if generation != self._generation:
                return
            small = np.ascontiguousarray(cv2.resize(
                frames[i], (tw, THUMB_H), interpolation=cv2.INTER_AREA))
            with self._lock:
                self._ready.append((generation, i, small))

    def _collect(self) -> None:
        with self._lock:
            ready, self._ready = self._ready, []
        for generation, i, small in ready:
            if generation == self._generation and i < len(self._thumbs):
                img = QImage(small.data, small.shape[1], small.shape[0], 3 * small.shape[1],
                             QImage.Format.Format_RGB888)
                self._thumbs[i] = QPixmap.fromImage(img.copy())
                r = self._thumb_rect(i)
                if r is not None:
                    self.update(r)
        if all(t is not None for t in self._thumbs):
            self._poll.stop()

    def _update_strengths(self, *_args: object) -> None:
        self._busy_until = time.monotonic() + THUMB_PAUSE_S
        self._strengths = self.state.frame_strengths() if self._thumbs else None
        # Only the bars change (a token switch repaints them, not the pictures above).
        first = self._thumb_rect(0)
        if first is not None:
            self.update(QRect(0, first.bottom() + 1, self.width(), BAR_H + 4))

    def _on_frame(self, frame: int) -> None:
        if not self.state.cursor.playing:   # playing needs the thumbnails it reaches
            self._busy_until = time.monotonic() + THUMB_PAUSE_S
        # Only the old and the new current frame's outline change.
        for i in (self._outlined, frame):
            r = self._thumb_rect(i)
            if r is not None:
                self.update(r.adjusted(-4, -4, 4, 4))
        self._outlined = frame
        r = self._thumb_rect(self.state.cursor.frame)
        parent = self.parentWidget()
        scroll = parent.parentWidget() if parent is not None else None
        if isinstance(scroll, QScrollArea) and r is not None:
            scroll.ensureVisible(r.center().x(), r.center().y(), r.width(), 0)

    def _thumb_rect(self, i: int) -> QRect | None:
        if not 0 <= i < len(self._thumbs):
            return None
        return QRect(4 + i * (self._thumb_w + 4), 4, self._thumb_w, THUMB_H)

    def sizeHint(self) -> QSize:  # noqa: N802
        w = 4 + len(self._thumbs) * (self._thumb_w + 4)
        return QSize(w, THUMB_H + BAR_H + 12) if self._thumbs else QSize(0, 0)

    def minimumSizeHint(self) -> QSize:  # noqa: N802
        return self.sizeHint()

    def frame_at(self, x: int) -> int | None:
        if not self._thumbs:
            return None
        i = (x - 2) // (self._thumb_w + 4)
        r = self._thumb_rect(int(i))
        return int(i) if r is not None and r.left() - 2 <= x <= r.right() + 2 else None

    def mousePressEvent(self, ev: QMouseEvent) -> None:  # noqa: N802
        i = self.frame_at(int(ev.position().x()))
        if i is not None:
            self.state.cursor.set_frame(i)

    def mouseMoveEvent(self, ev: QMouseEvent) -> None:  # noqa: N802
        i = self.frame_at(int(ev.position().x()))
        m = self.state.current_media
        if i is None or m is None:
            self.setToolTip("")
            return
        tip = f"frame {i + 1} at {m.timestamps[i]:.2f} s"
        if self._strengths is not None:
            tip += f"\n{EVIDENCE_LABEL} of the current token {self._strengths[i]:.3f}"
        self.setToolTip(tip)

    def paintEvent(self, ev: QPaintEvent) -> None:  # noqa: N802
        if not self._thumbs:
            return
        p = QPainter(self)
        current = self._outlined = self.state.cursor.frame
        top = self._strengths.max() if self._strengths is not None and self._strengths.size else 0
        area = ev.rect()
        step = self._thumb_w + 4
        first = max(0, (area.left() - 4) // step)
        last = min(len(self._thumbs), area.right() // step + 1)
        for i in range(first, last):
            r = self._thumb_rect(i)
            assert r is not None
            pm = self._thumbs[i]
            if not r.intersects(area):
                pass   # only the bars or an outline are being repainted
            elif pm is None:
                p.fillRect(r, QColor("#dadce0"))
            else:
                p.drawPixmap(r.topLeft(), pm)
            if self._strengths is not None:
                v = float(self._strengths[i])
                # Bar lengths are relative to the strongest frame.
                frac = v / top if top > 0 else 0.0
                bar = QRect(r.left(), r.bottom() + 3, max(1, round(r.width() * frac)), BAR_H)
                p.fillRect(QRect(r.left(), r.bottom() + 3, r.width(), BAR_H), QColor("#e8eaed"))
                # Coloured on the overlay's scale (the mean over the scale's top).
                shade = min(1.0, v * 255.0 / self.state.current_top())
                p.fillRect(bar, QColor(css_color(self.state.display.colormap, shade)))
            if i == current:
                p.setPen(QPen(QColor("#1a73e8"), 3))
                p.drawRect(r.adjusted(-1, -1, 1, 1))
        p.end()


class PlaybackClock(QObject):
    """The one timer that advances a cursor while it plays, however many panes show it."""

    _clocks: weakref.WeakKeyDictionary[FrameCursor, PlaybackClock] = weakref.WeakKeyDictionary()

    def __init__(self, cursor: FrameCursor) -> None:
        super().__init__()
        self.cursor = cursor
        self.timer = QTimer(self)
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.timeout.connect(cursor.advance)
        cursor.playing_changed.connect(self._on_playing)

    @classmethod
    def for_cursor(cls, cursor: FrameCursor) -> PlaybackClock:
        clock = cls._clocks.get(cursor)
        if clock is None:
            clock = cls._clocks[cursor] = cls(cursor)
        return clock

    def _on_playing(self, playing: bool) -> None:
        if playing:
            fps = self.cursor.fps if self.cursor.fps > 0 else 2.0
            self.timer.start(max(1, round(1000.0 / fps)))
        else:
            self.timer.stop()


class JumpSlider(QSlider):
    """A slider that goes where the groove is clicked (a plain QSlider pages by ten steps,
    which on a short clip means the first or the last frame), and then drags from there."""

    def value_at(self, x: float) -> int:
        """The value whose handle would be centred at ``x`` (widget pixels)."""
        opt = QStyleOptionSlider()
        self.initStyleOption(opt)
        style = self.style()
        groove = style.subControlRect(QStyle.ComplexControl.CC_Slider, opt,
                                      QStyle.SubControl.SC_SliderGroove, self)
        handle = style.subControlRect(QStyle.ComplexControl.CC_Slider, opt,
                                      QStyle.SubControl.SC_SliderHandle, self)
        span = max(groove.width() - handle.width(), 1)
        pos = round(x - groove.x() - handle.width() / 2)
        return QStyle.sliderValueFromPosition(self.minimum(), self.maximum(),
                                              min(max(pos, 0), span), span, opt.upsideDown)

    def mousePressEvent(self, ev: QMouseEvent) -> None:  # noqa: N802 (Qt override)
        if ev.button() == Qt.MouseButton.LeftButton and self.maximum() > self.minimum():
            opt = QStyleOptionSlider()
            self.initStyleOption(opt)
            handle = self.style().subControlRect(QStyle.ComplexControl.CC_Slider, opt,
                                                 QStyle.SubControl.SC_SliderHandle, self)
            if not handle.contains(ev.position().toPoint()):
                self.setValue(self.value_at(ev.position().x()))
        super().mousePressEvent(ev)  # the handle is under the pointer now: a drag starts


class FrameControls(QWidget):
    """Play/pause, a frame slider and the frame's time; playback runs on a QTimer."""

    def __init__(self, state: PlaybackState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.play_button = QToolButton(self)
        self.play_button.setCheckable(True)
        self.play_button.setToolTip("Play the video with its maps (Space)")
        self.play_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.slider = JumpSlider(Qt.Orientation.Horizontal, self)
        self.slider.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.slider.setToolTip("Frame (Up/Down or , and .)")
        self.label = QLabel(self)
        self.label.setMinimumWidth(150)
        self.filmstrip = Filmstrip(state)
        self.scroll_area = QScrollArea(self)
        self.scroll_area.setWidget(self.filmstrip)
        self.scroll_area.setWidgetResizable(False)
        self.scroll_area.setFixedHeight(THUMB_H + BAR_H + 12 + 18)
        self.scroll_area.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.clock = PlaybackClock.for_cursor(state.cursor)
        row = QHBoxLayout()
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.play_button)
        row.addWidget(self.slider, 1)
        row.addWidget(self.label)
        col = QVBoxLayout(self)
        col.setContentsMargins(4, 2, 4, 2)
        col.addLayout(row)
        col.addWidget(self.scroll_area)
        self.play_button.toggled.connect(state.cursor.set_playing)
        self.slider.valueChanged.connect(state.cursor.set_frame)
        state.cursor.frame_changed.connect(self._on_frame)
        state.cursor.length_changed.connect(self._on_length)
        state.cursor.playing_changed.connect(self._on_playing)
        state.content_changed.connect(self._on_content)
        self._on_length(state.cursor.n_frames)
        self._on_playing(False)
        self._on_content()

    def _on_content(self) -> None:
        m = self.state.current_media
        self.setVisible(m is not None and m.n_frames > 1)

    def _on_length(self, n: int) -> None:
        with signals_blocked(self.slider):
            self.slider.setRange(0, max(n - 1, 0))
        self._on_content()
        self._on_frame(self.state.cursor.frame)

    def _on_frame(self, frame: int) -> None:
        with signals_blocked(self.slider):
            self.slider.setValue(frame)
        m = self.state.current_media
        if m is not None and m.n_frames > 1:
            t = float(m.timestamps[min(frame, m.n_frames - 1)])
            self.label.setText(f"frame {frame + 1}/{m.n_frames} · {t:.2f} s")

    def _on_playing(self, playing: bool) -> None:
        with signals_blocked(self.play_button):
            self.play_button.setChecked(playing)
        self.play_button.setText("❚❚" if playing else "▶")
