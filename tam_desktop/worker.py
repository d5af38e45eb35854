"""Work that must not run on the UI thread: one idiom, superqt's ``thread_worker``.

A run is a generator executed by a ``GeneratorWorker``: each ``yield`` is a progress event for
the UI thread, ``worker.quit()`` is the cooperative cancel (checked between steps and, through
``should_stop``, between generated tokens). Short jobs (reading media, loading or saving an
explanation) go through :class:`TaskRunner`, which drops results that a newer request of the same
kind has made stale (a generation counter, as in ndv).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field
from typing import Any

from superqt.utils import FunctionWorker, GeneratorWorker, WorkerBase, create_worker

from tam_engine.core.errors import Cancelled
from tam_engine.core.explanation import Explanation
from tam_engine.core.media import MediaItem
from tam_engine.inference.model_placement import ModelPlacement
from tam_engine.inference.settings import GenerationSettings


@dataclass(frozen=True)
class RunRequest:
    """What the user asked for: a model, media files and a prompt.

    ``media`` are the files already decoded with the generation's frame rate and frame limit
    (see :class:`MediaCache`); empty, the worker reads ``media_paths`` itself.
    """

    model: str
    media_paths: tuple[str, ...]
    prompt: str
    generation: GenerationSettings
    media: tuple[MediaItem, ...] = field(default=(), compare=False, repr=False)
    # How the weights are placed (Model > Model Setup); None: the whole model on the device.
    placement: ModelPlacement | None = None
    # A given answer to explain by teacher forcing ("Explain this answer…"); None: generate.
    answer: str | None = None


@dataclass(frozen=True)
class Phase:
    """A coarse step of a run ("Loading the model ...")."""

    text: str


@dataclass(frozen=True)
class TokenStreamed:
    """One generated token, as soon as the model produced it."""

    index: int
    text: str


RunEvent = Phase | TokenStreamed

#: The phase of a given answer's run: one forward pass, no tokens to count (a busy bar).
GIVEN_PHASE = "Explaining the given answer"


# Importing torch/transformers (whose lazy modules are not safe to import from two threads at
# once) and loading models happen under this one lock: the start-up warm-up, a run, and a
# cancelled run still winding down never import or load side by side.
ENGINE_LOCK = threading.RLock()


class ModelCache:
    """Keeps the last loaded model for the next run (key: model id, device, dtype).

    Only one model is kept: two multimodal models rarely fit in memory together. The lock makes a
    second run wait for a load already in progress instead of loading the same model twice.
    """

    def __init__(self, loader: Callable[..., Any] | None = None) -> None:
        self._loader = loader
        self._key: tuple[str, str, str, str] | None = None
        self._model: Any = None

    def get(self, name: str, device: str, dtype: str,
            placement: ModelPlacement | None = None) -> Any:
        key = (name, device, dtype, repr(placement))
        with ENGINE_LOCK:
            if self._key == key and self._model is not None:
                return self._model
            self._key, self._model = None, None  # free the old model before loading the new
            loader = self._loader
            if loader is None:
                from tam_engine.inference.loading import load_model
                loader = load_model
            extra: dict[str, Any] = {} if placement is None else {"placement": placement}
            model = loader(name, device=device, dtype=dtype, **extra)
            self._key, self._model = key, model
            return model

    def holds(self, name: str, device: str, dtype: str,
              placement: ModelPlacement | None = None) -> bool:
        return self._key == (name, device, dtype, repr(placement)) and self._model is not None

    def clear(self) -> None:
        with ENGINE_LOCK:
            self._key, self._model = None, None


_Files = tuple[tuple[str, ...], tuple[tuple[int, int], ...]]


class MediaCache:
    """The last media decoded, so that opening them and running on them decode them once.

    They are found again by their paths, each file's modification time and size and, when
    there is a video among them, the video sampling (frame rate, frame limit): changing a file
    or how videos are sampled reads the files again. Only the last set is kept, as every
    window shows them anyway.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()   # one decode at a time
        # (files, sampling or None for images only, items), replaced as a whole so that
        # peek() on the UI thread reads it without waiting for a decode in progress.
        self._entry: tuple[_Files, tuple[float, int] | None, list[MediaItem]] | None = None

    @staticmethod
    def _files_of(paths: Sequence[str]) -> _Files | None:
        try:
            stats = tuple((st.st_mtime_ns, st.st_size) for st in map(os.stat, paths))
        except OSError:
            return None  # a missing file: decoding says what is wrong
        return tuple(str(p) for p in paths), stats

    def _cached(self, paths: Sequence[str], fps: float, max_frames: int
                ) -> list[MediaItem] | None:
        entry, files = self._entry, self._files_of(paths)
        if entry is None or files is None or entry[0] != files:
            return None
        return list(entry[2]) if entry[1] in (None, (float(fps), int(max_frames))) else None

    def get(self, paths: Sequence[str], fps: float, max_frames: int) -> list[MediaItem]:
        """The decoded media (decoding them, in the calling thread, unless cached)."""
        from tam_engine.media.io import load_media

        with self._lock:  # a second reader of the same files waits for the first one
            cached = self._cached(paths, fps, max_frames)
            if cached is not None:
                return cached
            files = self._files_of(paths)
            items = load_media(list(paths), fps=fps, max_frames=max_frames)
            if files is not None:
                video = any(m.kind == "video" for m in items)
                self._entry = (files, (float(fps), int(max_frames)) if video else None,
                               list(items))
            return items

    def peek(self, paths: Sequence[str], fps: float, max_frames: int) -> list[MediaItem]:
        """The cached media of these files and sampling, or ``[]`` (never decodes or waits)."""
        return self._cached(paths, fps, max_frames) or []


def run_job(request: RunRequest, cache: ModelCache, emit: Callable[[RunEvent], None],
            should_stop: Callable[[], bool], media_cache: MediaCache | None = None
            ) -> Generator[RunEvent, None, Explanation]:
    """Load (or reuse) the model, read the media (unless the request has them), generate and
    explain."""
    with ENGINE_LOCK:
        _import_engine()
    from tam_engine.inference.pipeline import run_and_explain

    gen = request.generation
    cached = cache.holds(request.model, gen.device, gen.dtype, request.placement)
    if not cached:
        yield from _download_phase(request.model, emit, should_stop)
    yield Phase("Using the loaded model" if cached else f"Loading the model {request.model}")
    t0 = time.perf_counter()
    loaded = cache.get(request.model, gen.device, gen.dtype, request.placement)
    load_s = 0.0 if cached else time.perf_counter() - t0
    media = list(request.media)
    if not media:
        yield Phase("Reading the media")
        media = (media_cache or MediaCache()).get(request.media_paths, gen.video_fps,
                                                  gen.max_frames)
    yield Phase("Generating" if request.answer is None else GIVEN_PHASE)

    def on_token(index: int, text: str) -> None:
        emit(TokenStreamed(index, text))

    expl = run_and_explain(loaded, media, request.prompt, gen, on_token=on_token,
                           should_stop=should_stop, answer=request.answer)
    # The pipeline times its own steps; loading happened here (0 when the model was kept).
    expl.meta.setdefault("timings", {})["load_s"] = round(load_s, 4)
    return expl


class WorkerFailure(Exception):
    """An exception of a worker's generator, carried past superqt.

    superqt's ``GeneratorWorker`` takes any ``RuntimeError`` from the generator for "the worker
    was deleted" and emits neither ``errored`` nor ``finished``: the window would wait forever.
    A ``RuntimeError`` (a subclass too: ``NotImplementedError``, torch's errors) is therefore
    re-raised wrapped in this, which is not one; :func:`original_error` unwraps it where
    ``errored`` is received. Every other exception reaches ``errored`` as it is.
    """

    def __init__(self, original: BaseException) -> None:
        super().__init__(f"{type(original).__name__}: {original}")
        self.original = original


def original_error(exc: BaseException) -> BaseException:
    """What a worker's generator really raised (see :class:`WorkerFailure`)."""
    return exc.original if isinstance(exc, WorkerFailure) else exc


def generator_worker(func: Callable[..., Generator[Any, Any, Any]], *args: Any
                     ) -> GeneratorWorker:
    """A not yet started ``GeneratorWorker`` of ``func(*args)`` that reports every exception
    through ``errored`` (unwrap it with :func:`original_error`)."""
    def job(*a: Any) -> Generator[Any, Any, Any]:  # a generator function, as superqt checks
        try:
            return (yield from func(*a))
        except RuntimeError as exc:
            raise WorkerFailure(exc) from exc

    worker: GeneratorWorker = create_worker(job, *args, _start_thread=False,
                                            _ignore_errors=True)
    return worker


def _download_phase(model: str, emit: Callable[[RunEvent], None],
                    should_stop: Callable[[], bool]) -> Generator[RunEvent, None, None]:
    """A Hub model with files missing from the cache is fetched first, its progress shown as
    the run's phase (nothing happens offline or for a local folder)."""
    from tam_engine.inference.hub import download_model, is_hub_id

    if not is_hub_id(model):
        return
    yield Phase(f"Checking {model} on the Hugging Face Hub")

    def on_progress(p: Any) -> None:
        if p.files_done < p.files_total:
            emit(Phase(f"Downloading {model}: {p.describe()}"))

    download_model(model, on_progress=on_progress, should_stop=should_stop)


def start_run_worker(request: RunRequest, cache: ModelCache,
                     media_cache: MediaCache | None = None) -> GeneratorWorker:
    """A started worker running :func:`run_job`; connect its signals before events arrive.

    Signals are delivered through the UI thread's event loop, so connecting right after this
    returns loses nothing.
    """
    box: dict[str, WorkerBase] = {}

    def emit(event: RunEvent) -> None:
        box["worker"].yielded.emit(event)

    def should_stop() -> bool:
        return box["worker"].abort_requested

    worker = generator_worker(run_job, request, cache, emit, should_stop, media_cache)
    box["worker"] = worker
    return worker


class TaskRunner:
    """Runs short functions off the UI thread; only the newest result of each kind is delivered.

    ``submit("open", fn, ...)`` twice in a row: the first result is dropped even if it arrives
    last, so a slow read can never overwrite what the user opened after it.
    """

    def __init__(self) -> None:
        self._generation: dict[str, int] = {}
        self._workers: set[FunctionWorker] = set()
        self._unfinished: dict[str, list[threading.Event]] = {}   # kind -> jobs not yet done

    def submit(self, kind: str, fn: Callable[..., Any], *args: Any,
               on_result: Callable[[Any], None],
               on_error: Callable[[BaseException], None]) -> FunctionWorker:
        gen = self._generation.get(kind, 0) + 1
        self._generation[kind] = gen

        def fresh() -> bool:
            return self._generation.get(kind) == gen

        done = threading.Event()
        self._unfinished[kind] = [d for d in self._unfinished.get(kind, []) if not d.is_set()]
        self._unfinished[kind].append(done)

        def call(*call_args: Any) -> Any:
            try:
                return fn(*call_args)
            finally:
                done.set()

        worker = create_worker(call, *args, _start_thread=False, _ignore_errors=True)
        worker.returned.connect(lambda value: on_result(value) if fresh() else None)
        worker.errored.connect(lambda exc: on_error(exc) if fresh() else None)
        self._workers.add(worker)
        worker.finished.connect(lambda: self._workers.discard(worker))
        worker.start()
        return worker

    def forget(self, kind: str) -> None:
        """Drop whatever result of ``kind`` is still on its way."""
        self._generation[kind] = self._generation.get(kind, 0) + 1

    @property
    def busy(self) -> bool:
        return bool(self._workers)

    def wait_for(self, kinds: Sequence[str], timeout_s: float) -> bool:
        """Wait until every submitted job of ``kinds`` has returned (closing the app: files
        being written must be complete); False when ``timeout_s`` ran out first.

        Timers still run meanwhile (user input does not): superqt queues a worker's start on
        the event loop, so a job submitted just before closing starts only then."""
        from PySide6.QtCore import QCoreApplication, QEventLoop

        deadline = time.monotonic() + timeout_s
        while True:
            pending = [d for kind in kinds for d in self._unfinished.get(kind, [])
                       if not d.is_set()]
            if not pending:
                return True
            if time.monotonic() > deadline:
                return False
            QCoreApplication.processEvents(
                QEventLoop.ProcessEventsFlag.ExcludeUserInputEvents, 10)
            pending[0].wait(0.005)


def warm_up_engine() -> None:
    """Import the model stack ahead of the first run.

    Importing torch and transformers holds the interpreter lock for up to a few hundred ms at
    a time, which would freeze the UI in the middle of the first run; done in the background
    right after start-up, while the user picks media, it costs the user nothing.
    """
    with ENGINE_LOCK:
        _import_engine()


def _import_engine() -> None:
    import transformers.generation  # noqa: F401
    from transformers.utils import logging as hf_logging

    # transformers prints a "Loading weights" bar to the terminal on every load: the app shows
    # its own progress ("Loading the model …"), so the terminal stays quiet.
    hf_logging.disable_progress_bar()
    import transformers.models.auto.modeling_auto  # noqa: F401
    import transformers.models.auto.processing_auto  # noqa: F401

    import tam_engine.inference.loading  # noqa: F401  (torch, the adapters)
    import tam_engine.inference.pipeline  # noqa: F401


def is_cancellation(exc: BaseException) -> bool:
    return isinstance(exc, Cancelled)
