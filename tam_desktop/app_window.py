"""What the main window and the compare window share: actions, reading and writing files, the
checks before a run, error titles and closing down."""

from __future__ import annotations

import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

from PySide6.QtCore import QEvent, QObject, QStandardPaths
from PySide6.QtGui import QAction, QCloseEvent, QIcon, QKeySequence
from PySide6.QtWidgets import QLabel, QMainWindow, QMenu, QWidget

from tam_desktop.app_context import AppContext
from tam_desktop.dialogs import GenerationDialog, show_error
from tam_desktop.models.evidence import prepare_for_view
from tam_desktop.models.playback import FrameCursor
from tam_desktop.settings import AppSettings
from tam_desktop.worker import TaskRunner
from tam_engine.core.errors import (
    ExplanationFileError,
    MediaError,
    ModelLoadError,
    ModelMemoryError,
    TamError,
)
from tam_engine.core.explanation import Explanation
from tam_engine.core.media import MediaItem

EXPLANATION_SUFFIX = ".tam.npz"
EXPLANATION_FILTER = f"Explanations (*{EXPLANATION_SUFFIX} *.npz);;All files (*)"

Shortcut = str | QKeySequence.StandardKey | list[str]

#: Background jobs that write the user's files: closing waits for them (and for nothing else:
#: a model load cannot be interrupted, and quitting must take well under a second). Settings
#: are not among them: the final write on closing supersedes any in the background.
WRITING_TASKS = ("save",)


def save_folder(settings: AppSettings, pictures: bool = False) -> Path:
    """Where a save or export dialog opens: the last save/export folder, else the user's
    Documents (Pictures for images and videos). Never the last Open folder, which may be the
    installed package's sample folder."""
    last = Path(settings.last_save_dir) if settings.last_save_dir else None
    if last is not None and last.is_dir():
        return last
    where = (QStandardPaths.StandardLocation.PicturesLocation if pictures
             else QStandardPaths.StandardLocation.DocumentsLocation)
    folder = QStandardPaths.writableLocation(where)
    return Path(folder) if folder and Path(folder).is_dir() else Path.home()


def remember_save_folder(settings: AppSettings, path: str) -> None:
    """The folder of a file the user chose to write: the next save or export starts there."""
    settings.last_save_dir = str(Path(path).resolve().parent)


def media_file_filter() -> str:
    """The file dialog filter for every image and video the engine reads."""
    from tam_engine.media.files import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS

    images = " ".join(f"*{e}" for e in IMAGE_EXTENSIONS)
    videos = " ".join(f"*{e}" for e in VIDEO_EXTENSIONS)
    return (f"Images and videos ({images} {videos});;Images ({images});;Videos ({videos});;"
            "All files (*)")


def read_explanation(path: str) -> Explanation:
    """:meth:`Explanation.load`, with every way a file can be wrong said as a ``TamError``, and
    the first things the view shows made ready (the thread that reads does it)."""
    try:
        return prepare_for_view(Explanation.load(path))
    except TamError:
        raise  # already says what is wrong and what to do
    except FileNotFoundError as exc:
        raise ExplanationFileError(f"{Path(path).name} does not exist.",
                                   "Choose an existing .tam.npz file.") from exc
    except (ValueError, KeyError, OSError, TypeError, EOFError, zipfile.BadZipFile) as exc:
        raise ExplanationFileError(
            f"{Path(path).name} cannot be read as an explanation: {exc}",
            "Choose a .tam.npz file saved by tam-desktop (File > Save Explanation) or by "
            "`tam explain`.") from exc


def write_explanation(expl: Explanation, path: str) -> Path:
    try:
        return expl.save(path)
    except OSError as exc:
        raise TamError(f"Could not save the explanation to {path}: {exc.strerror or exc}",
                       "Choose a folder you can write to, with free disk space.") from exc


def run_problem(has_media: bool, models: Sequence[str], prompt: str
                ) -> tuple[str, TamError] | None:
    """``(title, error)`` saying why a run cannot start, or None when it can.

    ``models`` holds one model (the main window) or two (compare mode: A and B).
    """
    two = len(models) > 1
    if not has_media:
        if two:
            return "Nothing to compare on", TamError(
                "There is no image or video to explain.",
                "Choose one with Media… (or open it in the main window first).")
        return "Nothing to explain", TamError(
            "There is no image or video to explain.",
            "Open one with File > Open or drop it on the window, then Run.")
    if not all(models):
        if two:
            return "Two models needed", TamError(
                "Choose model A and model B.",
                "Type a Hugging Face model id or choose a local model folder (…).")
        return "No model", TamError(
            "No model is chosen.", "Type a Hugging Face model id or choose a local model "
            "folder (the … button), then Run.")
    if not prompt:
        return "No prompt", TamError("The prompt is empty.",
                                     "Type a question or pick a preset prompt.")
    return None


def run_error_title(error: BaseException, side: str = "") -> str:
    """The title of the box for a failed run (``side``: "a" or "b" in compare mode)."""
    if isinstance(error, MediaError):
        return "Cannot open the media"
    if isinstance(error, (ModelLoadError, ModelMemoryError)):
        return f"Cannot load model {side.upper()}" if side else "Cannot load the model"
    return f"Model {side.upper()}: the run failed" if side else "The run failed"


def short_model_name(model: str) -> str:
    """A folder's name or a Hub id, as shown in status lines and headers."""
    return Path(model).name or model


class AppWindow(QMainWindow):
    """A top-level window of the app, on the shared :class:`AppContext`.

    Subclasses stop their work in :meth:`stop_work` (called when closing, before the
    background workers get a moment to finish) and save what they remember in
    :meth:`remember` (called after that).
    """

    def __init__(self, context: AppContext, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.context = context
        self.status_label = QLabel(self)
        self.statusBar().addWidget(self.status_label, 1)
        try:
            from tam_engine.core.resources import icon_path

            self.setWindowIcon(QIcon(str(icon_path(256))))
        except Exception:  # an icon is decoration: a missing one must not stop the app
            pass

    @property
    def settings(self) -> AppSettings:
        return self.context.settings

    @property
    def tasks(self) -> TaskRunner:
        return self.context.tasks

    def add_action(self, text: str, slot: Callable[[], object],
                   shortcut: Shortcut | None = None, tip: str = "") -> QAction:
        """An action whose shortcut works window-wide, even without a menu."""
        act = QAction(text, self)
        if shortcut is not None:
            keys = shortcut if isinstance(shortcut, list) else [shortcut]
            act.setShortcuts([QKeySequence(k) for k in keys])
        if tip:
            act.setStatusTip(tip)
        act.triggered.connect(slot)
        self.addAction(act)
        return act

    def add_frame_actions(self, cursor: FrameCursor) -> tuple[QAction, QAction, QAction]:
        """Previous frame, next frame, play / pause of ``cursor``."""
        return (self.add_action("Previous Frame", lambda: cursor.step(-1), ["Up", ","]),
                self.add_action("Next Frame", lambda: cursor.step(1), ["Down", "."]),
                self.add_action("Play / Pause", lambda: cursor.set_playing(not cursor.playing),
                                "Space"))

    def add_menus(self, menus: dict[str, list[QAction | QMenu | None]]) -> None:
        """Menus of the menu bar: actions, submenus and (None) separators."""
        for title, entries in menus.items():
            menu = self.menuBar().addMenu(title)
            for e in entries:
                if e is None:
                    menu.addSeparator()
                elif isinstance(e, QMenu):
                    menu.addMenu(e)
                else:
                    menu.addAction(e)

    # ------------------------------------------------------------------ messages
    def show_status(self, text: str) -> None:
        self.status_label.setText(text)

    def report_error(self, title: str, exc: BaseException) -> None:
        """The title in the status line and a box that says what to do."""
        self.show_status(title)
        show_error(self, title, exc)

    # ------------------------------------------------------------------ files
    def read_media(self, kind: str, paths: Sequence[str],
                   on_result: Callable[[list[MediaItem]], None]) -> None:
        """Decode ``paths`` off the UI thread (once: the run reuses them), then ``on_result``."""
        gen = self.settings.generation
        self.show_status(f"Opening {', '.join(Path(p).name for p in paths)} …")
        self.tasks.submit(kind, self.context.media.get, list(paths), gen.video_fps,
                          gen.max_frames, on_result=on_result,
                          on_error=lambda exc: self.report_error("Cannot open the media", exc))

    def decoded_media(self, paths: Sequence[str]) -> tuple[MediaItem, ...]:
        """The media of ``paths`` as a run with the current settings reads them, if read."""
        gen = self.settings.generation
        return tuple(self.context.media.peek(paths, gen.video_fps, gen.max_frames))

    def read_explanation(self, kind: str, path: str,
                         on_result: Callable[[Explanation], None]) -> None:
        self.show_status(f"Opening {Path(path).name} …")
        self.tasks.submit(kind, read_explanation, path, on_result=on_result,
                          on_error=lambda exc: self.report_error("Cannot open the explanation",
                                                                 exc))

    # ------------------------------------------------------------------ settings and closing
    def close_with(self, owner: QWidget) -> None:
        """Close this window when ``owner`` closes."""
        _CloseWith(self, owner)

    def edit_generation_settings(self) -> bool:
        """The Generation Settings dialog; True when the user changed them."""
        dlg = GenerationDialog(self.settings.generation, self)
        if not dlg.exec():
            return False
        self.settings.generation = dlg.prefs()
        return True

    def stop_work(self) -> None:
        """Stop playback, runs and exports (the window is closing)."""

    def remember(self) -> None:
        """Keep what the next session should find (after the workers had their moment)."""

    def closeEvent(self, ev: QCloseEvent) -> None:  # noqa: N802
        self.stop_work()
        # Saves in flight finish (the user's data); runs and exports were told to stop and are
        # not waited for.
        self.tasks.wait_for(WRITING_TASKS, 10.0)
        self.remember()
        super().closeEvent(ev)


class _CloseWith(QObject):
    def __init__(self, window: QWidget, owner: QWidget) -> None:
        super().__init__(window)
        self.window = window
        owner.installEventFilter(self)

    def eventFilter(self, obj: QObject, ev: QEvent) -> bool:  # noqa: N802
        if ev.type() == QEvent.Type.Close and self.window.isVisible():
            self.window.close()
        return False
