"""The compare window: model A and model B on the same media and prompt, side by side."""

from __future__ import annotations

import html
from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QEvent, QObject, Qt, QThreadPool, Signal
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import (
    QFileDialog,
    QLabel,
    QMainWindow,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from tam_desktop.compare.alignment_view import SIDE_COLOURS, AlignmentView
from tam_desktop.compare.controller import CompareController
from tam_desktop.compare.diff_view import DiffView
from tam_desktop.compare.exporting import mp4_job, png_job
from tam_desktop.compare.link import SIDES, SelectionLink
from tam_desktop.compare.run_bar import CompareRunBar
from tam_desktop.dialogs import GenerationDialog, show_error
from tam_desktop.exporting import ExportRunner
from tam_desktop.models.playback import DisplayOptions, FrameCursor, PlaybackState
from tam_desktop.settings import AppSettings
from tam_desktop.views.pane import ExplanationPane
from tam_desktop.worker import ModelCache, RunRequest, TaskRunner
from tam_engine.compare.alignment import Side
from tam_engine.compare.comparison import Comparison
from tam_engine.core.errors import MediaError, ModelLoadError, ModelMemoryError, TamError
from tam_engine.core.explanation import Explanation
from tam_engine.core.media import MediaItem


def _short(model: str) -> str:
    return Path(model).name or model


class CompareWindow(QMainWindow):
    """Two ``ExplanationPane`` s sharing one ``FrameCursor`` and one ``DisplayOptions``.

    Picking a word in one pane picks its aligned word in the other; the difference view shows
    A's map minus B's on the shared frame.
    """

    exported = Signal(object)        # path of a finished export
    comparison_changed = Signal()    # both explanations present (or one went away)

    def __init__(self, settings: AppSettings | None = None, *,
                 media_paths: Sequence[str] = (), media: Sequence[MediaItem] = (),
                 prompt: str = "", model_a: str = "", model_b: str = "",
                 cache: ModelCache | None = None, display: DisplayOptions | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        if parent is not None:
            self.setWindowFlag(Qt.WindowType.Window, True)
        self.settings = settings or AppSettings()
        self.media_paths: list[str] = [str(p) for p in media_paths]
        self.media: list[MediaItem] = list(media)
        self.comparison: Comparison | None = None
        self.frame_cursor = FrameCursor()
        d = display
        self.display = DisplayOptions(d.colormap, d.opacity, d.overlay_visible, d.combine) \
            if d is not None else DisplayOptions()
        self.states: dict[Side, PlaybackState] = {
            s: PlaybackState(cursor=self.frame_cursor, display=self.display) for s in SIDES}
        self.panes: dict[Side, ExplanationPane] = {}
        self.headers: dict[Side, QLabel] = {}
        self.models: dict[Side, str] = {"a": "", "b": ""}
        self.link = SelectionLink(self.states["a"], self.states["b"])
        self.controller = CompareController(self.states["a"], self.states["b"], self, cache)
        self.tasks = TaskRunner()
        self.exports = ExportRunner(self)
        self._build(prompt, model_a, model_b)
        self._connect()
        for st in self.states.values():
            st.set_content(self.media, None)
        self._show_media_name()
        self.setWindowTitle("Compare models — tam-desktop")
        room = self.screen().availableGeometry() if self.screen() is not None else None
        self.resize(min(1500, room.width()) if room else 1500,
                    min(920, room.height()) if room else 920)
        # A wider difference column than the stretch factors alone give; sizes that fit the
        # window, or showing it would widen the window past the screen.
        inner = self.width() - 40
        self.splitter.setSizes([int(inner * 0.37), int(inner * 0.37), int(inner * 0.26)])
        if self.media_paths and not self.media:
            self.open_media(self.media_paths)   # paths only: read the frames to show them

    @property
    def pane_a(self) -> ExplanationPane:
        return self.panes["a"]

    @property
    def pane_b(self) -> ExplanationPane:
        return self.panes["b"]

    # ------------------------------------------------------------------ building
    def _build(self, prompt: str, model_a: str, model_b: str) -> None:
        s = self.settings
        self.run_bar = CompareRunBar(self)
        self.run_bar.model_a.set_models(s.recent_models, model_a or s.last_model)
        others = [m for m in s.recent_models if m != self.run_bar.model_a.model_name()]
        self.run_bar.model_b.set_models(s.recent_models, model_b or (others[0] if others
                                                                     else ""))
        self.run_bar.set_prompt(prompt or s.prompt)
        split = QSplitter(Qt.Orientation.Horizontal, self)
        for side in SIDES:
            box = QWidget(split)
            # An explicit minimum: before the first show Qt sizes the boxes by the (moved)
            # display bar and the window would open wider than a laptop screen.
            box.setMinimumWidth(360)
            col = QVBoxLayout(box)
            col.setContentsMargins(2, 2, 2, 2)
            col.setSpacing(2)
            header = QLabel(box)
            header.setTextFormat(Qt.TextFormat.RichText)
            header.setWordWrap(True)
            pane = ExplanationPane(self.states[side], parent=box)
            # Side by side there is little width: media above the tokens, not beside them.
            pane.h_split.setOrientation(Qt.Orientation.Vertical)
            pane.h_split.setSizes([560, 340])
            pane.v_split.setSizes([800, 110])
            col.addWidget(header)
            col.addWidget(pane, 1)
            self.panes[side], self.headers[side] = pane, header
            split.addWidget(box)
        # One set of display options, so one bar for both panes, above them: the panes'
        # media then start at the same height.
        self.display_bar = self.pane_a.display_bar
        self.pane_b.display_bar.hide()
        right = QWidget(split)
        rcol = QVBoxLayout(right)
        rcol.setContentsMargins(2, 2, 2, 2)
        self.diff_view = DiffView(right)
        self.alignment_label = AlignmentView(right)
        rcol.addWidget(self.diff_view, 3)
        rcol.addWidget(self.alignment_label, 2)
        split.addWidget(right)
        split.setStretchFactor(0, 5)
        split.setStretchFactor(1, 5)
        split.setStretchFactor(2, 4)
        self.splitter = split
        central = QWidget(self)
        col = QVBoxLayout(central)
        col.setContentsMargins(0, 0, 0, 0)
        col.setSpacing(0)
        col.addWidget(self.run_bar)
        col.addWidget(self.display_bar)
        col.addWidget(split, 1)
        self.setCentralWidget(central)
        self.status_label = QLabel(self)
        self.statusBar().addWidget(self.status_label, 1)
        self._build_menus()
        self._update_headers()
        self._update_alignment_label()

    def _action(self, text: str, slot, shortcut: str | QKeySequence.StandardKey | None = None
                ) -> QAction:
        act = QAction(text, self)
        if shortcut is not None:
            act.setShortcut(QKeySequence(shortcut))
        act.triggered.connect(slot)
        self.addAction(act)
        return act

    def _build_menus(self) -> None:
        K = QKeySequence.StandardKey
        cur = self.frame_cursor
        self.act_open_media = self._action("Choose &Media…", self.open_media_dialog, K.Open)
        self.act_open_a = self._action("Open Explanation as &A…",
                                       lambda: self.open_explanation_dialog("a"))
        self.act_open_b = self._action("Open Explanation as &B…",
                                       lambda: self.open_explanation_dialog("b"))
        self.act_export_png = self._action("Export Side by Side as &PNG…",
                                           self.export_png_dialog, "Ctrl+E")
        self.act_export_mp4 = self._action("Export Side by Side as MP&4…",
                                           self.export_mp4_dialog, "Ctrl+Shift+E")
        self.act_close = self._action("&Close", self.close, K.Close)
        self.act_run = self._action("&Run A then B", self.run, "Ctrl+R")
        self.act_cancel = self._action("&Cancel", self.cancel_run, "Esc")
        self.act_gen = self._action("&Generation Settings…", self.edit_generation_settings)
        self.act_prev_frame = self._action("Previous Frame", lambda: cur.step(-1), "Up")
        self.act_next_frame = self._action("Next Frame", lambda: cur.step(1), "Down")
        self.act_play = self._action("Play / Pause",
                                     lambda: cur.set_playing(not cur.playing), "Space")
        bar = self.menuBar()
        menus: dict[str, list[QAction | None]] = {
            "&File": [self.act_open_media, None, self.act_open_a, self.act_open_b, None,
                      self.act_export_png, self.act_export_mp4, None, self.act_close],
            "&Model": [self.act_run, self.act_cancel, None, self.act_gen],
            "&View": [self.act_prev_frame, self.act_next_frame, self.act_play],
        }
        for title, actions in menus.items():
            menu = bar.addMenu(title)
            for a in actions:
                menu.addSeparator() if a is None else menu.addAction(a)

    def _connect(self) -> None:
        rb = self.run_bar
        rb.run_requested.connect(self.run)
        rb.cancel_requested.connect(self.cancel_run)
        rb.settings_requested.connect(self.edit_generation_settings)
        rb.open_media_requested.connect(self.open_media_dialog)
        for st in self.states.values():
            st.content_changed.connect(self._on_content)
        # Both panes show the same media item (set_media_index ignores the echo).
        sa, sb = self.states["a"], self.states["b"]
        sa.media_index_changed.connect(lambda i: self._on_media_index(sb, i))
        sb.media_index_changed.connect(lambda i: self._on_media_index(sa, i))
        self.link.changed.connect(self._update_diff)
        self.link.changed.connect(self._update_alignment_label)
        self.frame_cursor.frame_changed.connect(lambda _f: self._update_diff())
        self.display.changed.connect(lambda name: self._update_diff() if name == "combine"
                                     else None)
        self.exports.finished.connect(self._on_exported)
        self.exports.failed.connect(lambda exc: self._error("Cannot export", exc))
        self.exports.cancelled.connect(lambda: self._status("Export cancelled; nothing "
                                                            "was written."))

    # ------------------------------------------------------------------ content
    def _on_content(self) -> None:
        a, b = self.states["a"].explanation, self.states["b"].explanation
        cmp = Comparison.of(a, b) if a is not None and b is not None else None
        if cmp is None and self.comparison is None:
            self._update_headers()
            self._update_diff()
            return
        self.comparison = cmp
        if cmp is not None:
            # Each pane set the shared cursor to its own length; allow the longer one (a
            # pane past its last frame keeps showing that frame).
            m = [st.current_media for st in self.states.values() if st.current_media]
            if m:
                longest = max(m, key=lambda x: x.n_frames)
                self.frame_cursor.set_length(longest.n_frames, longest.fps)
            if not cmp.same_media():
                self._status("A and B explain different media: their maps do not compare.")
        self.link.set_comparison(cmp)
        self._update_headers()
        self._update_alignment_label()
        self._update_diff()
        self.comparison_changed.emit()

    def _on_media_index(self, other: PlaybackState, index: int) -> None:
        other.set_media_index(index)
        self._update_diff()

    def show_explanations(self, a: Explanation | None, b: Explanation | None) -> None:
        """Show finished explanations (no model needed); None leaves that side as it is."""
        for side, ex in zip(SIDES, (a, b)):
            if ex is not None:
                self.models[side] = str(ex.meta.get("model") or "")
                self.states[side].set_content(ex.media, ex)

    def _update_headers(self) -> None:
        for side in SIDES:
            ex = self.states[side].explanation
            name = _short(self.models[side]) or "(no model yet)"
            bits = [f"<b style='color:{SIDE_COLOURS[side]}'>{side.upper()}</b> · "
                    f"{html.escape(name)}"]
            if ex is not None:
                bits.append(f"<span style='color:#5f6368'>{ex.n_answer} tokens</span>")
            self.headers[side].setText(" &nbsp; ".join(bits))

    def _update_alignment_label(self) -> None:
        sel = {side: st.selection if st.kind == "answer" else ()
               for side, st in self.states.items()}
        self.alignment_label.show_alignment(self.comparison, sel)

    def _update_diff(self) -> None:
        a, b = self.states["a"], self.states["b"]
        ta = a.selection if a.kind == "answer" else ()
        tb = b.selection if b.kind == "answer" else ()
        try:
            self.diff_view.show_difference(self.comparison, ta, tb, a.media_index,
                                           self.frame_cursor.frame, self.display.combine,
                                           self.link.aligned)
        except (TamError, KeyError, ValueError, IndexError) as exc:
            # e.g. B has no grid for the media item A shows: say so instead of a stale map.
            self.diff_view.show_difference(None, (), (), 0, 0, "mean", False)
            why = exc.message if isinstance(exc, TamError) else str(exc)
            self._status(f"No difference map here: {why}")

    # ------------------------------------------------------------------ media and files
    def _show_media_name(self) -> None:
        names = [Path(p).name for p in self.media_paths] or [m.name for m in self.media]
        self.run_bar.media_label.setText(", ".join(names) if names else "no media")

    def open_media_dialog(self) -> None:
        from tam_desktop.main_window import _media_filter

        paths, _ = QFileDialog.getOpenFileNames(self, "Media for both models",
                                                self.settings.last_dir, _media_filter())
        if paths:
            self.open_media(paths)

    def open_media(self, paths: Sequence[str]) -> None:
        paths = [str(p) for p in paths]
        gen = self.settings.generation

        def read(paths: list[str], fps: float, max_frames: int) -> list[MediaItem]:
            from tam_engine.media.io import load_media

            return load_media(paths, fps=fps, max_frames=max_frames)

        self._status(f"Opening {', '.join(Path(p).name for p in paths)} …")
        self.tasks.submit("media", read, paths, gen.video_fps, gen.max_frames,
                          on_result=lambda media: self._on_media(paths, media),
                          on_error=lambda exc: self._error("Cannot open the media", exc))

    def _on_media(self, paths: list[str], media: list[MediaItem]) -> None:
        new = paths != self.media_paths
        self.media_paths, self.media = paths, media
        for side, st in self.states.items():
            # New media make both explanations stale; the frames of the media already chosen
            # (read after the window opened) only fill panes that show nothing yet.
            if new or (st.explanation is None and not self.controller.runs[side].running):
                st.set_content(media, None)
        self._show_media_name()
        self._status("Media chosen. Run A then B (Ctrl+R).")

    def open_explanation_dialog(self, side: Side) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, f"Open an explanation as {side.upper()}", self.settings.last_dir,
            "Explanations (*.tam.npz *.npz);;All files (*)")
        if path:
            self.open_explanation(side, path)

    def open_explanation(self, side: Side, path: str) -> None:
        self.tasks.submit(f"open-{side}", Explanation.load, path,
                          on_result=lambda ex: self._on_explanation(side, ex),
                          on_error=lambda exc: self._error("Cannot open the explanation",
                                                           exc))

    def _on_explanation(self, side: Side, ex: Explanation) -> None:
        self.show_explanations(ex if side == "a" else None, ex if side == "b" else None)
        self._status(f"{side.upper()}: {ex.n_answer} tokens from "
                     f"{_short(str(ex.meta.get('model') or 'a saved explanation'))}")

    # ------------------------------------------------------------------ running
    def run(self) -> None:
        if self.controller.running:
            return
        rb = self.run_bar
        model_a, model_b, prompt = rb.model_a.model_name(), rb.model_b.model_name(), \
            rb.prompt_text()
        problem = None
        if not self.media_paths:
            problem = ("Nothing to compare on", "There is no image or video to explain.",
                       "Choose one with Media… (or open it in the main window first).")
        elif not model_a or not model_b:
            problem = ("Two models needed", "Choose model A and model B.",
                       "Type a Hugging Face model id or choose a local model folder (…).")
        elif not prompt:
            problem = ("No prompt", "The prompt is empty.",
                       "Type a question or pick a preset prompt.")
        if problem is not None:
            self._error(problem[0], TamError(problem[1], problem[2]))
            return
        gen = self.settings.generation
        media = tuple(self.media_paths)
        self.models = {"a": model_a, "b": model_b}
        self.controller.start(RunRequest(model_a, media, prompt, gen),
                              RunRequest(model_b, media, prompt, gen))

    def cancel_run(self) -> None:
        if self.controller.running:
            self.controller.cancel()

    def edit_generation_settings(self) -> None:
        dlg = GenerationDialog(self.settings.generation, self)
        if dlg.exec():
            self.settings.generation = dlg.prefs()

    # CompareView (called by the controller)
    def side_started(self, side: Side, request: RunRequest) -> None:
        self.run_bar.set_running(True)
        self.states[side].set_content(self.states[side].media or self.media, None)
        self._update_headers()
        self.headers[side].setText(self.headers[side].text() + " &nbsp; <i>running…</i>")
        self._status(f"Model {side.upper()} ({_short(request.model)}) is running …")

    def side_phase(self, side: Side, text: str) -> None:
        model = self.models[side]
        short = _short(model)
        if model:
            text = text.replace(f" {model}", "")   # the model is named once, up front
        self.run_bar.set_phase(f"Model {side.upper()} \u00b7 {short}: {text} …")
        if text.startswith("Loading"):
            self.run_bar.set_busy()

    def side_progress(self, side: Side, n_tokens: int, max_tokens: int) -> None:
        if n_tokens or self.run_bar.progress.maximum() != 0:
            self.run_bar.set_progress(f"Model {side.upper()}", n_tokens, max_tokens)

    def side_finished(self, side: Side, explanation: Explanation) -> None:
        self.settings.add_recent_model(self.models[side])
        if not self.media:
            # The media as the model read them: show them in the other pane while it waits.
            self.media = list(explanation.media)
            other = self.states["b" if side == "a" else "a"]
            if other.explanation is None and not other.media:
                other.set_content(self.media, None)
        self._update_headers()

    def all_finished(self) -> None:
        self.run_bar.set_running(False)
        self.run_bar.set_phase("")
        cmp = self.comparison
        if cmp is not None:
            self._status(f"Done: {cmp.alignment.n_aligned} words of A have a counterpart in "
                         "B. Click a word to compare its maps.")

    def side_failed(self, side: Side, error: BaseException) -> None:
        self.run_bar.set_running(False)
        self.run_bar.set_phase("")
        self._update_headers()
        self._status(f"Model {side.upper()} failed.")
        title = f"Model {side.upper()}: the run failed"
        if isinstance(error, (ModelLoadError, ModelMemoryError)):
            title = f"Cannot load model {side.upper()}"
        elif isinstance(error, MediaError):
            title = "Cannot open the media"
        self._error(title, error)

    def side_cancelled(self, side: Side) -> None:
        self.run_bar.set_running(False)
        self.run_bar.set_phase("")
        self.states[side].set_content(self.states[side].media or self.media, None)
        self._update_headers()
        self._status("Cancelled. Ready.")

    # ------------------------------------------------------------------ export
    def _export_args(self) -> dict:
        a, b, d = self.states["a"], self.states["b"], self.display
        return {"tokens_a": a.selection if a.kind == "answer" else (),
                "tokens_b": b.selection if b.kind == "answer" else (),
                "media_index": a.media_index, "cmap": d.colormap, "opacity": d.opacity,
                "how": d.combine}

    def _can_export(self) -> bool:
        if self.comparison is None:
            self._error("Nothing to export", TamError(
                "There is no comparison yet.", "Run both models or open two explanations."))
            return False
        if self.exports.busy:
            self._status("An export is already running.")
            return False
        return True

    def export_png_dialog(self) -> None:
        if not self._can_export():
            return
        path, _ = QFileDialog.getSaveFileName(
            self, "Export the side-by-side view", str(Path(self.settings.last_dir or ".")
                                                     / "comparison.png"), "PNG (*.png)")
        if path:
            self.export_png(path if path.lower().endswith(".png") else path + ".png")

    def export_mp4_dialog(self) -> None:
        if not self._can_export():
            return
        path, _ = QFileDialog.getSaveFileName(
            self, "Export the side-by-side video", str(Path(self.settings.last_dir or ".")
                                                      / "comparison.mp4"), "MP4 (*.mp4)")
        if path:
            self.export_mp4(path if path.lower().endswith(".mp4") else path + ".mp4")

    def export_png(self, path: str, panel_width: int = 480) -> None:
        """The shown selection and frame as one PNG (A | B | A-B, text maps below)."""
        if not self._can_export():
            return
        args = self._export_args()
        self.exports.start(f"Writing {Path(path).name} …", png_job, self.comparison, path,
                           frame=self.frame_cursor.frame, panel_width=panel_width, **args)

    def export_mp4(self, path: str, panel_width: int = 400, fps: float = 2.0) -> None:
        """A video plays with the shown words; an image steps through A's words."""
        if not self._can_export():
            return
        args = self._export_args()
        self.exports.start(f"Writing {Path(path).name} …", mp4_job,
                           self.comparison, path, frame=self.frame_cursor.frame, fps=fps,
                           panel_width=panel_width, **args)

    def _on_exported(self, path: object) -> None:
        self._status(f"Exported {path}")
        self.exported.emit(path)

    # ------------------------------------------------------------------ small things
    def _status(self, text: str) -> None:
        self.status_label.setText(text)

    def _error(self, title: str, exc: BaseException) -> None:
        self._status(title)
        show_error(self, title, exc)

    def closeEvent(self, ev: QCloseEvent) -> None:  # noqa: N802
        self.frame_cursor.set_playing(False)
        self.controller.shutdown()
        self.exports.cancel()
        QThreadPool.globalInstance().waitForDone(3000)
        super().closeEvent(ev)


class _CloseWithOwner(QObject):
    """Closes the compare window when the main window closes (its runs must stop too)."""

    def __init__(self, window: CompareWindow, owner: QWidget) -> None:
        super().__init__(window)
        self.window = window
        owner.installEventFilter(self)

    def eventFilter(self, obj: QObject, ev: QEvent) -> bool:  # noqa: N802
        if ev.type() == QEvent.Type.Close and self.window.isVisible():
            self.window.close()
        return False


def open_compare_window(main) -> CompareWindow:
    """Open (or raise) the compare window of ``main``, defaulting to its media and prompt."""
    win = getattr(main, "_compare_window", None)
    if isinstance(win, CompareWindow) and win.isVisible():
        win.raise_()
        win.activateWindow()
        return win
    win = CompareWindow(main.settings, media_paths=main.media_paths, media=main.state.media,
                        prompt=main.run_panel.prompt_text(),
                        model_a=main.run_panel.model_name(), cache=main.controller.cache,
                        display=main.state.display, parent=main)
    _CloseWithOwner(win, main)
    main._compare_window = win
    win.show()
    return win
