"""The image (or current video frame) with the current token's map over it, and a colour bar.

The map is drawn only over the part of the frame that the media item's grids saw (a centre
crop leaves the margins plain), as the display's layer of a tiled image, with the tiles'
outlines on request.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPainterPath, QPen
from PySide6.QtWidgets import (
    QGraphicsItem,
    QGraphicsPathItem,
    QGraphicsRectItem,
    QLabel,
    QVBoxLayout,
    QWidget,
)

from tam_desktop.models.playback import PlaybackState
from tam_desktop.models.text import MAP_VALUE_LABEL
from tam_desktop.views.colors import lut, pg_colormap
from tam_desktop.views.region_box import RegionViewBox
from tam_engine.core.placement import border_boxes, box_pixels, layer_members

HEAT_MIN_SIDE = 512   # the heat map's long side is at least this, or the frame's
HEAT_STEP = 256       # and grows with the view in these steps, so resizing rarely recomputes


class MediaView(QWidget):
    """A pyqtgraph view: frame ``ImageItem`` under a heat-map ``ImageItem`` with opacity.

    The heat map's colours are the renderer's lookup table (``colormap_lut``) and it is blended
    with the item's opacity, which is the same ``(1 - a) * frame + a * colour`` blend that the
    exported overlay uses.
    """

    painted = Signal()  # after a paint of the view (benchmarks wait for it)
    region_drawn = Signal(object)  # (x0, y0, x1, y1) frame pixels, inside the frame

    def __init__(self, state: PlaybackState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.graphics = _PaintNotifyingLayout(self)
        self.graphics.setBackground("#202124")
        # Clicking the picture takes the keyboard from text fields: arrows then scrub.
        self.graphics.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.view_box = RegionViewBox(lockAspect=True, invertY=True, enableMenu=False)
        self.view_box.on_drawn = self._on_region_drawn
        self.graphics.addItem(self.view_box)
        self.image_item = _Argb32ImageItem()
        self.heat_item = _Argb32ImageItem()
        # The heat map is clipped to the part of the frame its grids saw (the clip item's
        # path, in frame pixels): elsewhere the plain frame shows through.
        self.heat_clip = QGraphicsPathItem()
        self.heat_clip.setPen(QPen(Qt.PenStyle.NoPen))
        self.heat_clip.setFlag(QGraphicsItem.GraphicsItemFlag.ItemClipsChildrenToShape, True)
        self.heat_clip.setZValue(1)
        # The frame changes less often than the map drawn over it: keep its scaled rendering.
        self.image_item.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self.view_box.addItem(self.image_item)
        self.view_box.addItem(self.heat_clip)
        self.heat_item.setParentItem(self.heat_clip)
        self.border_items: list[QGraphicsRectItem] = []
        self.colorbar = pg.ColorBarItem(values=(0.0, 1.0), width=14, interactive=False,
                                        colorMap=pg_colormap(state.display.colormap),
                                        label=MAP_VALUE_LABEL)
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
        elif name in ("combine", "scale", "layer", "tile_borders"):
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
            self._show_borders([])
            return
        m = st.current_media
        slot = st.current_slot()
        h, w = self._frame_shape
        d = st.display
        key = (id(st.explanation), st.kind, st.selection, d.combine, st.media_index,
               slot, h, w, self._heat_side, d.scale, d.layer)
        if key != self._heat_key:
            self._heat_key = key
            # The exporter's own placement and bilinear resize, so screen and files agree. The
            # map is made only as large as the screen shows it (a smooth map has no finer
            # detail), which keeps resizing and drawing it cheap on big frames.
            shrink = min(1.0, self._heat_side / max(h, w))
            hw = (max(1, round(w * shrink)), max(1, round(h * shrink)))
            # The colours span 0 .. the scale's top (the method's 0 .. 1, the token's peak on
            # any frame and tile, or the peak of all tokens). Stretched, the map is placed in
            # float and quantised only by the colour table, so a weak map shows no bands.
            top = st.current_top()
            placed = st.current_placed(hw, as_float=top < 255)
            assert placed is not None
            levels = (0, top) if top >= 255 else (0.0, top / 255.0)
            self.heat_item.setImage(placed.values, autoLevels=False, levels=levels)
            self.heat_item.setRect(QRectF(0, 0, w, h))
            self.heat_clip.setPath(self._seen_path((w, h)))
            if tuple(self.colorbar.levels()) != (0.0, top / 255.0):
                self.colorbar.setLevels((0.0, top / 255.0), update_items=False)
        self.heat_item.setVisible(m is not None)
        self.colorbar.setVisible(True)
        self._show_borders(self._item_border_boxes() if d.tile_borders else [])

    def _item_grids(self) -> list:
        ex = self.state.explanation
        if ex is None:
            return []
        return [ex.grids[i] for i in ex.item_grids(self.state.media_index)]

    def _seen_path(self, size: tuple[int, int]) -> QPainterPath:
        """The frame pixels some grid of the shown layer saw, as a path (clipped to the frame)."""
        grids = self._item_grids()
        w, h = size
        frame = QRectF(0, 0, w, h)
        path = QPainterPath()
        for i in layer_members(grids, self.state.display.layer):
            x0, y0, x1, y1 = box_pixels(grids[i].box, size)
            part = QPainterPath()
            part.addRect(QRectF(x0, y0, x1 - x0, y1 - y0).intersected(frame))
            path = path.united(part)
        return path.simplified()

    def _item_border_boxes(self) -> list:
        return border_boxes(self._item_grids(), self.state.display.layer)

    def _show_borders(self, boxes: list) -> None:
        """One thin outline per box (tiles, a cropped or padded grid), over the map."""
        h, w = self._frame_shape
        while len(self.border_items) > len(boxes):
            self.view_box.removeItem(self.border_items.pop())
        while len(self.border_items) < len(boxes):
            item = QGraphicsRectItem()
            pen = QPen(QColor(255, 255, 255, 220))
            pen.setCosmetic(True)   # one screen pixel wide at any zoom
            pen.setWidthF(1.0)
            item.setPen(pen)
            item.setZValue(2)
            self.view_box.addItem(item)
            self.border_items.append(item)
        frame = QRectF(0, 0, w, h)
        for item, box in zip(self.border_items, boxes):
            x0, y0, x1, y1 = box_pixels(box, (w, h))
            item.setRect(QRectF(x0, y0, x1 - x0, y1 - y0).intersected(frame))

    # ------------------------------------------------------------------ region query
    def set_region_mode(self, on: bool) -> None:
        """In region mode a left drag draws a box (Shift+drag does at any time)."""
        self.view_box.region_mode = on
        self.graphics.setCursor(Qt.CursorShape.CrossCursor if on else Qt.CursorShape.ArrowCursor)

    def show_region(self, box: tuple[float, float, float, float] | None) -> None:
        self.view_box.show_region(box)

    def _on_region_drawn(self, box: tuple[float, float, float, float]) -> None:
        """A dragged box, clipped to the frame; one with no area there is dropped."""
        h, w = self._frame_shape
        x0, y0 = max(box[0], 0.0), max(box[1], 0.0)
        x1, y1 = min(box[2], float(w)), min(box[3], float(h))
        if x1 - x0 >= 1.0 and y1 - y0 >= 1.0:   # less than a pixel: a click, not a box
            self.region_drawn.emit((x0, y0, x1, y1))

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
        heat = self.heat_image()
        if heat is not None:
            if not self.heat_clip.path().contains(QPointF(x + 0.5, y + 0.5)):
                text += "   not seen by the model"
            else:
                hy, hx = min(y * heat.shape[0] // h, heat.shape[0] - 1), min(
                    x * heat.shape[1] // w, heat.shape[1] - 1)
                value = float(heat[hy, hx]) / (255.0 if heat.dtype == np.uint8 else 1.0)
                text += f"   {MAP_VALUE_LABEL} {value:.2f}"
        self.value_label.setText(text)
        self.value_label.adjustSize()
        self.value_label.move(8, 6)

    def heat_image(self) -> np.ndarray | None:
        """The map drawn now (frame-sized or as large as shown: uint8 0 .. 255 on the method's
        scale, float 0 .. 1 when stretched), or None when hidden."""
        if not self.heat_item.isVisible() or self.heat_item.image is None:
            return None
        return np.asarray(self.heat_item.image)


class _Argb32ImageItem(pg.ImageItem):
    """An ``ImageItem`` whose picture is kept as 32-bit ARGB (not premultiplied).

    pyqtgraph hands over an indexed picture (the map through the colour table) or 24-bit RGB
    (a frame); the painter converted either on every paint while scaling it (2-4 ms of each
    switch at 1080p). Converted once here, the painter takes the same scaling and blending
    path for it, in about half the time: the pixels on screen are identical (checked against
    the indexed and RGB pictures at the view's scale and opacity). Not the premultiplied or
    RGB32 formats: the painter scales those along another path, whose nearest pixels differ.
    """

    def render(self) -> None:
        super().render()
        q = getattr(self, "qimage", None)  # (pyqtgraph leaves the attribute untyped)
        if q is not None and not self._unrenderable \
                and q.format() != QImage.Format.Format_ARGB32:
            self.qimage = q.convertToFormat(QImage.Format.Format_ARGB32)


class _PaintNotifyingLayout(pg.GraphicsLayoutWidget):
    painted = Signal()  # forwarded to MediaView.painted

    def paintEvent(self, ev) -> None:  # noqa: N802 (Qt override)
        super().paintEvent(ev)
        self.painted.emit()
