"""Run model A, then model B, on the one device: two ``RunController`` s in sequence.

Each side keeps the run idiom of the main window (a superqt generator worker, streaming,
cooperative cancel, a generation counter against stale results); this class only queues B
behind A and tells the window which model is running. Both sides share one ``ModelCache``,
which holds one model at a time, so B's load frees A's model first.
"""

from __future__ import annotations

from typing import Protocol

from tam_desktop.controller import RunController
from tam_desktop.models.playback import PlaybackState
from tam_desktop.worker import MediaCache, ModelCache, RunRequest
from tam_engine.compare.alignment import Side
from tam_engine.core.explanation import Explanation


class CompareView(Protocol):
    """What the controller tells the compare window."""

    def side_started(self, side: Side, request: RunRequest) -> None: ...
    def side_phase(self, side: Side, text: str) -> None: ...
    def side_progress(self, side: Side, n_tokens: int, max_tokens: int) -> None: ...
    def side_finished(self, side: Side, explanation: Explanation) -> None: ...
    def side_failed(self, side: Side, error: BaseException) -> None: ...
    def side_cancelled(self, side: Side) -> None: ...
    def all_finished(self) -> None: ...


class _SideView:
    """Adapts one ``RunController`` 's ``RunView`` calls to the compare view."""

    def __init__(self, owner: CompareController, side: Side) -> None:
        self.owner, self.side = owner, side

    def run_started(self, request: RunRequest) -> None:
        self.owner.view.side_started(self.side, request)

    def run_phase(self, text: str) -> None:
        self.owner.view.side_phase(self.side, text)

    def run_progress(self, n_tokens: int, max_tokens: int) -> None:
        self.owner.view.side_progress(self.side, n_tokens, max_tokens)

    def run_finished(self, explanation: Explanation) -> None:
        self.owner._on_side_finished(self.side, explanation)

    def run_failed(self, error: BaseException) -> None:
        self.owner._queue.clear()
        self.owner.view.side_failed(self.side, error)

    def run_cancelled(self) -> None:
        self.owner._queue.clear()
        self.owner.view.side_cancelled(self.side)


class CompareController:
    """Starts A and B one after the other; ``cancel`` stops the running one and skips the rest."""

    def __init__(self, state_a: PlaybackState, state_b: PlaybackState, view: CompareView,
                 cache: ModelCache | None = None, media_cache: MediaCache | None = None
                 ) -> None:
        self.view = view
        self.cache = cache or ModelCache()
        # One media cache too: when A had to read the files, B finds them read.
        self.media_cache = media_cache or MediaCache()
        self.runs: dict[Side, RunController] = {
            "a": RunController(state_a, _SideView(self, "a"), self.cache, self.media_cache),
            "b": RunController(state_b, _SideView(self, "b"), self.cache, self.media_cache),
        }
        self._queue: list[tuple[Side, RunRequest]] = []

    @property
    def running(self) -> bool:
        return any(r.running for r in self.runs.values()) or bool(self._queue)

    def start(self, request_a: RunRequest, request_b: RunRequest) -> None:
        if self.running:
            raise RuntimeError("a comparison is already running; cancel it first")
        self._queue = [("b", request_b)]
        self.runs["a"].start(request_a)

    def cancel(self) -> None:
        self._queue.clear()
        for r in self.runs.values():
            r.cancel()

    def shutdown(self) -> None:
        self._queue.clear()
        for r in self.runs.values():
            r.shutdown()

    def _on_side_finished(self, side: Side, explanation: Explanation) -> None:
        self.view.side_finished(side, explanation)
        if self._queue:
            nxt, request = self._queue.pop(0)
            self.runs[nxt].start(request)
        else:
            self.view.all_finished()
