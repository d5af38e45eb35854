"""The main window: menus, the run panel, one ``ExplanationPane``, settings and errors."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from PySide6.QtCore import QByteArray, QTimer
from PySide6.QtGui import QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import QFileDialog, QVBoxLayout, QWidget

from tam_desktop.app_context import AppContext
from tam_desktop.app_window import (
    EXPLANATION_FILTER,
    AppWindow,
    media_file_filter,
    run_error_title,
    run_problem,
    short_model_name,
)
from tam_desktop.compare.window import CompareWindow
from tam_desktop.controller import RunController
from tam_desktop.dialogs import show_about, show_settings_problems, show_shortcuts
from tam_desktop.export_menu import ExportMenu
from tam_desktop.gallery.host import GalleryHost
from tam_desktop.model_setup import ModelSetupDialog, open_model_setup
from tam_desktop.models.playback import DisplayOptions, PlaybackState
from tam_desktop.models.text import timings_text
from tam_desktop.recent_menu import RecentMenu
from tam_desktop.region_action import RegionAction
from tam_desktop.samples import SampleActions, is_bundled
from tam_desktop.saving import ExplanationSaver
from tam_desktop.settings import AppSettings, load_settings
from tam_desktop.views.given_answer import GIVEN_ANSWER_NAME, ask_given_answer, is_given
from tam_desktop.views.pane import ExplanationPane
from tam_desktop.views.run_panel import RunPanel
from tam_desktop.worker import GIVEN_PHASE, RunRequest, warm_up_engine
from tam_engine.core.explanation import Explanation
from tam_engine.core.media import MediaItem
from tam_engine.core.placement import LAYERS
from tam_engine.core.tokens import phrase_label, phrase_text, token_label
from tam_engine.inference.model_placement import ModelPlacement
from tam_engine.render.scale import MAP_SCALES


class MainWindow(AppWindow):
    """The app's window. ``save_on_close=False`` (the self-test, benchmarks, screenshots) keeps
    nothing of the session and, unless ``ask_unsaved`` says otherwise, never asks to save."""

    def __init__(self, settings: AppSettings | None = None, *,
                 settings_path: Path | None = None, save_on_close: bool = True,
                 ask_unsaved: bool | None = None) -> None:
        s = settings if settings is not None else load_settings(settings_path)
        super().__init__(AppContext(s, settings_path))
        self._save_on_close = save_on_close
        self.saver = ExplanationSaver(self, self, save_on_close if ask_unsaved is None
                                      else ask_unsaved)
        self._auto_run = False   # the running run was started by opening a sample
        display = DisplayOptions(colormap=s.colormap, opacity=s.opacity,
                                 overlay_visible=s.overlay_visible, combine=s.combine,
                                 tile_borders=s.tile_borders)
        if s.layer in LAYERS:   # a value from a newer or damaged settings file is ignored
            display.layer = s.layer
        if s.scale in MAP_SCALES:
            display.scale = s.scale
        self.state = PlaybackState(display=display)
        self.pane = ExplanationPane(self.state, parent=self)
        self.run_panel = RunPanel(self)
        self.controller = RunController(self.state, self, self.context.models,
                                        self.context.media)
        self.media_paths: list[str] = []
        self.current_file = ""
        self.compare_window: CompareWindow | None = None
        # Model > Model Setup's choice per model (this session); absent: one device.
        self.placements: dict[str, ModelPlacement] = {}
        self.given_answer = ""   # the last answer given to "Explain this answer…" (session)

        central = QWidget(self)
        col = QVBoxLayout(central)
        col.setContentsMargins(0, 0, 0, 0)
        col.setSpacing(0)
        col.addWidget(self.run_panel)
        col.addWidget(self.pane, 1)
        self.setCentralWidget(central)
        self.statusBar().addPermanentWidget(self.run_panel.status_widget)
        self.gallery = GalleryHost(self, self.open_explanation, self.tasks.submit,
                                   self.report_error, self.show_status)  # File > Open Batch
        self.setAcceptDrops(True)
        self.setWindowTitle("tam-desktop")
        self._build_actions()
        self.export = ExportMenu(self, self)  # File > Export and the exports it runs
        self._build_menus()

        self.run_panel.set_models(s.recent_models, s.last_model)
        self.run_panel.set_prompt(s.prompt)
        self.run_panel.run_requested.connect(self.run)
        self.run_panel.explain_requested.connect(self.explain_answer)
        self.run_panel.cancel_requested.connect(self.cancel_run)
        self.run_panel.settings_requested.connect(self.edit_generation_settings)
        self.state.content_changed.connect(self._on_content)
        self.state.token_changed.connect(self._on_token)
        self.state.selection_changed.connect(self._on_token)
        self.resize(1400, 900)
        if s.geometry:
            self.restoreGeometry(QByteArray.fromBase64(s.geometry.encode()))
        if s.splitter_state:
            self.pane.h_split.restoreState(QByteArray.fromBase64(s.splitter_state.encode()))
        self._on_content()
        if s.problems:  # once, after the window shows; the next save writes valid values
            QTimer.singleShot(0, self._report_settings_problems)

    def _report_settings_problems(self) -> None:
        problems, self.settings.problems = self.settings.problems, []
        if problems:
            show_settings_problems(self, problems)

    # ------------------------------------------------------------------ building
    def _build_actions(self) -> None:
        st, act = self.state, self.add_action
        K = QKeySequence.StandardKey
        self.act_open = act("&Open Image or Video…", self.open_media_dialog, K.Open)
        self.act_open_expl = act("Open &Explanation…", self.open_explanation_dialog,
                                 "Ctrl+Shift+O")
        self.act_open_batch = act("Open &Batch…", lambda: self.gallery.open_dialog(
            self.settings.last_dir), "Ctrl+Shift+B")
        self.act_save_expl = act("&Save Explanation…", self.save_explanation_dialog, K.Save)
        self.act_quit = act("&Quit", self.close, K.Quit)
        self.act_run = act("&Run", self.run, "Ctrl+R")
        self.act_explain = act("&Explain This Answer…", self.explain_answer, "Ctrl+Shift+R")
        # Escape first goes back to the gallery an item was opened from, else cancels a run.
        self.act_cancel = act("&Cancel Run", self._on_escape, "Esc")
        self.act_gen = act("&Generation Settings…", self.edit_generation_settings)
        self.act_choose_model = act("Choose Model &Folder…", self.run_panel.browse_model_folder)
        self.act_model_setup = act("Model &Setup: Memory, Placement, Download…",
                                   self.open_model_setup)
        self.act_compare = act("Co&mpare Two Models…", self.open_compare, "Ctrl+Shift+M")
        self.act_prev_token = act("Previous Token", lambda: st.step_token(-1), "Left")
        self.act_next_token = act("Next Token", lambda: st.step_token(1), "Right")
        self.act_first_token = act("First Token", lambda: st.set_token(0), "Home")
        self.act_last_token = act("Last Token", lambda: st.set_token(st.n_tokens() - 1), "End")
        self.act_prev_frame, self.act_next_frame, self.act_play = \
            self.add_frame_actions(st.cursor)
        self.act_overlay = act("Show &Overlay", self._toggle_overlay, "O")
        self.act_overlay.setCheckable(True)
        self.act_overlay.setChecked(st.display.overlay_visible)
        st.display.changed.connect(
            lambda name: self.act_overlay.setChecked(st.display.overlay_visible))
        self.region_action = RegionAction(self, [self.pane], "Drag a box on the media: the "
                                          "answer tokens ranked by how much of their map "
                                          "lies inside it (Esc clears)")
        self.act_region = self.region_action.action
        self.act_shortcuts = act("&Keyboard and Mouse", lambda: show_shortcuts(self),
                                 K.HelpContents)
        self.act_about = act("&About tam-desktop", lambda: show_about(self))
        self.samples = SampleActions(self)

    def _build_menus(self) -> None:
        self.recent_menu = RecentMenu(lambda: self.settings, self.open_paths, self)
        self.add_menus({
            "&File": [self.act_open, self.recent_menu, None, self.act_open_expl,
                      self.act_open_batch,
                      self.act_save_expl, self.export.menu, None, self.act_quit],
            "&Model": [self.act_run, self.act_explain, self.act_cancel, None, self.act_compare,
                       None,
                       self.act_choose_model, self.act_model_setup, self.act_gen],
            "&View": [self.act_overlay, self.act_region, None, self.act_prev_token, self.act_next_token,
                      self.act_first_token, self.act_last_token, None, self.act_prev_frame,
                      self.act_next_frame, self.act_play],
            "&Help": [*self.samples.actions, None, self.act_shortcuts, self.act_about],
        })

    # ------------------------------------------------------------------ opening
    def open_media_dialog(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Open images or a video",
                                                self.settings.last_dir, media_file_filter())
        if paths:
            self.open_paths(paths)

    def open_paths(self, paths: Sequence[str], *, run: bool = False) -> None:
        """Open media files (and Run when ``run``), or one explanation file; reading happens
        off the UI thread. An unsaved explanation is saved or discarded first (the user says)."""
        paths = [str(p) for p in paths]
        if paths:
            self.settle_unsaved("opening other files", lambda: self.open_now(paths, run))

    def open_now(self, paths: list[str], run: bool = False) -> None:
        """:meth:`open_paths` without asking first (the caller settled an unsaved one)."""
        if len(paths) == 1 and paths[0].endswith(".npz"):
            self._open_explanation_now(paths[0])
            return
        self.cancel_run()
        self.read_media("content", paths, lambda media: self._on_media_read(paths, media, run))

    def _on_media_read(self, paths: list[str], media: list[MediaItem], run: bool = False
                       ) -> None:
        self.media_paths = paths
        self.current_file = paths[0]
        self.unsaved = False
        self.settings.add_recent_media([str(Path(p).resolve()) for p in paths])
        if not is_bundled(paths[0]):   # the Open dialog never starts in the package's files
            self.settings.last_dir = str(Path(paths[0]).resolve().parent)
        self.state.set_content(media, None)
        self.run_panel.follow_media(any(m.kind == "video" for m in media))
        self.pane.media_view.graphics.setFocus()
        names = ", ".join(m.name for m in media)
        self.show_status(f"Opened {names}. Choose a model and a prompt, then Run (Ctrl+R).")
        if run:
            self._start_run(auto=True)

    @property
    def first_launch(self) -> bool:
        """Nothing to restore from last time (no recent file): the app starts on the demo."""
        return not self.settings.recent_files

    def open_sample(self, kind: str) -> None:
        """The bundled sample ("image" or "video"), explained by the demo model at once."""
        self.samples.open_sample(kind)

    def open_explanation_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Open an explanation", self.settings.last_dir, EXPLANATION_FILTER)
        if path:
            self.open_explanation(path)

    def open_explanation(self, path: str) -> None:
        self.settle_unsaved("opening another explanation",
                            lambda: self._open_explanation_now(path))

    def _open_explanation_now(self, path: str) -> None:
        self.cancel_run()
        self.read_explanation("content", path, lambda ex: self._on_explanation_read(path, ex))

    def _on_explanation_read(self, path: str, expl: Explanation) -> None:
        self.settings.add_recent_file(str(Path(path).resolve()))
        self.settings.last_dir = str(Path(path).resolve().parent)
        self.unsaved = False
        self.current_file = path
        self.media_paths = [m.path for m in expl.media if m.path and Path(m.path).is_file()]
        self.show_explanation(expl)
        self.pane.media_view.graphics.setFocus()
        self.show_status(f"Opened {Path(path).name}: {self._describe(expl)}")

    def show_explanation(self, expl: Explanation) -> None:
        """Show a finished explanation (no model needed)."""
        self.state.set_content(expl.media, expl)
        prompt, model = expl.meta.get("prompt"), expl.meta.get("model")
        if isinstance(prompt, str) and prompt:
            self.run_panel.set_prompt(prompt)
        if isinstance(model, str) and model and not self.controller.running:
            self.run_panel.set_model(model)  # ready to run it again

    def save_explanation_dialog(self) -> None:
        self.saver.save_dialog()

    def save_explanation(self, path: str) -> None:
        self.saver.save(path)

    def settle_unsaved(self, doing: str, then: Callable[[], object]) -> None:
        """``then()`` once an unsaved explanation is saved or discarded (the user says)."""
        self.saver.settle(doing, then)

    @property
    def unsaved(self) -> bool:
        return self.saver.unsaved

    @unsaved.setter
    def unsaved(self, value: bool) -> None:
        self.saver.unsaved = value

    # ------------------------------------------------------------------ drag and drop
    def dragEnterEvent(self, ev: QDragEnterEvent) -> None:  # noqa: N802
        if ev.mimeData().hasUrls() and any(u.isLocalFile() for u in ev.mimeData().urls()):
            ev.acceptProposedAction()

    def dropEvent(self, ev: QDropEvent) -> None:  # noqa: N802
        paths = [u.toLocalFile() for u in ev.mimeData().urls() if u.isLocalFile()]
        if paths:
            ev.acceptProposedAction()
            self.open_paths(paths)

    # ------------------------------------------------------------------ running
    def run(self) -> None:
        self._start_run(auto=False)

    def explain_answer(self) -> None:
        """"Explain this answer…": the answer the user gives, explained by teacher forcing
        with the model, media and prompt of the run panel."""
        if self.controller.running or self._run_problem():
            return
        text = ask_given_answer(self, self.given_answer)
        if text is not None:
            self.given_answer = text
            self._start_run(auto=False, answer=text)

    def _run_problem(self) -> bool:
        """Reports why nothing can run now (no media, model or prompt); True when it did."""
        problem = run_problem(bool(self.media_paths), [self.run_panel.model_name()],
                              self.run_panel.prompt_text())
        if problem is not None:
            self.report_error(*problem)
        return problem is not None

    def _start_run(self, auto: bool, answer: str | None = None) -> None:
        """``auto``: a sample's demo run, whose result is not work to be saved; ``answer``: a
        given answer to explain instead of generating one."""
        if self.controller.running or self._run_problem():
            return
        model = self.run_panel.model_name()
        prompt = self.run_panel.prompt_text()
        self.settings.prompt = prompt
        self.settings.last_model = model
        request = RunRequest(model=model, media_paths=tuple(self.media_paths), prompt=prompt,
                             generation=self.settings.generation,
                             media=self.decoded_media(self.media_paths),
                             placement=self.placements.get(model), answer=answer)
        self.tasks.forget("content")
        self._auto_run = auto
        self.controller.start(request)

    def _on_escape(self) -> None:
        if not self.region_action.escape() and not self.gallery.back():
            self.cancel_run()

    def cancel_run(self) -> None:
        self.controller.cancel()

    def open_model_setup(self) -> ModelSetupDialog | None:
        """Model > Model Setup for the model in the run panel (see model_setup)."""
        return open_model_setup(self, self.run_panel.model_name(), self.placements)

    def open_compare(self) -> None:
        """Compare mode: model A and model B on this media and prompt (its own window, which
        closes with this one)."""
        win = self.compare_window
        if win is not None and win.isVisible():
            win.raise_()
            win.activateWindow()
            return
        self.compare_window = CompareWindow(
            self.context, media_paths=self.media_paths, media=self.state.media,
            prompt=self.run_panel.prompt_text(), model_a=self.run_panel.model_name(),
            display=self.state.display, parent=self)
        self.compare_window.show()

    def warm_up_engine(self) -> None:
        """Import the model stack in the background (see :func:`worker.warm_up_engine`)."""
        self.tasks.submit("warm-up", warm_up_engine, on_result=lambda _: None,
                          on_error=lambda _exc: None)  # a real run reports any problem

    def edit_generation_settings(self) -> bool:
        changed = super().edit_generation_settings()
        if changed:
            self._persist()
        return changed

    # RunView (called by the controller)
    def run_started(self, request: RunRequest) -> None:
        self.run_panel.set_running(True)
        self.state.set_content(self.state.media, None)
        given = "" if request.answer is None else f" on a {GIVEN_ANSWER_NAME}"
        self.show_status(f"Running {short_model_name(request.model)}{given} …")

    def run_phase(self, text: str) -> None:
        model = self.settings.last_model
        if model:
            text = text.replace(model, short_model_name(model))   # a folder's name is enough
        self.run_panel.set_phase(text + " …")
        if text.startswith("Loading") or text == GIVEN_PHASE:  # no tokens to count
            self.run_panel.set_busy()

    def run_progress(self, n_tokens: int, max_tokens: int) -> None:
        if n_tokens or self.run_panel.progress.maximum() != 0:
            self.run_panel.set_progress(n_tokens, max_tokens)

    def run_finished(self, explanation: Explanation) -> None:
        self.run_panel.set_running(False)
        self.run_panel.set_phase("")
        model = self.settings.last_model
        self.settings.add_recent_model(model)
        self.run_panel.set_models(self.settings.recent_models, model)
        self.unsaved = not self._auto_run
        self.show_status(f"Done: {self._describe(explanation)}")
        self.pane.media_view.graphics.setFocus()  # arrows now walk the tokens
        self._persist()

    def run_failed(self, error: BaseException) -> None:
        self.run_panel.set_running(False)
        self.run_panel.set_phase("")
        self.report_error(run_error_title(error), error)

    def run_cancelled(self) -> None:
        self.run_panel.set_running(False)
        self.run_panel.set_phase("")
        self.state.set_content(self.state.media, None)
        self.show_status("Cancelled. Ready.")

    # ------------------------------------------------------------------ small things
    def _toggle_overlay(self) -> None:
        d = self.state.display
        d.overlay_visible = not d.overlay_visible

    def _describe(self, expl: Explanation) -> str:
        model = expl.meta.get("model", "")
        bits = [f"{expl.n_answer} tokens" + (f" of a {GIVEN_ANSWER_NAME}"
                                             if is_given(expl) else "")]
        if model:
            bits.append(f"model {short_model_name(str(model))}")
        times = timings_text(expl.meta.get("timings") or {})
        return ", ".join(bits) + (f"; {times}" if times else "")

    def _on_content(self) -> None:
        m = self.state.current_media
        name = Path(self.current_file).name if self.current_file else (m.name if m else "")
        if is_given(self.state.explanation):
            name = f"{name} — {GIVEN_ANSWER_NAME}" if name else GIVEN_ANSWER_NAME
        self.setWindowTitle(f"{name} — tam-desktop" if name else "tam-desktop")
        has = self.state.explanation is not None
        self.act_save_expl.setEnabled(has)
        self.export.refresh()
        self.run_panel.set_has_media(bool(self.media_paths))

    def _on_token(self, *_args: object) -> None:
        """The status bar names what the media view shows: one token, or the phrase."""
        st, ex = self.state, self.state.explanation
        if ex is None or not st.selection:
            return
        tm = ex.tokens(st.kind)
        if len(st.selection) > 1:
            self.show_status(f"{phrase_label(st.selection, st.kind)} / {len(tm)}: "
                             f"\u201c{phrase_text(tm.texts, st.selection)}\u201d "
                             f"({st.display.combine} of {len(st.selection)} maps)")
            return
        k = st.token
        self.show_status(f"{token_label(k, len(tm), st.kind)}: {tm.texts[k]!r}")

    def _persist(self, background: bool = True) -> None:
        """Write the settings; in the background (a copy) unless the window is closing."""
        s, d = self.settings, self.state.display
        s.colormap, s.opacity = d.colormap, d.opacity
        s.overlay_visible, s.combine, s.scale = d.overlay_visible, d.combine, d.scale
        s.layer, s.tile_borders = d.layer, d.tile_borders
        s.geometry = self.saveGeometry().toBase64().toStdString()
        s.splitter_state = self.pane.h_split.saveState().toBase64().toStdString()
        prompt = self.run_panel.prompt_text()
        if prompt:
            s.prompt = prompt
        self.context.save_settings(lambda exc: self.show_status(f"Settings not saved: {exc}"),
                                   background=background)

    def closeEvent(self, ev: QCloseEvent) -> None:  # noqa: N802
        if self.saver.needs_asking():
            ev.ignore()   # closes again once saved or discarded (after this close has ended)
            self.settle_unsaved("quitting", lambda: QTimer.singleShot(0, self.close))
            return
        super().closeEvent(ev)

    def stop_work(self) -> None:
        self.state.cursor.set_playing(False)
        self.controller.shutdown()
        self.export.runner.cancel()

    def remember(self) -> None:
        if self._save_on_close:
            self._persist(background=False)


def schedule_open(window: MainWindow, paths: Sequence[str]) -> None:
    """Open command-line paths once the event loop runs (the window shows first); with none
    on the first launch, the sample image explained by the demo model."""
    if paths:
        QTimer.singleShot(0, lambda: window.open_paths(list(paths)))
    elif window.first_launch:
        QTimer.singleShot(0, lambda: window.open_sample("image"))

