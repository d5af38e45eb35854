"""The run controller: starts runs, streams their tokens into the state, drops stale results.

It talks to the window only through the small :class:`RunView` protocol, so it is tested with a
recording object instead of widgets (the ndv controller pattern).
"""

from __future__ import annotations

from typing import Protocol

from superqt.utils import GeneratorWorker

from tam_desktop.models.playback import PlaybackState
from tam_desktop.worker import (
    MediaCache,
    ModelCache,
    Phase,
    RunEvent,
    RunRequest,
    TokenStreamed,
    is_cancellation,
    original_error,
    start_run_worker,
)
from tam_engine.core.explanation import Explanation


class RunView(Protocol):
    """What the controller tells the window (progress chrome and errors)."""

    def run_started(self, request: RunRequest) -> None: ...
    def run_phase(self, text: str) -> None: ...
    def run_progress(self, n_tokens: int, max_tokens: int) -> None: ...
    def run_finished(self, explanation: Explanation) -> None: ...
    def run_failed(self, error: BaseException) -> None: ...
    def run_cancelled(self) -> None: ...


class RunController:
    """One run at a time; ``cancel`` returns the app to ready at once.

    Every run gets a generation number. Cancelling (or starting anew) bumps it, so events of a
    worker that is still winding down (a model load cannot be interrupted) are ignored.
    """

    def __init__(self, state: PlaybackState, view: RunView, cache: ModelCache | None = None,
                 media_cache: MediaCache | None = None) -> None:
        self.state = state
        self.view = view
        self.cache = cache or ModelCache()
        self.media_cache = media_cache or MediaCache()
        self._generation = 0
        self._worker: GeneratorWorker | None = None
        self._live: set[GeneratorWorker] = set()
        self._tokens: list[str] = []
        self._max_tokens = 0

    @property
    def running(self) -> bool:
        return self._worker is not None

    def start(self, request: RunRequest) -> None:
        if self._worker is not None:
            raise RuntimeError("a run is already in progress; cancel it first")
        self._generation += 1
        gen = self._generation
        self._tokens = []
        self._max_tokens = request.generation.max_new_tokens
        worker = start_run_worker(request, self.cache, self.media_cache)
        worker.yielded.connect(lambda ev: self._on_event(gen, ev))
        worker.returned.connect(lambda ex: self._on_returned(gen, ex))
        worker.errored.connect(lambda exc: self._on_errored(gen, original_error(exc)))
        # superqt types its argument-less signals as SigInst[None] (a slot taking one argument),
        # which they are not: ``*_`` accepts the nothing they send and satisfies the stub.
        worker.aborted.connect(lambda *_: self._on_aborted(gen))
        worker.finished.connect(lambda *_: self._live.discard(worker))
        self._worker = worker
        self._live.add(worker)
        self.view.run_started(request)
        self.view.run_progress(0, self._max_tokens)
        worker.start()

    def cancel(self) -> None:
        """Ask the worker to stop and make the app ready now, without waiting for it."""
        if self._worker is None:
            return
        self._worker.quit()
        self._worker = None
        self._generation += 1
        self.view.run_cancelled()

    def shutdown(self) -> None:
        """Ask every worker to stop (closing the window)."""
        for w in list(self._live):
            w.quit()
        self._worker = None
        self._generation += 1

    # ------------------------------------------------------------------ worker events
    def _fresh(self, gen: int) -> bool:
        return gen == self._generation and self._worker is not None

    def _on_event(self, gen: int, event: RunEvent) -> None:
        if not self._fresh(gen):
            return
        if isinstance(event, Phase):
            self.view.run_phase(event.text)
        elif isinstance(event, TokenStreamed):
            del self._tokens[event.index:]
            self._tokens.append(event.text)
            self.state.set_streaming(self._tokens)
            self.view.run_progress(len(self._tokens), self._max_tokens)

    def _on_returned(self, gen: int, explanation: Explanation) -> None:
        if not self._fresh(gen):
            return
        self._worker = None
        self.state.set_content(explanation.media, explanation)
        self.view.run_finished(explanation)

    def _on_errored(self, gen: int, exc: BaseException) -> None:
        if not self._fresh(gen):
            return
        self._worker = None
        if is_cancellation(exc):
            self.view.run_cancelled()
        else:
            self.view.run_failed(exc)

    def _on_aborted(self, gen: int) -> None:
        if self._fresh(gen):
            self._worker = None
            self.view.run_cancelled()
