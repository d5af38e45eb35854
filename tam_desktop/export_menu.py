"""File > Export in the main window: every exporter of ``tam_engine.export``, run off the UI
thread by :class:`~tam_desktop.exporting.ExportRunner` (progress dialog, Cancel)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QFileDialog, QMenu, QWidget

from tam_desktop.app_window import remember_save_folder, save_folder
from tam_desktop.dialogs import show_error
from tam_desktop.exporting import ExportRunner, export_job
from tam_desktop.models.playback import PlaybackState
from tam_desktop.settings import AppSettings
from tam_engine import export as ex
from tam_engine.core.tokens import token_number


@dataclass(frozen=True)
class ExportKind:
    """One entry of the menu: its label, the file it writes and when it applies."""

    key: str
    label: str
    suffix: str           # "" for a folder
    file_filter: str
    media: str = "any"    # "image" or "video": shown only for that kind of media


KINDS = [
    ExportKind("token_png", "Current Token as &PNG…", ".png", "PNG images (*.png)"),
    ExportKind("textmap_png", "&Text Map as PNG…", ".png", "PNG images (*.png)"),
    ExportKind("sequence", "All Tokens as PNG &Sequence…", "", "Folders (*)"),
    ExportKind("contact_sheet", "&Contact Sheet…", ".png", "PNG images (*.png)"),
    ExportKind("sweep_mp4", "Token &Sweep MP4…", ".mp4", "MP4 videos (*.mp4)", "image"),
    ExportKind("follow_mp4", "Video MP4 (&follow the answer)…", ".mp4", "MP4 videos (*.mp4)",
               "video"),
    ExportKind("token_mp4", "Video MP4 (current to&ken)…", ".mp4", "MP4 videos (*.mp4)",
               "video"),
    ExportKind("html", "&HTML Page…", ".html", "HTML pages (*.html)"),
    ExportKind("json", "&JSON…", ".json", "JSON files (*.json)"),
    ExportKind("npz", "Raw Maps (&NPZ)…", ".npz", "NumPy archives (*.npz)"),
]
KIND_BY_KEY = {k.key: k for k in KINDS}
#: Exports that are data rather than pictures: their first folder is Documents, not Pictures.
DATA_KINDS = ("html", "json", "npz")


class ExportHost(Protocol):
    """What the menu needs of its window: what it shows, where files came from, messages."""

    @property
    def state(self) -> PlaybackState: ...
    @property
    def current_file(self) -> str: ...
    @property
    def settings(self) -> AppSettings: ...
    def show_status(self, text: str) -> None: ...


class ExportMenu(QObject):
    """The File > Export submenu of a window (``host``) and the exports it starts."""

    exported = Signal(object)   # the path written (a folder for a PNG sequence)

    def __init__(self, host: ExportHost, parent: QWidget) -> None:
        super().__init__(parent)
        self.host = host
        self._parent = parent
        self.runner = ExportRunner(parent)
        self.menu = QMenu("E&xport", parent)
        self.actions: dict[str, QAction] = {}
        for kind in KINDS:
            act = self.menu.addAction(kind.label)
            act.triggered.connect(lambda _=False, k=kind.key: self.export(k))
            self.actions[kind.key] = act
            if kind.key in ("contact_sheet", "token_mp4"):
                self.menu.addSeparator()
        self.menu.aboutToShow.connect(self.refresh)
        self.runner.finished.connect(self._on_finished)
        self.runner.failed.connect(self._on_failed)
        self.runner.cancelled.connect(
            lambda: self.host.show_status("Export cancelled; nothing was written."))
        self.refresh()

    # ------------------------------------------------------------------ state
    def _media_kind(self) -> str:
        m = self.host.state.current_media
        return m.kind if m is not None else ""

    def refresh(self) -> None:
        """Enable the submenu only with an explanation; show the MP4 entries that fit."""
        expl = self.host.state.explanation
        self.menu.menuAction().setEnabled(expl is not None)
        has_maps = expl is not None and bool(expl.grids) and bool(expl.media)
        media = self._media_kind()
        for kind in KINDS:
            act = self.actions[kind.key]
            act.setVisible(kind.media == "any" or kind.media == media)
            needs_maps = kind.key in ("token_png", "contact_sheet", "sweep_mp4",
                                      "follow_mp4", "token_mp4")
            act.setEnabled(expl is not None and (has_maps or not needs_maps))

    # ------------------------------------------------------------------ paths
    def suggested_path(self, key: str) -> Path:
        """A file named after the media, in the last save/export folder (at first the user's
        Pictures, or Documents for data), with the right extension."""
        kind = KIND_BY_KEY[key]
        st = self.host.state
        media = st.current_media
        source = Path(self.host.current_file or (media.path if media else "") or "explanation")
        stem = source.name.split(".")[0] or "explanation"
        folder = save_folder(self.host.settings, pictures=key not in DATA_KINDS)
        k = token_number(st.token)
        tail = {"token_png": f"_token{k}", "textmap_png": f"_textmap{k}",
                "sequence": "_tokens", "contact_sheet": "_sheet", "sweep_mp4": "_sweep",
                "follow_mp4": "_follow", "token_mp4": f"_token{k}", "npz": "_maps"}
        return folder / f"{stem}{tail.get(key, '')}{kind.suffix}"

    def _ask_save_path(self, key: str, suggested: Path) -> str:
        """Ask where to write (tests replace this); an empty string means the user gave up."""
        kind = KIND_BY_KEY[key]
        title = "Export " + kind.label.replace("&", "").rstrip("…")
        path, _ = QFileDialog.getSaveFileName(self._parent, title, str(suggested),
                                              kind.file_filter)
        return path

    # ------------------------------------------------------------------ exporting
    def export(self, key: str) -> None:
        """Ask for a path, then write the export ``key`` (one of :data:`KINDS`) there."""
        if self.host.state.explanation is None:
            self.host.show_status("Nothing to export yet: run a model first.")
            return
        if self.runner.busy:
            self.host.show_status("An export is already running.")
            return
        path = self._ask_save_path(key, self.suggested_path(key))
        if path:
            remember_save_folder(self.host.settings, str(path))
            self.export_to(key, str(path))

    def export_to(self, key: str, path: str) -> None:
        """Write the export ``key`` to ``path`` (the extension is added when missing)."""
        expl = self.host.state.explanation
        if expl is None or self.runner.busy:
            return
        suffix = KIND_BY_KEY[key].suffix
        if suffix and not path.lower().endswith(suffix):
            path += suffix
        st = self.host.state
        d = st.display
        mi, frame, k, kind = st.media_index, st.cursor.frame, st.token, st.kind
        # What is shown is what is written: the layer of a tiled image and its tile borders too.
        look = {"cmap": d.colormap, "opacity": d.opacity, "layer": d.layer,
                "tile_borders": d.tile_borders, "scale": d.scale}
        where = {"media_index": mi, "frame": frame}
        jobs: dict[str, tuple[Callable[..., Any], tuple, dict]] = {
            "token_png": (ex.export_token_png, (k, "figure"),
                          {"kind": kind, **where, **look, "quick": True}),
            "textmap_png": (ex.export_token_png, (k, "textmap"),
                            {"kind": kind, "cmap": d.colormap, "quick": True}),
            "sequence": (ex.export_png_sequence, ("figure", kind), {**where, **look}),
            "contact_sheet": (ex.export_contact_sheet, (kind,), {**where, **look}),
            "sweep_mp4": (ex.export_sweep_mp4, (kind,), {**where, **look}),
            "follow_mp4": (ex.export_video_mp4, (None, kind), {"media_index": mi, **look}),
            "token_mp4": (ex.export_video_mp4, (k, kind), {"media_index": mi, **look}),
            "html": (ex.export_html, (), {**where, **look}),
            "json": (ex.export_json, (), {"quick": True}),
            "npz": (ex.export_npz, (), {"quick": True}),
        }
        fn, args, kwargs = jobs[key]
        self._target = path
        self.host.show_status(f"Exporting {Path(path).name} …")
        self.runner.start(f"Writing {Path(path).name} …", export_job, fn, expl, path, *args,
                          **kwargs)

    def _on_finished(self, _result: object) -> None:
        self.host.show_status(f"Exported {self._target}")
        self.exported.emit(self._target)

    def _on_failed(self, exc: BaseException) -> None:
        self.host.show_status("The export failed.")
        show_error(self._parent, "Cannot export", exc)
