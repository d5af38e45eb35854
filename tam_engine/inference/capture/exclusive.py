"""One run at a time on one model.

A capture hooks the model's final norm and records every forward pass through it: two runs on
the same model at once (a Run right after Cancel while the cancelled run winds down, two threads
sharing a model in the API) would record each other's states ("captured 613 hidden states,
expected 608") or worse, mix them silently. The lock lives with the model object, so every
``LoadedModel`` wrapping the same model shares it; a second run waits for the first one, and
stops waiting when it is itself cancelled.
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections.abc import Iterator
from typing import Any

from tam_engine.core.errors import Cancelled
from tam_engine.inference.capture.hooks import ShouldStop

__all__ = ["model_in_use"]

_LOCKS: weakref.WeakKeyDictionary[Any, threading.Lock] = weakref.WeakKeyDictionary()
_GUARD = threading.Lock()
_POLL_S = 0.05


def _lock_of(model: Any) -> threading.Lock:
    with _GUARD:
        lock = _LOCKS.get(model)
        if lock is None:
            lock = _LOCKS[model] = threading.Lock()
        return lock


@contextlib.contextmanager
def model_in_use(model: Any, should_stop: ShouldStop | None = None) -> Iterator[None]:
    """Hold ``model`` for one run: wait while another run uses it.

    While waiting, ``should_stop()`` is polled; when it turns true the wait ends with
    :class:`~tam_engine.core.errors.Cancelled` (a cancelled run never starts late).
    """
    lock = _lock_of(model)
    while not lock.acquire(timeout=_POLL_S):
        if should_stop is not None and should_stop():
            raise Cancelled()
    try:
        yield
    finally:
        lock.release()

