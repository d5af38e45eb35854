"""The region query of one pane: a box on the media and the answer tokens ranked by it.

Qt-free, like the rest of ``models``: the pane's media view writes the box here, the region
panel, the token strip and the timeline read the ranking (``tam_engine.core.region``).
"""

from __future__ import annotations

from collections.abc import Callable

from tam_desktop.models.events import Event
from tam_desktop.models.playback import PlaybackState
from tam_engine.core.errors import TamError
from tam_engine.core.region import RegionRanking, rank_region

#: The best tokens marked in the token strip and the timeline.
TOP_MARKED = 5

RegionBox = tuple[float, float, float, float]
#: ``run(job, done)``: call ``job()`` off the UI thread and ``done(result_or_exception)`` on it.
Runner = Callable[[Callable[[], RegionRanking], Callable[[object], None]], None]


class RegionQuery:
    """A box (displayed-media pixels) and the ranking of the answer tokens by their share of
    it, kept up to date as the frame (video), the layer or the explanation change.

    The ranking is computed at once when the maps are in memory (1,000 tokens take a few
    milliseconds); maps still in a file are read by ``runner`` off the UI thread, and a result
    that arrives after the query changed is dropped (a generation counter).
    """

    def __init__(self, state: PlaybackState, runner: Runner | None = None) -> None:
        self.state = state
        self.runner = runner
        self.box_changed = Event("box_changed")   # (box: RegionBox | None), drawn or cleared
        self.changed = Event("changed")           # () the ranking (or its absence) is new
        self.box: RegionBox | None = None
        self.ranking: RegionRanking | None = None
        self.error = ""
        self.pending = False
        self._generation = 0
        self._key: tuple | None = None
        state.content_changed.connect(self._on_content)
        state.media_index_changed.connect(lambda _i: self.clear())
        # Without a box a new frame changes nothing (every frame switch used to announce
        # the empty ranking again, and the strip and the timeline cleared their marks).
        state.cursor.frame_changed.connect(lambda _f: self._refresh() if self.box else None)
        state.display.changed.connect(lambda name: self._refresh() if name == "layer" else None)

    # ------------------------------------------------------------------ writing
    def set_box(self, box: RegionBox | None) -> None:
        """Query ``box`` (``x0, y0, x1, y1`` in pixels of the displayed media), or clear."""
        box = None if box is None else tuple(float(v) for v in box)  # type: ignore[assignment]
        if box == self.box:
            return
        self.box = box
        self._key = None
        self.box_changed.emit(box)
        self._refresh()

    def clear(self) -> None:
        self.set_box(None)

    @property
    def active(self) -> bool:
        return self.box is not None

    def marked(self) -> list[int]:
        """The answer tokens to mark in the strip and the timeline: the best few with some
        share of the box."""
        return self.ranking.top(TOP_MARKED) if self.ranking is not None else []

    # ------------------------------------------------------------------ updating
    def _on_content(self) -> None:
        if self.box is None:
            return
        m = self.state.current_media
        w, h = m.size if m is not None else (0, 0)
        x0, y0, x1, y1 = self.box
        if m is None or x0 >= w or y0 >= h:   # other media: the box means nothing there
            self.clear()
            return
        self._key = None
        self._refresh()

    def _query_key(self) -> tuple | None:
        st, ex = self.state, self.state.explanation
        if ex is None or self.box is None:
            return None
        # The ranking changes with the frame only where the frame's slot does (video).
        m = st.current_media
        slot = int(m.frame_slot[min(st.cursor.frame, m.n_frames - 1)]) if m is not None else 0
        return (id(ex), self.box, st.media_index, slot, st.display.layer)

    def _refresh(self) -> None:
        key = self._query_key()
        if key is not None and key == self._key:
            return
        self._key = key
        self._generation += 1
        if key is None:
            self._finish(None, "")
            return
        st, ex = self.state, self.state.explanation
        assert ex is not None and self.box is not None
        m = st.current_media
        frame = min(st.cursor.frame, m.n_frames - 1) if m is not None else 0
        box, media_index, layer = self.box, st.media_index, st.display.layer

        def job() -> RegionRanking:
            return rank_region(ex, box, media_index=media_index, frame=frame, layer=layer)

        if ex.answer.maps_loaded or self.runner is None:
            try:
                ranking = job()
            except TamError as exc:
                self._finish(None, exc.message)
                return
            self._finish(ranking, "")
            return
        gen = self._generation
        self.pending = True
        self.changed.emit()

        def done(result: object) -> None:
            if gen != self._generation:
                return   # the query changed meanwhile: a newer one is on its way
            if isinstance(result, RegionRanking):
                self._finish(result, "")
            elif isinstance(result, TamError):
                self._finish(None, result.message)
            elif isinstance(result, BaseException):
                raise result
        self.runner(job, done)

    def _finish(self, ranking: RegionRanking | None, error: str) -> None:
        self.ranking, self.error, self.pending = ranking, error, False
        self.changed.emit()

