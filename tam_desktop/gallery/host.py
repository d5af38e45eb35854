"""The gallery inside the main window: File > Open Batch shows it in place of the main view;
Enter opens an item in the main view, Escape comes back to the same place in the grid."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtWidgets import QFileDialog, QMainWindow, QStackedWidget, QWidget

from tam_desktop.gallery.view import GalleryWidget
from tam_engine.batch.index import read_index


class GalleryHost:
    """Owns the main window's two pages (the main view and the gallery).

    ``open_item(path)`` is how the main window opens an explanation; the window's task runner
    (``submit(kind, fn, *args, on_result=, on_error=)``) reads the index off the UI thread.
    """

    def __init__(self, window: QMainWindow, open_item: Callable[[str], None],
                 submit: Callable[..., object],
                 report_error: Callable[[str, BaseException], None],
                 show_status: Callable[[str], None]) -> None:
        self.window = window
        self._open_item = open_item
        self._submit = submit
        self._report_error = report_error
        self._show_status = show_status
        self.stack = QStackedWidget(window)
        main_page = window.takeCentralWidget()
        assert main_page is not None, "the window's main view is built before the gallery"
        self.main_page: QWidget = main_page
        self.stack.addWidget(self.main_page)
        self.gallery = GalleryWidget(self.stack)
        self.stack.addWidget(self.gallery)
        window.setCentralWidget(self.stack)
        self.gallery.open_requested.connect(self._on_open_requested)
        self._from_gallery = False

    @property
    def showing_gallery(self) -> bool:
        return self.stack.currentWidget() is self.gallery

    def open_dialog(self, start_dir: str = "") -> None:
        folder = QFileDialog.getExistingDirectory(self.window, "Open a batch folder", start_dir)
        if folder:
            self.open_folder(folder)

    def open_folder(self, folder: str | Path) -> None:
        folder = Path(folder)
        self._show_status(f"Opening the batch {folder.name} …")
        self._submit("batch", read_index, folder,
                     on_result=lambda recs: self._on_index(folder, recs),
                     on_error=lambda exc: self._report_error("Cannot open the batch", exc))

    def _on_index(self, folder: Path, records: list[dict]) -> None:
        self.gallery.set_batch(folder, records)
        self.stack.setCurrentWidget(self.gallery)
        self._from_gallery = False
        self.gallery.focus_grid()
        n_err = sum(r.get("status") != "ok" for r in records)
        self._show_status(f"Batch {folder.name}: {len(records)} items ({n_err} failed). Enter "
                          "opens an item, Escape comes back.")

    def _on_open_requested(self, path: str, item_id: str) -> None:
        self._open_item(path)
        self.stack.setCurrentWidget(self.main_page)
        self._from_gallery = True

    def back(self) -> bool:
        """Show the gallery again (where it was) if the main view came from it."""
        if not self._from_gallery or self.showing_gallery:
            return False
        self.stack.setCurrentWidget(self.gallery)
        self._from_gallery = False
        self.gallery.focus_grid()
        return True
