"""The compare window: model A and model B on the same media and prompt, side by side."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from PySide6.QtCore import QByteArray, Qt, Signal
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QFileDialog, QLabel, QVBoxLayout, QWidget

from tam_desktop.app_context import AppContext
from tam_desktop.app_window import (
    EXPLANATION_FILTER,
    AppWindow,
    media_file_filter,
    remember_save_folder,
    run_error_title,
    run_problem,
    save_folder,
    short_model_name,
)
from tam_desktop.compare.body import CompareBody
from tam_desktop.compare.controller import CompareController
from tam_desktop.compare.exporting import mp4_job, png_job
from tam_desktop.compare.link import SIDES, SelectionLink
from tam_desktop.compare.presets import DEMO_PRESET, default_model_b, use_demo_preset
from tam_desktop.compare.run_bar import CompareRunBar
from tam_desktop.exporting import ExportRunner, export_job
from tam_desktop.models.playback import DisplayOptions, FrameCursor, PlaybackState
from tam_desktop.region_action import RegionAction
from tam_desktop.views.given_answer import ask_given_answer
from tam_desktop.views.pane import ExplanationPane
from tam_desktop.worker import GIVEN_PHASE, RunRequest
from tam_engine.compare.alignment import Side
from tam_engine.compare.comparison import Comparison
from tam_engine.core.errors import TamError
from tam_engine.core.explanation import Explanation
from tam_engine.core.media import MediaItem
from tam_engine.core.tokens import phrase_text


class CompareWindow(AppWindow):
    """Two ``ExplanationPane`` s sharing one ``FrameCursor`` and one ``DisplayOptions``.

    Picking a word in one pane picks its aligned word in the other; the difference view shows
    A's map minus B's on the shared frame. With a ``parent`` window it closes with that one.
    """

    exported = Signal(object)        # path of a finished export
    comparison_changed = Signal()    # both explanations present (or one went away)

    def __init__(self, context: AppContext | None = None, *,
                 media_paths: Sequence[str] = (), media: Sequence[MediaItem] = (),
                 prompt: str = "", model_a: str = "", model_b: str = "",
                 display: DisplayOptions | None = None, parent: QWidget | None = None) -> None:
        super().__init__(context or AppContext(), parent)
        if parent is not None:
            self.setWindowFlag(Qt.WindowType.Window, True)
            self.close_with(parent)   # its runs must stop with the main window
        self.media_paths: list[str] = [str(p) for p in media_paths]
        self.media: list[MediaItem] = list(media)
        self.comparison: Comparison | None = None
        self.frame_cursor = FrameCursor()
        self.display = display.copy() if display is not None else DisplayOptions()
        self.states: dict[Side, PlaybackState] = {
            s: PlaybackState(cursor=self.frame_cursor, display=self.display) for s in SIDES}
        self.panes: dict[Side, ExplanationPane] = {}
        self.headers: dict[Side, QLabel] = {}
        self.models: dict[Side, str] = {"a": "", "b": ""}
        self.link = SelectionLink(self.states["a"], self.states["b"])
        self.controller = CompareController(self.states["a"], self.states["b"], self,
                                            self.context.models, self.context.media)
        self.exports = ExportRunner(self)
        self._run_on_media = False   # a preset runs once its media are read
        self.given_answer = ""   # the last answer given to "Explain this answer…" (session)
        self._build(prompt, model_a, model_b)
        self._connect()
        for st in self.states.values():
            st.set_content(self.media, None)
        self._show_media_name()
        self.setWindowTitle("Compare models — tam-desktop")
        room = self.screen().availableGeometry() if self.screen() is not None else None
        self.resize(min(1500, room.width()) if room else 1500,
                    min(920, room.height()) if room else 920)
        if self.settings.compare_geometry:   # where the user left it last time
            self.restoreGeometry(QByteArray.fromBase64(self.settings.compare_geometry.encode()))
        self.body.fit(self.width())   # sizes that fit: showing must not widen the window
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
        self.run_bar.model_a.set_models(s.recent_models, model_a or s.last_model,
                                        demo_if_empty=True)
        a = self.run_bar.model_a.model_name()
        self.run_bar.model_b.set_models(s.recent_models,
                                        model_b or default_model_b(a, s.recent_models))
        self.run_bar.set_prompt(prompt or s.prompt)
        self.body = CompareBody(self.states, self)
        self.panes, self.headers = self.body.panes, self.body.headers
        self.display_bar = self.body.display_bar
        self.diff_view, self.alignment_label = self.body.diff_view, self.body.alignment_label
        central = QWidget(self)
        col = QVBoxLayout(central)
        col.setContentsMargins(0, 0, 0, 0)
        col.setSpacing(0)
        col.addWidget(self.run_bar)
        col.addWidget(self.display_bar)
        col.addWidget(self.body, 1)
        self.setCentralWidget(central)
        self._build_menus()
        self._update_headers()
        self._update_alignment_label()

    def _build_menus(self) -> None:
        K, act = QKeySequence.StandardKey, self.add_action
        self.act_open_media = act("Choose &Media…", self.open_media_dialog, K.Open)
        self.act_open_a = act("Open Explanation as &A…",
                              lambda: self.open_explanation_dialog("a"))
        self.act_open_b = act("Open Explanation as &B…",
                              lambda: self.open_explanation_dialog("b"))
        self.act_export_png = act("Export Side by Side as &PNG…", self.export_png_dialog,
                                  "Ctrl+E")
        self.act_export_mp4 = act("Export Side by Side as MP&4…", self.export_mp4_dialog,
                                  "Ctrl+Shift+E")
        self.act_close = act("&Close", self.close, K.Close)
        self.act_run = act("&Run A then B", self.run, "Ctrl+R")
        self.act_explain = act("&Explain This Answer with A and B…", self.explain_answer,
                               "Ctrl+Shift+R")
        self.act_cancel = act("&Cancel", self._on_escape, "Esc")
        self.region_action = RegionAction(self, [self.pane_a, self.pane_b], "Drag a box on "
                                          "either side: both models' answer tokens ranked by "
                                          "how much of their map lies inside it (Esc clears)")
        self.act_region = self.region_action.action
        self.act_gen = act("&Generation Settings…", self.edit_generation_settings)
        self.act_demo_preset = act(DEMO_PRESET, self.use_demo_preset,
                                   tip="Model A: the bundled demo model; model B: its 8 x 8 "
                                   "version; run on the media (the sample image if none)")
        self.run_bar.preset_menu.addAction(self.act_demo_preset)
        self.act_prev_frame, self.act_next_frame, self.act_play = \
            self.add_frame_actions(self.frame_cursor)
        self.add_menus({
            "&File": [self.act_open_media, None, self.act_open_a, self.act_open_b, None,
                      self.act_export_png, self.act_export_mp4, None, self.act_close],
            "&Model": [self.act_run, self.act_explain, self.act_cancel, None,
                       self.act_demo_preset, None,
                       self.act_gen],
            "&View": [self.act_region, None, self.act_prev_frame, self.act_next_frame,
                      self.act_play],
        })

    def _connect(self) -> None:
        rb = self.run_bar
        rb.run_requested.connect(self.run)
        rb.explain_requested.connect(self.explain_answer)
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
        self.display.changed.connect(lambda name: self._update_diff()
                                     if name in ("combine", "layer") else None)
        self.exports.finished.connect(self._on_exported)
        self.exports.failed.connect(lambda exc: self.report_error("Cannot export", exc))
        self.exports.cancelled.connect(
            lambda: self.show_status("Export cancelled; nothing was written."))

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
                self.show_status("A and B explain different media: their maps do not compare.")
        self.link.set_comparison(cmp)
        self._update_headers()
        self._update_alignment_label()
        self._update_diff()
        self.comparison_changed.emit()

    def _on_escape(self) -> None:
        """Esc clears a region query first, then cancels a run."""
        if not self.region_action.escape():
            self.cancel_run()

    def _on_media_index(self, other: PlaybackState, index: int) -> None:
        other.set_media_index(index)
        self._update_diff()

    def show_explanations(self, a: Explanation | None, b: Explanation | None) -> None:
        """Show finished explanations (no model needed); None leaves that side as it is."""
        for side, ex in zip(SIDES, (a, b)):
            if ex is not None:
                self.models[side] = str(ex.meta.get("model") or "")
                self.states[side].set_content(ex.media, ex)

    def _update_headers(self, running: Side | None = None) -> None:
        self.body.show_headers(self.models, running)

    def _update_alignment_label(self) -> None:
        sel = {side: st.selection if st.kind == "answer" else ()
               for side, st in self.states.items()}
        self.alignment_label.show_alignment(self.comparison, sel)

    def _update_diff(self) -> None:
        a = self.states["a"]
        ta, tb = self.link.counterpart("a"), self.link.counterpart("b")
        unmatched = self.link.unmatched
        if unmatched is not None:
            # A word without a counterpart: no difference, rather than one against whatever
            # the other pane showed before.
            src = self.states[unmatched]
            ex = src.explanation
            assert ex is not None
            words = phrase_text(ex.answer.texts, src.selection)
            other = "B" if unmatched == "a" else "A"
            self.diff_view.show_no_counterpart(f"\u201c{words}\u201d ({unmatched.upper()}) "
                                               f"has no counterpart in {other}")
            self.show_status(f"\u201c{words}\u201d has no counterpart in {other}: "
                             "no difference to show.")
            return
        try:
            self.diff_view.show_difference(self.comparison, ta, tb, a.media_index,
                                           self.frame_cursor.frame, self.display.combine,
                                           self.link.aligned, self.display.layer)
        except (TamError, KeyError, ValueError, IndexError) as exc:
            # e.g. B has no grid for the media item A shows: say so instead of a stale map.
            self.diff_view.show_difference(None, (), (), 0, 0, "mean", False)
            why = exc.message if isinstance(exc, TamError) else str(exc)
            self.show_status(f"No difference map here: {why}")

    # ------------------------------------------------------------------ media and files
    def _show_media_name(self) -> None:
        names = [Path(p).name for p in self.media_paths] or [m.name for m in self.media]
        self.run_bar.media_label.setText(", ".join(names) if names else "no media")

    def open_media_dialog(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Media for both models",
                                                self.settings.last_dir, media_file_filter())
        if paths:
            self.open_media(paths)

    def open_media(self, paths: Sequence[str]) -> None:
        paths = [str(p) for p in paths]
        self.read_media("compare-media", paths, lambda media: self._on_media(paths, media))

    def _on_media(self, paths: list[str], media: list[MediaItem]) -> None:
        new = paths != self.media_paths
        self.media_paths, self.media = paths, media
        for side, st in self.states.items():
            # New media make both explanations stale; the frames of the media already chosen
            # (read after the window opened) only fill panes that show nothing yet.
            if new or (st.explanation is None and not self.controller.runs[side].running):
                st.set_content(media, None)
        self._show_media_name()
        self.run_bar.follow_media(any(m.kind == "video" for m in media))
        self.show_status("Media chosen. Run A then B (Ctrl+R).")
        if self._run_on_media:
            self._run_on_media = False
            self.run()

    def open_explanation_dialog(self, side: Side) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, f"Open an explanation as {side.upper()}", self.settings.last_dir,
            EXPLANATION_FILTER)
        if path:
            self.open_explanation(side, path)

    def open_explanation(self, side: Side, path: str) -> None:
        self.read_explanation(f"compare-open-{side}", path,
                              lambda ex: self._on_explanation(side, ex))

    def _on_explanation(self, side: Side, ex: Explanation) -> None:
        self.show_explanations(ex if side == "a" else None, ex if side == "b" else None)
        model = short_model_name(str(ex.meta.get("model") or "a saved explanation"))
        self.show_status(f"{side.upper()}: {ex.n_answer} tokens from {model}")

    # ------------------------------------------------------------------ running
    def run(self) -> None:
        self._run(None)

    def _run(self, answer: str | None) -> None:
        """Run A then B; with ``answer``, both explain that given answer (teacher forcing), so
        their words (and, with one tokenizer, their tokens) correspond one to one."""
        if self.controller.running:
            return
        rb = self.run_bar
        models = [rb.model_a.model_name(), rb.model_b.model_name()]
        prompt = rb.prompt_text()
        problem = run_problem(bool(self.media_paths), models, prompt)
        if problem is not None:
            self.report_error(*problem)
            return
        paths, gen = tuple(self.media_paths), self.settings.generation
        media = self.decoded_media(paths)
        self.models = {"a": models[0], "b": models[1]}
        self.controller.start(RunRequest(models[0], paths, prompt, gen, media, answer=answer),
                              RunRequest(models[1], paths, prompt, gen, media, answer=answer))

    def explain_answer(self) -> None:
        """"Explain this answer…" in compare mode: both models explain the answer given."""
        if self.controller.running:
            return
        text = ask_given_answer(self, self.given_answer, what="model A and model B")
        if text is not None:
            self.given_answer = text
            self._run(text)

    def cancel_run(self) -> None:
        if self.controller.running:
            self.controller.cancel()

    def use_demo_preset(self, on_sample: bool = False) -> None:
        """The preset "Compare the two demo models" (see :func:`presets.use_demo_preset`)."""
        use_demo_preset(self, on_sample)

    def run_when_media_read(self, paths: list[str]) -> None:
        """Choose ``paths`` as the media and run A then B once they are read."""
        self._run_on_media = True
        self.open_media(paths)

    # CompareView (called by the controller)
    def side_started(self, side: Side, request: RunRequest) -> None:
        self.run_bar.set_running(True)
        self.states[side].set_content(self.states[side].media or self.media, None)
        self._update_headers(running=side)
        model = short_model_name(request.model)
        self.show_status(f"Model {side.upper()} ({model}) is running …")

    def side_phase(self, side: Side, text: str) -> None:
        model = self.models[side]
        short = short_model_name(model)
        if model:
            text = text.replace(f" {model}", "")   # the model is named once, up front
        self.run_bar.set_phase(f"Model {side.upper()} \u00b7 {short}: {text} …")
        if text.startswith("Loading") or text == GIVEN_PHASE:  # no tokens to count
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
            self.show_status(f"Done: {cmp.alignment.n_aligned} words of A have a counterpart "
                             "in B. Click a word to compare its maps.")

    def side_failed(self, side: Side, error: BaseException) -> None:
        self.run_bar.set_running(False)
        self.run_bar.set_phase("")
        self._update_headers()
        self.report_error(run_error_title(error, side), error)

    def side_cancelled(self, side: Side) -> None:
        self.run_bar.set_running(False)
        self.run_bar.set_phase("")
        self.states[side].set_content(self.states[side].media or self.media, None)
        self._update_headers()
        self.show_status("Cancelled. Ready.")

    # ------------------------------------------------------------------ export
    def _export_args(self) -> dict:
        a, d = self.states["a"], self.display
        # A word without a counterpart is exported without one (B's panel shows no map).
        return {"tokens_a": self.link.counterpart("a"), "tokens_b": self.link.counterpart("b"),
                "media_index": a.media_index, "cmap": d.colormap, "opacity": d.opacity,
                "how": d.combine, "layer": d.layer}

    def _can_export(self) -> bool:
        if self.comparison is None:
            self.report_error("Nothing to export", TamError(
                "There is no comparison yet.", "Run both models or open two explanations."))
            return False
        if self.exports.busy:
            self.show_status("An export is already running.")
            return False
        return True

    def export_png_dialog(self) -> None:
        self._export_dialog("Export the side-by-side view", ".png", self.export_png)

    def export_mp4_dialog(self) -> None:
        self._export_dialog("Export the side-by-side video", ".mp4", self.export_mp4)

    def _export_dialog(self, title: str, suffix: str, export: Callable[[str], None]) -> None:
        if not self._can_export():
            return
        start = save_folder(self.settings, pictures=True) / f"comparison{suffix}"
        path, _ = QFileDialog.getSaveFileName(self, title, str(start),
                                              f"{suffix[1:].upper()} (*{suffix})")
        if path:
            remember_save_folder(self.settings, path)
            export(path if path.lower().endswith(suffix) else path + suffix)

    def export_png(self, path: str, panel_width: int = 480) -> None:
        """The shown selection and frame as one PNG (A | B | A-B, text maps below)."""
        if not self._can_export():
            return
        self.exports.start(f"Writing {Path(path).name} …", export_job, png_job,
                           self.comparison, path, frame=self.frame_cursor.frame,
                           panel_width=panel_width, quick=True, **self._export_args())

    def export_mp4(self, path: str, panel_width: int = 400, fps: float = 2.0) -> None:
        """A video plays with the shown words; an image steps through A's words."""
        if not self._can_export():
            return
        self.exports.start(f"Writing {Path(path).name} …", export_job, mp4_job,
                           self.comparison, path, frame=self.frame_cursor.frame, fps=fps,
                           panel_width=panel_width, **self._export_args())

    def _on_exported(self, path: object) -> None:
        self.show_status(f"Exported {path}")
        self.exported.emit(path)

    # ------------------------------------------------------------------ closing
    def stop_work(self) -> None:
        self.frame_cursor.set_playing(False)
        self.controller.shutdown()
        self.exports.cancel()

    def remember(self) -> None:
        self.settings.compare_geometry = self.saveGeometry().toBase64().toStdString()
