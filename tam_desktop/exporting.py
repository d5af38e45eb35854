"""Exports off the UI thread, with a progress dialog and Cancel (main and compare windows)."""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import QProgressDialog, QWidget
from superqt.utils import GeneratorWorker, WorkerBase

from tam_desktop.worker import generator_worker, is_cancellation, original_error
from tam_engine.export import ExportError


def _job(fn: Callable[..., Any], args: tuple, kwargs: dict,
         emit: Callable[[tuple[int, int]], None], should_stop: Callable[[], bool]
         ) -> Generator[tuple[int, int], None, Any]:
    yield (0, 1)
    return fn(*args, progress=lambda i, n: emit((i, n)), should_stop=should_stop, **kwargs)


class ExportRunner(QObject):
    """Runs one export at a time in a worker; a progress dialog's Cancel stops it.

    ``fn(*args, progress=..., should_stop=..., **kwargs)`` is one of the Qt-free exporters,
    which raise ``Cancelled`` (and leave no file) when ``should_stop()`` turns true.
    """

    finished = Signal(object)   # the path written
    failed = Signal(object)     # the exception
    cancelled = Signal()

    def __init__(self, parent: QWidget) -> None:
        super().__init__(parent)
        self._parent = parent
        self.worker: GeneratorWorker | None = None
        self.dialog: QProgressDialog | None = None

    @property
    def busy(self) -> bool:
        return self.worker is not None

    def start(self, label: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        if self.worker is not None:
            raise RuntimeError("an export is already running")
        box: dict[str, WorkerBase] = {}

        def emit(step: tuple[int, int]) -> None:
            box["worker"].yielded.emit(step)

        def should_stop() -> bool:
            return box["worker"].abort_requested

        worker = generator_worker(_job, fn, args, kwargs, emit, should_stop)
        box["worker"] = worker
        dlg = QProgressDialog(label, "Cancel", 0, 0, self._parent)
        dlg.setWindowTitle("Exporting")
        dlg.setWindowModality(Qt.WindowModality.WindowModal)
        dlg.setMinimumDuration(300)
        dlg.setAutoClose(False)
        dlg.setAutoReset(False)
        dlg.canceled.connect(self.cancel)
        worker.yielded.connect(self._on_progress)
        worker.returned.connect(self._on_returned)
        worker.errored.connect(self._on_errored)
        worker.aborted.connect(self._on_aborted)
        self.worker, self.dialog = worker, dlg
        worker.start()

    def cancel(self) -> None:
        if self.worker is not None:
            self.worker.quit()

    def _on_progress(self, step: tuple[int, int]) -> None:
        i, n = step
        if self.dialog is not None and n > 0:
            if self.dialog.maximum() != n:
                self.dialog.setRange(0, n)
            self.dialog.setValue(min(i, n))

    def _done(self) -> None:
        self.worker = None
        if self.dialog is not None:
            self.dialog.canceled.disconnect(self.cancel)
            self.dialog.close()
            self.dialog.deleteLater()
            self.dialog = None

    def _on_returned(self, path: object) -> None:
        self._done()
        self.finished.emit(path)

    def _on_aborted(self, *_args: object) -> None:
        self._done()
        self.cancelled.emit()

    def _on_errored(self, exc: BaseException) -> None:
        exc = original_error(exc)
        self._done()
        if is_cancellation(exc):
            self.cancelled.emit()
        else:
            self.failed.emit(exc)


def export_job(fn: Callable[..., Any], expl: Any, path: str, *args: Any,
               progress: Callable[[int, int], None], should_stop: Callable[[], bool],
               quick: bool = False, **kwargs: Any) -> Any:
    """Run one exporter in the worker; ``quick`` ones take no progress/cancel keywords.

    A disk problem (unwritable folder, a file in the way, full disk) becomes an
    :class:`~tam_engine.export.ExportError` that names the path and the way out.
    """
    try:
        if not quick:
            return fn(expl, path, *args, progress=progress, should_stop=should_stop, **kwargs)
        progress(0, 1)
        out = fn(expl, path, *args, **kwargs)
        progress(1, 1)
        return out
    except OSError as exc:
        raise ExportError(f"Could not write {path}: {exc.strerror or exc}",
                             "Choose a folder you can write to, with free disk space.") from exc
