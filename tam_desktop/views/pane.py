"""``ExplanationPane``: media view + token strips + timeline + text map, over one state.

A pane owns nothing but its widgets: give two panes one ``FrameCursor`` (and, if wanted, one
``DisplayOptions``) and they scrub and play together.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QSlider,
    QSplitter,
    QVBoxLayout,
    QWidget,
)
from superqt.utils import signals_blocked

from tam_desktop.models.playback import COLORMAPS, DisplayOptions, FrameCursor, PlaybackState
from tam_desktop.models.region import RegionQuery
from tam_desktop.views.filmstrip import FrameControls
from tam_desktop.views.media_view import MediaView
from tam_desktop.views.region_panel import RegionPanel, run_in_thread
from tam_desktop.views.text_map_view import TextMapView
from tam_desktop.views.timeline import TokenTimeline
from tam_desktop.views.token_find import TokenFind
from tam_desktop.views.token_strip import TokenStrip
from tam_engine.core.placement import LAYERS
from tam_engine.render.scale import MAP_SCALES, SCALE_NAMES


def _caption(text: str) -> QLabel:
    label = QLabel(text)
    label.setStyleSheet("color: #5f6368; font-weight: bold; margin-top: 4px;")
    return label


class DisplayBar(QWidget):
    """Colour map, opacity, overlay on/off, how a phrase is combined, which media item; for a
    tiled image also which layer (tiles, thumbnail, fused) and the tile borders."""

    def __init__(self, state: PlaybackState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        d = state.display
        self.colormap = QComboBox(self)
        self.colormap.addItems(COLORMAPS)
        self.colormap.setToolTip("Colour map of the heat map, the colour bar and the text map")
        self.opacity = QSlider(Qt.Orientation.Horizontal, self)
        self.opacity.setRange(0, 100)
        self.opacity.setFixedWidth(120)
        self.opacity.setToolTip("Opacity of the heat map over the image")
        self.overlay = QCheckBox("Overlay", self)
        self.overlay.setToolTip("Show the heat map over the image (O)")
        self.scale = QComboBox(self)
        for key in MAP_SCALES:
            self.scale.addItem(SCALE_NAMES[key], key)
        self.scale.setToolTip(
            "Which map value the top colour stands for (the colour bar shows the range):\n"
            f"{SCALE_NAMES['joint']}: the method's own 0 .. 1 (as the paper; exports' "
            "default);\n"
            f"{SCALE_NAMES['token']}: 0 .. this token's strongest cell, so weak maps show "
            "their shape;\n"
            f"{SCALE_NAMES['shared']}: 0 .. the strongest cell of any token, so tokens can be "
            "compared.\nThe maps themselves never change.")
        self.combine = QComboBox(self)
        self.combine.addItems(["mean", "max"])
        self.combine.setToolTip("How the maps of a phrase (Shift/Ctrl+click several tokens) "
                                "are combined")
        self.layer = QComboBox(self)
        self.layer.addItems(LAYERS)
        self.layer.setToolTip("The model saw this image as tiles and a thumbnail: show the tiles "
                              "stitched, the thumbnail, or both fused (their mean where both "
                              "cover)")
        self.tile_borders = QCheckBox("Tile borders", self)
        self.tile_borders.setToolTip("Outline the tiles the model saw")
        self.media = QComboBox(self)
        self.media.setToolTip("Which image or video of this run is shown")
        for w in (self.colormap, self.opacity, self.overlay, self.scale, self.combine,
                  self.layer, self.tile_borders, self.media):
            w.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        row = QHBoxLayout(self)
        row.setContentsMargins(4, 2, 4, 2)
        row.addWidget(QLabel("Colour map"))
        row.addWidget(self.colormap)
        row.addSpacing(12)
        row.addWidget(QLabel("Opacity"))
        row.addWidget(self.opacity)
        row.addSpacing(12)
        row.addWidget(self.overlay)
        row.addSpacing(12)
        row.addWidget(QLabel("Scale"))
        row.addWidget(self.scale)
        row.addSpacing(12)
        row.addWidget(QLabel("Phrase"))
        row.addWidget(self.combine)
        self.layer_label = QLabel("Tiles")
        row.addSpacing(12)
        row.addWidget(self.layer_label)
        row.addWidget(self.layer)
        row.addWidget(self.tile_borders)
        self.media_label = QLabel("Media")
        row.addSpacing(12)
        row.addWidget(self.media_label)
        row.addWidget(self.media)
        row.addStretch(1)
        self.colormap.currentTextChanged.connect(lambda n: setattr(d, "colormap", n))
        self.opacity.valueChanged.connect(lambda v: setattr(d, "opacity", v / 100.0))
        self.overlay.toggled.connect(lambda on: setattr(d, "overlay_visible", on))
        self.scale.currentIndexChanged.connect(
            lambda i: setattr(d, "scale", self.scale.itemData(i)))
        self.combine.currentTextChanged.connect(lambda h: setattr(d, "combine", h))
        self.layer.currentTextChanged.connect(lambda name: setattr(d, "layer", name))
        self.tile_borders.toggled.connect(lambda on: setattr(d, "tile_borders", on))
        self.media.currentIndexChanged.connect(state.set_media_index)
        d.changed.connect(self._sync)
        state.content_changed.connect(self._on_content)
        state.media_index_changed.connect(self._on_media_index)
        self._sync()
        self._on_content()

    def _sync(self, *_args: object) -> None:
        d = self.state.display
        with signals_blocked(self.colormap), signals_blocked(self.opacity), \
                signals_blocked(self.overlay), signals_blocked(self.scale), \
                signals_blocked(self.combine), signals_blocked(self.layer), \
                signals_blocked(self.tile_borders):
            self.colormap.setCurrentText(d.colormap)
            self.opacity.setValue(round(d.opacity * 100))
            self.overlay.setChecked(d.overlay_visible)
            self.scale.setCurrentIndex(self.scale.findData(d.scale))
            self.combine.setCurrentText(d.combine)
            self.layer.setCurrentText(d.layer)
            self.tile_borders.setChecked(d.tile_borders)

    def _on_content(self) -> None:
        media = self.state.media
        names = [f"{i + 1}. {m.name}" for i, m in enumerate(media)]
        with signals_blocked(self.media):
            if names != [self.media.itemText(i) for i in range(self.media.count())]:
                self.media.clear()
                self.media.addItems(names)
            self.media.setCurrentIndex(self.state.media_index)
        many = len(media) > 1
        self.media.setVisible(many)
        self.media_label.setVisible(many)
        has_maps = self.state.explanation is not None
        controls: tuple[QWidget, ...] = (self.colormap, self.opacity, self.overlay, self.scale,
                                         self.combine)
        for control in controls:
            control.setEnabled(has_maps)
        tiled = self.state.has_tiles()   # the layers differ only for a tiled image
        for layer_control in (self.layer_label, self.layer, self.tile_borders):
            layer_control.setVisible(tiled)

    def _on_media_index(self, index: int) -> None:
        with signals_blocked(self.media):
            self.media.setCurrentIndex(index)


TEXT_MAP_MIN_LINES = 7


class ExplanationPane(QWidget):
    """The reusable unit of the window: everything that shows one explanation."""

    def __init__(self, state: PlaybackState | None = None, *, cursor: FrameCursor | None = None,
                 display: DisplayOptions | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state or PlaybackState(cursor=cursor, display=display)
        st = self.state
        self.display_bar = DisplayBar(st, self)
        self.media_view = MediaView(st, self)
        self.frame_controls = FrameControls(st, self)
        self.answer_strip = TokenStrip(st, "answer", self)
        self.prompt_strip = TokenStrip(st, "prompt", self)
        self.prompt_strip.max_hint_height = 110
        self.text_map = TextMapView(st, self)
        # Room for the heading, the legend and a few lines of prompt and answer, even where
        # the pane is squeezed (compare mode puts two side by side, media above tokens).
        self.text_map.setMinimumHeight(
            round(self.text_map.fontMetrics().lineSpacing() * TEXT_MAP_MIN_LINES) + 12)
        self.timeline = TokenTimeline(st, self)
        self.timeline.setMinimumHeight(110)
        # Region query: a box drawn on the media ranks the answer tokens (region_panel).
        self.region = RegionQuery(st, run_in_thread)
        self.region_panel = RegionPanel(st, self.region, self)
        self.region_panel.setMaximumHeight(220)

        left = QWidget(self)
        lcol = QVBoxLayout(left)
        lcol.setContentsMargins(0, 0, 0, 0)
        lcol.setSpacing(2)
        lcol.addWidget(self.media_view, 1)
        lcol.addWidget(self.frame_controls)

        tokens = QWidget(self)
        tcol = QVBoxLayout(tokens)
        tcol.setContentsMargins(2, 0, 2, 0)
        tcol.setSpacing(2)
        self.answer_caption = _caption("Answer")
        self.answer_caption.setToolTip("Click a token to see its map; Shift+click or Ctrl+click "
                                       "several tokens to see a phrase")
        self.prompt_caption = _caption("Prompt tokens")
        tcol.addWidget(self.answer_caption)
        self.token_find = TokenFind(st, self)
        tcol.addWidget(self.token_find)
        tcol.addWidget(self.answer_strip)
        tcol.addWidget(self.region_panel)
        tcol.addWidget(self.prompt_caption)
        tcol.addWidget(self.prompt_strip)
        tcol.addWidget(_caption("Text map"))
        tcol.addWidget(self.text_map, 1)

        self.h_split = QSplitter(Qt.Orientation.Horizontal, self)
        self.h_split.addWidget(left)
        self.h_split.addWidget(tokens)
        self.h_split.setStretchFactor(0, 3)
        self.h_split.setStretchFactor(1, 2)
        self.v_split = QSplitter(Qt.Orientation.Vertical, self)
        self.v_split.addWidget(self.h_split)
        self.v_split.addWidget(self.timeline)
        self.v_split.setStretchFactor(0, 5)
        self.v_split.setStretchFactor(1, 1)
        col = QVBoxLayout(self)
        col.setContentsMargins(0, 0, 0, 0)
        col.addWidget(self.display_bar)
        col.addWidget(self.v_split, 1)
        st.content_changed.connect(self._on_content)
        st.streamed.connect(self._on_streamed)
        # New content is painted in stages, the media view first, one widget each time the
        # event loop is next idle (a zero-time timer: Qt runs timers once the queued events,
        # the paints among them, are served). A long answer's first paint of them all at once,
        # right after the work of showing it, held the UI for 150 ms.
        self._staged = (self.media_view, self.answer_strip, self.prompt_strip, self.timeline,
                        self.frame_controls)
        self._unrevealed: list[QWidget] = []
        self._reveal = QTimer(self)
        self._reveal.setSingleShot(True)
        self._reveal.setInterval(0)
        self._reveal.timeout.connect(self._reveal_next)
        self.media_view.region_drawn.connect(self.region.set_box)
        self.region.changed.connect(self._on_region)
        self._on_content()

    def set_region_mode(self, on: bool) -> None:
        """Region mode: a left drag on the media draws the box to query (see RegionQuery)."""
        self.media_view.set_region_mode(on)

    def _on_region(self) -> None:
        marked = self.region.marked()
        self.media_view.show_region(self.region.box)
        self.answer_strip.set_highlighted(marked)
        self.timeline.set_highlighted(marked)

    def _on_content(self) -> None:
        ex = self.state.explanation
        if ex is not None and not self._unrevealed:
            self._unrevealed = [w for w in self._staged if w.updatesEnabled()]
            for w in self._unrevealed:
                w.setUpdatesEnabled(False)
            self._reveal.start()
        has_prompt = ex is not None and ex.prompt is not None
        self.prompt_strip.setVisible(has_prompt)
        self.prompt_caption.setVisible(has_prompt)
        self.timeline.setVisible(ex is not None)
        n = ex.n_answer if ex is not None else 0
        self.answer_caption.setText(f"Answer ({n} tokens)" if ex is not None else "Answer")

    def _reveal_next(self) -> None:
        if self._unrevealed:
            self._unrevealed.pop(0).setUpdatesEnabled(True)
        if self._unrevealed:
            self._reveal.start()

    def _on_streamed(self, texts: list[str]) -> None:
        self.answer_caption.setText(f"Answer (generating: {len(texts)} tokens)")
