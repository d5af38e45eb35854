"""Start the Qt application with the main window."""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Sequence


def run_app(paths: Sequence[str] = ()) -> int:
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
    from PySide6.QtWidgets import QApplication

    from tam_desktop.main_window import MainWindow, schedule_open

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("tam-desktop")
    app.setOrganizationName("tam-desktop")
    window = MainWindow()
    window.show()
    settle_heap()
    window.warm_up_engine()
    schedule_open(window, [os.path.abspath(p) for p in paths])
    code = app.exec()
    exit_now(code)
    return code  # not reached


def settle_heap() -> None:
    """Exempt what exists once the window is up from Python's full garbage collections.

    Qt, torch, pyqtgraph and the window make a hundred thousand long-lived objects; a full
    collection walks them all (about 80 ms here) and holds every thread meanwhile, whichever
    thread's allocation triggered it: a stall of the UI at random moments, typically while a
    file is read or a long answer is shown. Frozen (``gc.freeze``), they are never walked
    again: most live as long as the process, one that dies later is still freed by its
    reference count (only a reference cycle among them would stay). Garbage made later is
    collected as before.
    """
    gc.collect()
    gc.freeze()


def exit_now(code: int) -> None:
    """End the process without the interpreter's clean-up.

    When the last window has closed, everything worth keeping is on disk (settings written,
    saves finished, exports cancelled: they write atomically). What is left is tearing down
    thousands of torch/transformers modules (about 3-5 s) and maybe a model load that cannot be
    interrupted; neither should keep a user who quit waiting.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
