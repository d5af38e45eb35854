"""The playback state every view of one explanation reads and writes (no Qt here).

``PlaybackState`` is composed of two parts that can be shared between panes: a ``FrameCursor``
(frame index and play/pause, so two panes showing the same video stay on the same frame) and
``DisplayOptions`` (colour map, opacity, overlay on/off, the colour scale, how a phrase is
combined, which layer of a tiled image and whether its tile borders show). Token index
and selection belong to one pane, because two explanations have different tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

from tam_desktop.models.events import Event
from tam_engine.core.explanation import Explanation
from tam_engine.core.media import MediaItem
from tam_engine.core.placement import DEFAULT_LAYER, Layer, PlacedMap, check_layer
from tam_engine.core.token_maps import TokenKind
from tam_engine.render.colormaps import COLORMAPS
from tam_engine.render.scale import DEFAULT_SCALE, MapScale, check_scale, scale_top

CombineHow = Literal["mean", "max"]


class FrameCursor:
    """The displayed frame of a video and whether it plays; shareable between panes."""

    def __init__(self) -> None:
        self._frame = 0
        self._n_frames = 1
        self._fps = 0.0
        self._playing = False
        self.frame_changed = Event("frame_changed")      # (frame: int)
        self.length_changed = Event("length_changed")    # (n_frames: int)
        self.playing_changed = Event("playing_changed")  # (playing: bool)

    @property
    def frame(self) -> int:
        return self._frame

    @property
    def n_frames(self) -> int:
        return self._n_frames

    @property
    def fps(self) -> float:
        return self._fps

    @property
    def playing(self) -> bool:
        return self._playing

    def set_length(self, n_frames: int, fps: float = 0.0) -> None:
        self._n_frames = max(1, int(n_frames))
        self._fps = float(fps)
        self.length_changed.emit(self._n_frames)
        if self._n_frames < 2:
            self.set_playing(False)
        self.set_frame(self._frame)

    def set_frame(self, frame: int) -> None:
        frame = int(np.clip(frame, 0, self._n_frames - 1))
        if frame != self._frame:
            self._frame = frame
            self.frame_changed.emit(frame)

    def step(self, delta: int) -> None:
        self.set_frame(self._frame + delta)

    def advance(self) -> None:
        """One playback tick: the next frame, wrapping at the end."""
        self.set_frame((self._frame + 1) % self._n_frames)

    def set_playing(self, playing: bool) -> None:
        playing = bool(playing) and self._n_frames > 1
        if playing != self._playing:
            self._playing = playing
            self.playing_changed.emit(playing)


class DisplayOptions:
    """How maps are drawn; shareable so compared panes look alike.

    Every value goes through its checking setter, so ``combine`` may be any text (it comes
    from the stored settings): anything but "mean" or "max" raises ``ValueError``.
    """

    def __init__(self, colormap: str = "jet", opacity: float = 0.5,
                 overlay_visible: bool = True, combine: str = "mean",
                 scale: str = DEFAULT_SCALE, layer: Layer = DEFAULT_LAYER,
                 tile_borders: bool = False) -> None:
        self.changed = Event("display_changed")  # (name: str)
        self._values: dict[str, object] = {}
        self.colormap = colormap
        self.opacity = opacity
        self.overlay_visible = overlay_visible
        self.combine = combine
        self.scale = scale
        self.layer = layer
        self.tile_borders = tile_borders

    def copy(self) -> DisplayOptions:
        """The same options, unshared (a window of its own starts where this one is)."""
        return DisplayOptions(self.colormap, self.opacity, self.overlay_visible, self.combine,
                              self.scale, self.layer, self.tile_borders)

    def _set(self, name: str, value: object) -> None:
        if self._values.get(name) != value:
            self._values[name] = value
            self.changed.emit(name)

    @property
    def colormap(self) -> str:
        return str(self._values["colormap"])

    @colormap.setter
    def colormap(self, name: str) -> None:
        if name not in COLORMAPS:
            raise ValueError(f"unknown colour map {name!r}; choose one of {COLORMAPS}")
        self._set("colormap", name)

    @property
    def opacity(self) -> float:
        return float(self._values["opacity"])  # type: ignore[arg-type]

    @opacity.setter
    def opacity(self, value: float) -> None:
        self._set("opacity", float(np.clip(value, 0.0, 1.0)))

    @property
    def overlay_visible(self) -> bool:
        return bool(self._values["overlay_visible"])

    @overlay_visible.setter
    def overlay_visible(self, value: bool) -> None:
        self._set("overlay_visible", bool(value))

    @property
    def scale(self) -> MapScale:
        """Which map value the top colour stands for (:mod:`tam_engine.render.scale`): the
        method's joint normalisation, a per-token stretch, or one scale for all tokens. Only
        the colouring changes, never the maps."""
        return self._values["scale"]  # type: ignore[return-value]

    @scale.setter
    def scale(self, name: str) -> None:
        self._set("scale", check_scale(name))

    @property
    def layer(self) -> Layer:
        """What a tiled image shows: its tiles stitched, its thumbnail, or both fused
        (:mod:`tam_engine.core.placement`); the same for an image seen whole."""
        return self._values["layer"]  # type: ignore[return-value]

    @layer.setter
    def layer(self, name: str) -> None:
        self._set("layer", check_layer(name))

    @property
    def tile_borders(self) -> bool:
        """Outline the tiles (and a cropped or padded grid) over the image."""
        return bool(self._values["tile_borders"])

    @tile_borders.setter
    def tile_borders(self, value: bool) -> None:
        self._set("tile_borders", bool(value))

    @property
    def combine(self) -> CombineHow:
        return self._values["combine"]  # type: ignore[return-value]

    @combine.setter
    def combine(self, how: str) -> None:
        if how not in ("mean", "max"):
            raise ValueError("combine must be 'mean' or 'max'")
        self._set("combine", how)


class PlaybackState:
    """Which media, token, phrase and frame a pane shows.

    Views never hold their own copy of these: they read them here and write back through the
    setters, which emit events that every other view of the pane (or of a linked pane) hears.
    """

    def __init__(self, cursor: FrameCursor | None = None,
                 display: DisplayOptions | None = None) -> None:
        self.cursor = cursor or FrameCursor()
        self.display = display or DisplayOptions()
        self.content_changed = Event("content_changed")      # ()
        self.token_changed = Event("token_changed")          # (kind, index)
        self.selection_changed = Event("selection_changed")  # (selection: tuple[int, ...])
        self.media_index_changed = Event("media_index_changed")  # (index: int)
        self.streamed = Event("streamed")                    # (texts: list[str]) while running
        self.explanation: Explanation | None = None
        self.media: list[MediaItem] = []
        self.streaming: list[str] = []
        self._kind: TokenKind = "answer"
        self._token = 0
        self._selection: tuple[int, ...] = ()
        self._anchor = 0
        self._media_index = 0
        self._grids_cache: tuple[tuple, list[np.ndarray]] | None = None
        self._top_cache: tuple[tuple, int] | None = None
        self._strength_cache: tuple[tuple, np.ndarray] | None = None

    # ------------------------------------------------------------------ content
    def set_content(self, media: Sequence[MediaItem], explanation: Explanation | None = None
                    ) -> None:
        """Show ``media`` and, when there is one, its explanation (which carries its own media)."""
        if explanation is not None and explanation.media:
            media = explanation.media
        self.media = list(media)
        self.explanation = explanation
        self.streaming = []
        self._grids_cache = None
        self._strength_cache = None
        # Open on the token whose map shows most (not the first token, often "a": a flat map).
        first = explanation.strongest_token() if explanation is not None else 0
        self._kind, self._token, self._anchor = "answer", first, first
        self._selection = (first,) if explanation is not None and explanation.n_answer else ()
        self._top_cache = None
        self._media_index = 0
        self._sync_cursor()
        self.content_changed.emit()

    def set_streaming(self, texts: Sequence[str]) -> None:
        self.streaming = list(texts)
        self.streamed.emit(self.streaming)

    @property
    def current_media(self) -> MediaItem | None:
        return self.media[self._media_index] if self.media else None

    @property
    def media_index(self) -> int:
        return self._media_index

    def set_media_index(self, index: int) -> None:
        if not self.media:
            return
        index = int(np.clip(index, 0, len(self.media) - 1))
        if index != self._media_index:
            self._media_index = index
            self._sync_cursor()
            self.media_index_changed.emit(index)

    def _sync_cursor(self) -> None:
        m = self.current_media
        n = m.n_frames if m is not None else 1
        self.cursor.set_length(n, m.fps if m is not None else 0.0)

    # ------------------------------------------------------------------ tokens
    @property
    def kind(self) -> TokenKind:
        return self._kind

    @property
    def token(self) -> int:
        return self._token

    @property
    def selection(self) -> tuple[int, ...]:
        return self._selection

    def n_tokens(self, kind: TokenKind | None = None) -> int:
        ex = self.explanation
        kind = kind or self._kind
        if ex is None or (kind == "prompt" and ex.prompt is None):
            return 0
        return len(ex.tokens(kind))

    def set_token(self, index: int, kind: TokenKind | None = None) -> None:
        """Make one token current; the phrase selection becomes just that token."""
        kind = kind or self._kind
        n = self.n_tokens(kind)
        if n == 0:
            return
        index = int(np.clip(index, 0, n - 1))
        changed = (index, kind) != (self._token, self._kind)
        self._token, self._kind, self._anchor = index, kind, index
        self._set_selection((index,))
        if changed:
            self.token_changed.emit(kind, index)

    def step_token(self, delta: int) -> None:
        self.set_token(self._token + delta)

    def toggle_in_selection(self, index: int, kind: TokenKind | None = None) -> None:
        """Ctrl-click: add a token to the phrase or take it out."""
        kind = kind or self._kind
        if kind != self._kind:
            self.set_token(index, kind)
            return
        sel = set(self._selection)
        sel.symmetric_difference_update({index})
        if not sel:
            sel = {index}
        self._anchor = index
        self._make_current(index if index in sel else max(sel))
        self._set_selection(tuple(sorted(sel)))

    def select(self, tokens: Sequence[int], current: int | None = None,
               kind: TokenKind | None = None) -> None:
        """Make ``tokens`` the phrase, ``current`` (default: the first of them) the token.

        Everything changes before anyone hears of it, and ``selection_changed`` fires once, so
        a linked pane only ever sees the final selection. Indices out of range are ignored.
        """
        kind = kind or self._kind
        n = self.n_tokens(kind)
        toks = tuple(sorted({int(k) for k in tokens if 0 <= int(k) < n}))
        if not toks:
            return
        cur = int(current) if current in toks else toks[0]
        token_changed = (cur, kind) != (self._token, self._kind)
        selection_changed = toks != self._selection
        self._token, self._kind, self._anchor, self._selection = cur, kind, cur, toks
        if token_changed:
            self.token_changed.emit(kind, cur)
        if selection_changed:
            self.selection_changed.emit(toks)

    def extend_selection(self, index: int, kind: TokenKind | None = None) -> None:
        """Shift-click: the phrase becomes the run of tokens from the anchor to ``index``."""
        kind = kind or self._kind
        if kind != self._kind:
            self.set_token(index, kind)
            return
        lo, hi = sorted((self._anchor, int(index)))
        self._make_current(int(index))
        self._set_selection(tuple(range(lo, hi + 1)))

    def _make_current(self, index: int) -> None:
        if index != self._token:
            self._token = index
            self.token_changed.emit(self._kind, index)

    def _set_selection(self, selection: tuple[int, ...]) -> None:
        if selection != self._selection:
            self._selection = selection
            self.selection_changed.emit(selection)

    # ------------------------------------------------------------------ maps
    def current_slot(self) -> int:
        """The temporal slot of the grid shown on the displayed frame."""
        ex = self.explanation
        return ex.slot_of_frame(self._media_index, self.cursor.frame) if ex is not None else 0

    def current_grid(self) -> np.ndarray | None:
        """``(t, h, w)`` uint8 maps of the current token or phrase on the current media item."""
        ex = self.explanation
        if ex is None or not self._selection:
            return None
        try:
            gi = ex.grid_for_media(self._media_index)
        except KeyError:
            return None
        key = (self._selection, self._kind, self.display.combine)
        if self._grids_cache is None or self._grids_cache[0] != key:
            maps = ex.selection_grid_maps(self._selection, self.display.combine, self._kind)
            self._grids_cache = (key, maps)
        return self._grids_cache[1][gi]

    def current_map(self) -> np.ndarray | None:
        """The ``(h, w)`` uint8 map of the current media item's first grid on the displayed
        frame, or None without one (:meth:`current_placed` is what is drawn)."""
        grid = self.current_grid()
        return None if grid is None else grid[self.current_slot()]

    def current_placed(self, size: tuple[int, int], as_float: bool = False
                       ) -> PlacedMap | None:
        """The current token's or phrase's map on the displayed frame, placed where the item's
        grids looked (the display's layer) at ``size = (W, H)``; None without one.
        ``as_float``: float32 values in [0, 1], resized without rounding (for stretching)."""
        ex = self.explanation
        if ex is None or self.current_grid() is None or self._grids_cache is None:
            return None
        return ex.place(self._grids_cache[1], self._media_index, self.cursor.frame,
                        self.display.layer, size, as_float)

    def current_top(self) -> int:
        """The map value (1 .. 255) the top colour stands for under the display's scale, for
        the current selection on the current media item (the whole clip and every tile, so
        playback does not flicker); 255 without a map."""
        ex = self.explanation
        if ex is None or not self._selection or not ex.item_grids(self._media_index):
            return 255
        d = self.display
        key = (id(ex), d.scale, self._kind, self._media_index,
               self._selection if d.scale == "token" else (), d.combine)
        if self._top_cache is None or self._top_cache[0] != key:
            self._top_cache = (key, scale_top(ex, self._selection, d.scale, self._media_index,
                                              d.combine, self._kind))
        return self._top_cache[1]

    def has_tiles(self) -> bool:
        """Whether the explanation has a tiled media item (so the layer choice matters)."""
        return self.explanation is not None and self.explanation.has_tiles()

    def frame_strengths(self) -> np.ndarray | None:
        """Mean of the current map on each displayed frame in [0, 1] (for the filmstrip)."""
        ex, m = self.explanation, self.current_media
        if ex is None or m is None or self.current_grid() is None:
            return None
        d = self.display
        key = (self._selection, self._kind, d.combine, self._media_index, d.layer, m.n_frames)
        # A token switch announces the token and the selection: compute once.
        if self._strength_cache is None or self._strength_cache[0] != key:
            self._strength_cache = (key, ex.frame_strengths(
                self._selection, self._media_index, d.combine, self._kind,
                n_frames=m.n_frames, layer=d.layer))
        return self._strength_cache[1]
