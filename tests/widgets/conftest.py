"""Fixtures of the widget tier: the real windows under pytest-qt, a leak check, and dialogs
recorded instead of shown."""

from __future__ import annotations

import pytest


@pytest.fixture
def no_gui_leaks(qapp):
    """Fail a test that leaves a top-level window open or a worker thread running."""
    from PySide6.QtCore import QCoreApplication, QEvent, QThreadPool
    from PySide6.QtWidgets import QApplication
    from superqt.utils import WorkerBase

    before = {id(w) for w in QApplication.topLevelWidgets() if w.isVisible()}
    yield
    pool = QThreadPool.globalInstance()
    finished = pool.waitForDone(20_000)
    for _ in range(3):  # deliver the workers' last signals and deferred deletes
        QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
        qapp.processEvents()
    windows = [w for w in QApplication.topLevelWidgets()
               if w.isVisible() and id(w) not in before]
    problems = []
    if windows:
        problems.append(f"top-level windows left open: {[type(w).__name__ for w in windows]}")
        for w in windows:
            w.close()
    if not finished or pool.activeThreadCount():
        problems.append(f"{pool.activeThreadCount()} worker thread(s) still running")
    if WorkerBase._worker_set:
        problems.append(f"{len(WorkerBase._worker_set)} superqt worker(s) not finished")
    if problems:
        pytest.fail("; ".join(problems))


@pytest.fixture
def gui_settings_path(tmp_path):
    return tmp_path / "config" / "settings.json"


@pytest.fixture
def main_window(qtbot, no_gui_leaks, gui_settings_path):
    """The real main window with settings in a temporary file; closed after the test."""
    from tam_desktop.main_window import MainWindow

    # Closing after a test's runs must not wait on a Save / Discard / Cancel box: tests of that
    # box switch it on (window.saver.ask = True).
    window = MainWindow(settings_path=gui_settings_path, ask_unsaved=False)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    yield window
    window.close()


@pytest.fixture
def error_boxes(monkeypatch):
    """Record every QMessageBox shown instead of blocking on it: [(title, text, hint), ...]."""
    from PySide6.QtWidgets import QMessageBox

    shown: list[tuple[str, str, str]] = []

    def fake_exec(box):
        shown.append((box.windowTitle(), box.text(), box.informativeText()))
        return int(QMessageBox.StandardButton.Ok)

    monkeypatch.setattr(QMessageBox, "exec", fake_exec)
    return shown


@pytest.fixture(scope="session")
def sample_media(tmp_path_factory):
    """A small PNG and a short MP4 made by tam_engine.demo.synth: {"image": Path, "video": Path}."""
    from tam_engine.demo import synth

    root = tmp_path_factory.mktemp("gui_media")
    image = root / "shapes.png"
    image.write_bytes(synth.encode_png(synth.make_image_scene(3, size=112).image))
    video = root / "moving.mp4"
    video.write_bytes(synth.encode_mp4(synth.make_video_scene(4, size=112, n_frames=8).frames))
    return {"image": image, "video": video}


@pytest.fixture
def compare_window(qtbot, no_gui_leaks, error_boxes):
    """``compare_window(**kwargs)``: a real compare window on default settings, closed after
    the test."""
    from tam_desktop.app_context import AppContext
    from tam_desktop.compare import CompareWindow
    from tam_desktop.settings import AppSettings

    windows = []

    def make(**kwargs):
        settings = kwargs.pop("settings", None) or AppSettings()
        w = CompareWindow(AppContext(settings), **kwargs)
        qtbot.addWidget(w)
        w.show()
        qtbot.waitExposed(w)
        windows.append(w)
        return w

    yield make
    for w in windows:
        w.close()


@pytest.fixture
def click_token(qtbot):
    """``click_token(strip, index, modifier=None)``: click a word chip of a token strip."""
    from PySide6.QtCore import Qt

    def click(strip, index, modifier=Qt.KeyboardModifier.NoModifier):
        qtbot.mouseClick(strip.canvas, Qt.MouseButton.LeftButton, modifier,
                         pos=strip.canvas.chip_rect(index).center())
    return click
