"""The image (or current video frame) with the current token's map over it, and a colour bar."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtWidgets import QGraphicsItem, QLabel, QVBoxLayout, QWidget

from tam_desktop.models.playback import PlaybackState
from tam_desktop.views.colors import lut, pg_colormap
from tam_engine.render.overlay import resize_map

HEAT_MIN_SIDE = 512   # the heat map's long side is at least this, or the frame's
HEAT_STEP = 256       # and grows with the view in these steps, so resizing rarely recomputes


class MediaView(QWidget):
    """A pyqtgraph view: frame ``ImageItem`` under a heat-map ``ImageItem`` with opacity.

    The heat map's colours are the renderer's lookup table (``colormap_lut``) and it is blended
    with the item's opacity, which is the same ``(1 - a) * frame + a * colour`` blend that the
    exported overlay uses.
    """

    painted = Signal()  # after a paint of the view (benchmarks wait for it)

    def __init__(self, state: PlaybackState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.graphics = _PaintNotifyingLayout(self)
        self.graphics.setBackground("#202124")
        # Clicking the picture takes the keyboard from text fields: arrows then scrub.
        self.graphics.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.view_box = self.graphics.addViewBox(lockAspect=True, invertY=True, enableMenu=False)
        self.image_item = pg.ImageItem()
        self.heat_item = pg.ImageItem()
        self.heat_item.setZValue(1)
        # The frame changes less often than the map drawn over it: keep its scaled rendering.
        self.image_item.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self.view_box.addItem(self.image_item)
        self.view_box.addItem(self.heat_item)
        self.colorbar = pg.ColorBarItem(values=(0.0, 1.0), width=14, interactive=False,
                                        colorMap=pg_colormap(state.display.colormap),
                                        label="activation")
        self.colorbar.axis.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self.graphics.addItem(self.colorbar)
        self.empty_label = QLabel(
            "Open an image or a video (File > Open, or drop it here),\n"
            "or open a saved explanation (File > Open Explanation).", self)
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_label.setStyleSheet("color: #bbb; background: #202124; font-size: 14px;")
        self.value_label = QLabel(self)
        self.value_label.setStyleSheet("color: #ddd; background: transparent;")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.graphics)
        layout.addWidget(self.empty_label)
        self.graphics.painted.connect(self.painted)

        self._frame_key: tuple | None = None
        self._heat_key: tuple | None = None
        self._frame_shape: tuple[int, int] = (0, 0)
        self._heat_side = HEAT_MIN_SIDE

        state.content_changed.connect(self._on_content)
        state.media_index_changed.connect(self._on_content_index)
        state.token_changed.connect(self._on_token)
        state.selection_changed.connect(self._on_token)
        state.cursor.frame_changed.connect(self._on_frame)
        state.display.changed.connect(self._on_display)
        self.graphics.scene().sigMouseMoved.connect(self._on_mouse_moved)
        self.view_box.sigResized.connect(self._on_view_changed)
        self.view_box.sigRangeChanged.connect(self._on_view_changed)
        self._apply_display("colormap")
        self._apply_display("opacity")
        self._on_content()

    # ------------------------------------------------------------------ model events
    def _on_content(self) -> None:
        self._frame_key = self._heat_key = None
        has_media = self.state.current_media is not None
        self.graphics.setVisible(has_media)
        self.empty_label.setVisible(not has_media)
        self.redraw()
        if has_media:
            self.view_box.autoRange(padding=0.0)

    def _on_content_index(self, _index: int) -> None:
        self._on_content()

    def _on_token(self, *_args: object) -> None:
        self._update_heat()

    def _on_frame(self, _frame: int) -> None:
        self.redraw()

    def _on_display(self, name: str) -> None:
        self._apply_display(name)

    def _apply_display(self, name: str) -> None:
        d = self.state.display
        if name == "colormap":
            self.heat_item.setLookupTable(lut(d.colormap))
            self.colorbar.setColorMap(pg_colormap(d.colormap))
        elif name == "opacity":
            self.heat_item.setOpacity(d.opacity)
        elif name == "overlay_visible":
            self._update_heat()
        elif name in ("combine", "stretch"):
            self._update_heat()

    def _on_view_changed(self, *_args: object) -> None:
        h, w = self._frame_shape
        if not h:
            return
        px = self.view_box.viewPixelSize()[0]  # frame pixels per screen pixel
        shown = max(h, w) / px if px > 0 else HEAT_MIN_SIDE
        side = max(HEAT_MIN_SIDE, int(np.ceil(shown / HEAT_STEP)) * HEAT_STEP)
        if side != self._heat_side:
            self._heat_side = side
            self._update_heat()

    # ------------------------------------------------------------------ drawing
    def redraw(self) -> None:
        self._update_frame()
        self._update_heat()

    def _displayed_frame(self) -> int:
        m = self.state.current_media
        return min(self.state.cursor.frame, m.n_frames - 1) if m is not None else 0

    def _update_frame(self) -> None:
        m = self.state.current_media
        if m is None:
            self.image_item.clear()
            return
        f = self._displayed_frame()
        key = (id(m), f)
        if key == self._frame_key:
            return
        self._frame_key = key
        frame = m.frames[f]
        # No levels: uint8 RGB then goes to a QImage without any rescaling pass.
        self.image_item.setImage(frame, autoLevels=False)
        self._frame_shape = frame.shape[:2]

    def _update_heat(self) -> None:
        st = self.state
        visible = st.display.overlay_visible and st.explanation is not None
        grid = st.current_grid() if visible else None
        if grid is None:
            self.heat_item.setVisible(False)
            self.colorbar.setVisible(st.explanation is not None)
            self._heat_key = None
            return
        m = st.current_media
        slot = st.current_slot()
        h, w = self._frame_shape
        key = (id(st.explanation), st.kind, st.selection, st.display.combine, st.media_index,
               slot, h, w, self._heat_side, st.display.stretch)
        if key != self._heat_key:
            self._heat_key = key
            # The exporter's own bilinear resize, so screen and files agree. The map is made
            # only as large as the screen shows it (a smooth map has no finer detail), which
            # keeps resizing and drawing it cheap on big frames.
            scale = min(1.0, self._heat_side / max(h, w))
            hw = (max(1, round(w * scale)), max(1, round(h * scale)))
            # Stretch: the colours span 0 .. the token's strongest cell on any frame (one scale
            # for the whole clip, so playback does not flicker).
            top = max(int(grid.max()), 1) if st.display.stretch else 255
            self.heat_item.setImage(resize_map(grid[slot], hw), autoLevels=False,
                                    levels=(0, top))
            self.heat_item.setRect(QRectF(0, 0, w, h))
            if tuple(self.colorbar.levels()) != (0.0, top / 255.0):
                self.colorbar.setLevels((0.0, top / 255.0), update_items=False)
        self.heat_item.setVisible(m is not None)
        self.colorbar.setVisible(True)

    # ------------------------------------------------------------------ read-out
    def _on_mouse_moved(self, pos: QPointF) -> None:
        st = self.state
        m = st.current_media
        if m is None or not self.view_box.sceneBoundingRect().contains(pos):
            self.value_label.clear()
            return
        p = self.view_box.mapSceneToView(pos)
        x, y = int(p.x()), int(p.y())
        h, w = self._frame_shape
        if not (0 <= x < w and 0 <= y < h):
            self.value_label.clear()
            return
        text = f"x {x}, y {y}"
        grid = st.current_grid()
        if grid is not None:
            cell = grid[st.current_slot()]
            gy, gx = min(y * cell.shape[0] // h, cell.shape[0] - 1), min(
                x * cell.shape[1] // w, cell.shape[1] - 1)
            text += f"   activation {cell[gy, gx] / 255.0:.2f}"
        self.value_label.setText(text)
        self.value_label.adjustSize()
        self.value_label.move(8, 6)

    def heat_image(self) -> np.ndarray | None:
        """The map drawn now (uint8, frame-sized or as large as shown), or None when hidden."""
        if not self.heat_item.isVisible() or self.heat_item.image is None:
            return None
        return np.asarray(self.heat_item.image)


class _PaintNotifyingLayout(pg.GraphicsLayoutWidget):
    painted = Signal()  # forwarded to MediaView.painted

    def paintEvent(self, ev) -> None:  # noqa: N802 (Qt override)
        super().paintEvent(ev)
        self.painted.emit()
