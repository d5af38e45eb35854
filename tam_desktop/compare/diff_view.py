"""The A-minus-B view: the difference of the two shown maps on the shared frame."""

from __future__ import annotations

from functools import cache

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from tam_engine.compare.comparison import Comparison
from tam_engine.core.placement import DEFAULT_LAYER, Layer
from tam_engine.core.tokens import display_token
from tam_engine.render.diff import DIVERGING_NAME, diff_overlay, diverging_lut
from tam_engine.render.figure import resize_frame

MAX_SIDE = 720


@cache
def diverging_pg_colormap() -> pg.ColorMap:
    return pg.ColorMap(pos=np.linspace(0.0, 1.0, 256), color=diverging_lut(),
                       name=DIVERGING_NAME)


class DiffView(QWidget):
    """Shows ``A - B`` over a greyed frame with a blue-white-red colour bar.

    The difference and its colours come from :mod:`tam_engine.compare.comparison` and
    :mod:`tam_engine.render.diff`, the same code the exports use.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.title = QLabel("A \u2212 B", self)
        self.title.setStyleSheet("font-weight: bold; color: #3c4043;")
        self.title.setWordWrap(True)
        self.graphics = pg.GraphicsLayoutWidget(self)
        self.graphics.setBackground("#202124")
        self.view_box = self.graphics.addViewBox(lockAspect=True, invertY=True,
                                                 enableMenu=False)
        self.image_item = pg.ImageItem()
        self.view_box.addItem(self.image_item)
        self.colorbar = pg.ColorBarItem(values=(-1.0, 1.0), width=14, interactive=False,
                                        colorMap=diverging_pg_colormap(),
                                        label="A \u2212 B")
        self.graphics.addItem(self.colorbar)
        self.legend = QLabel("<span style='color:#b2182b'>\u25a0</span> A stronger &nbsp; "
                             "<span style='color:#2166ac'>\u25a0</span> B stronger &nbsp; "
                             "white: the same", self)
        self.legend.setTextFormat(Qt.TextFormat.RichText)
        self.legend.setStyleSheet("color: #5f6368;")
        col = QVBoxLayout(self)
        col.setContentsMargins(4, 0, 4, 0)
        col.setSpacing(2)
        col.addWidget(self.title)
        col.addWidget(self.graphics, 1)
        col.addWidget(self.legend)
        self.diff: np.ndarray | None = None   # the float map shown now, in [-1, 1]
        self._shape: tuple[int, int] | None = None

    def show_difference(self, cmp: Comparison | None, tokens_a: tuple[int, ...],
                        tokens_b: tuple[int, ...], media_index: int, frame: int,
                        how: str, aligned: bool, layer: Layer = DEFAULT_LAYER) -> None:
        """Draw A's selection minus B's on displayed ``frame`` (nothing without both), each
        placed where its grids looked (``layer`` of a tiled image)."""
        if cmp is None or not tokens_a or not tokens_b or not cmp.a.grids or not cmp.b.grids:
            self.diff = None
            self.image_item.clear()
            self.title.setText("A \u2212 B: run both models (or open two explanations) and "
                               "pick a word")
            return
        h, w = cmp.frame_size(media_index, frame)
        # The view is a few hundred pixels wide and the maps are smooth: drawing big frames at
        # most MAX_SIDE wide keeps scrubbing a 1080p video fast (25 -> ~5 ms a frame).
        scale = min(1.0, MAX_SIDE / max(h, w))
        size = (max(1, round(h * scale)), max(1, round(w * scale)))
        base = None
        if cmp.a.media and media_index < len(cmp.a.media):
            m = cmp.a.media[media_index]
            base = resize_frame(m.frames[min(frame, m.n_frames - 1)], size[1])
            size = base.shape[:2]   # the renderer's rounding: map and frame match exactly
        diff = cmp.difference(tokens_a, tokens_b, media_index, frame, how, size=size,
                              layer=layer)
        self.diff = diff
        self.image_item.setImage(diff_overlay(base, diff), autoLevels=False)
        if self._shape != diff.shape:
            self._shape = diff.shape
            self.view_box.autoRange(padding=0.0)
        ta = display_token("".join(cmp.a.answer.texts[k] for k in tokens_a))
        tb = display_token("".join(cmp.b.answer.texts[k] for k in tokens_b))
        how_chosen = "aligned words" if aligned else "not aligned: chosen by hand"
        self.title.setText(f"A \u2212 B: \u201c{ta}\u201d \u2212 \u201c{tb}\u201d  "
                           f"({how_chosen}; mean {float(diff.mean()):+.2f})")

    def show_no_counterpart(self, why: str) -> None:
        """Nothing to subtract: the selected words have no counterpart in the other answer."""
        self.diff = None
        self.image_item.clear()
        self.title.setText(f"A \u2212 B: {why}; no difference shown")

    def image(self) -> np.ndarray | None:
        """The RGB image drawn now (for tests)."""
        img = self.image_item.image
        return None if img is None else np.asarray(img)
