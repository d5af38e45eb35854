"""The first ten minutes: the first launch explains the sample, Help opens the samples, the two
demo models compare offline, nothing unsaved is lost, the prompt follows the media, the run row
stays still, one recent entry per open (offscreen, pytest-qt)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtWidgets import QMessageBox

from tam_desktop.main_window import MainWindow, schedule_open
from tam_desktop.views.run_panel import demo_model_b_dir, demo_model_dir
from tam_engine.core.resources import sample_image_path, sample_video_path
from tam_engine.inference.settings import IMAGE_PROMPT, VIDEO_PROMPT
from tam_engine.testing.synthetic import synthetic_explanation


def open_and_wait(qtbot, window, paths):
    window.open_paths([str(p) for p in paths])
    qtbot.waitUntil(lambda: window.media_paths == [str(p) for p in paths], timeout=20_000)


def menu_texts(window, title):
    menu = next(a.menu() for a in window.menuBar().actions() if a.text() == title)
    return [a.text().replace("&", "") for a in menu.actions() if not a.isSeparator()]


@pytest.fixture
def recorded_runs(monkeypatch):
    """Record run requests of main windows instead of running a model."""
    from tam_desktop.controller import RunController

    requests = []
    monkeypatch.setattr(RunController, "start", lambda self, request: requests.append(request))
    return requests


def test_first_launch_explains_the_sample_with_the_demo_model(qtbot, main_window):
    w = main_window
    assert w.first_launch and w.state.explanation is None
    schedule_open(w, [])
    # Seconds on a quiet machine; minutes when the CPUs are shared (importing torch).
    qtbot.waitUntil(lambda: w.state.explanation is not None, timeout=400_000)
    ex = w.state.explanation
    assert w.media_paths == [str(sample_image_path())]
    assert ex.meta["model"] == demo_model_dir() == w.run_panel.model_name()
    assert ex.meta["prompt"] == IMAGE_PROMPT and ex.n_answer > 3
    assert w.pane.media_view.heat_image() is not None        # a map is on screen
    assert "Done" in w.status_label.text()
    assert not w.unsaved   # the demo's own run is not work the user could lose
    # The next launch has something to restore from: it does not start the demo again.
    assert not MainWindow(w.settings, save_on_close=False).first_launch


def test_command_line_media_skip_the_demo(qtbot, main_window, sample_media, recorded_runs):
    schedule_open(main_window, [str(sample_media["image"])])
    qtbot.waitUntil(lambda: bool(main_window.media_paths), timeout=20_000)
    assert main_window.media_paths == [str(sample_media["image"])] and not recorded_runs


def test_help_menu_opens_the_samples_with_the_demo_model(qtbot, main_window, recorded_runs):
    w = main_window
    assert menu_texts(w, "&Help")[:3] == ["Open Sample Image", "Open Sample Video",
                                          "Open Sample Comparison"]
    w.run_panel.model.setCurrentText("some/other-model")
    w.samples.act_video.trigger()
    qtbot.waitUntil(lambda: len(recorded_runs) == 1, timeout=20_000)
    req = recorded_runs[0]
    assert req.media_paths == (str(sample_video_path()),) and req.model == demo_model_dir()
    assert req.prompt == VIDEO_PROMPT and w.state.current_media.kind == "video"
    w.samples.act_image.trigger()
    qtbot.waitUntil(lambda: len(recorded_runs) == 2, timeout=20_000)
    assert recorded_runs[1].media_paths == (str(sample_image_path()),)
    assert recorded_runs[1].prompt == IMAGE_PROMPT


def test_sample_comparison_runs_the_two_demo_models(qtbot, main_window, monkeypatch):
    from tam_desktop.compare.controller import CompareController

    started = []
    monkeypatch.setattr(CompareController, "start", lambda self, a, b: started.append((a, b)))
    w = main_window
    w.samples.act_compare.trigger()
    cw = w.compare_window
    assert cw is not None and cw.isVisible()
    qtbot.waitUntil(lambda: bool(started), timeout=20_000)
    a, b = started[0]
    assert (a.model, b.model) == (demo_model_dir(), demo_model_b_dir())
    assert a.media_paths == b.media_paths == (str(sample_image_path()),)
    assert a.prompt == IMAGE_PROMPT
    texts = [act.text() for act in cw.run_bar.preset_menu.actions()]
    assert texts == ["Compare the two demo models"]
    cw.close()


def test_compare_opens_on_the_two_demo_models_without_a_download(qtbot, main_window,
                                                                 sample_media, monkeypatch):
    from tam_desktop.compare.controller import CompareController

    started = []
    monkeypatch.setattr(CompareController, "start", lambda self, a, b: started.append((a, b)))
    open_and_wait(qtbot, main_window, [sample_media["image"]])
    main_window.open_compare()          # Model > Compare Two Models, on a fresh installation
    cw = main_window.compare_window
    assert cw.run_bar.model_a.model_name() == demo_model_dir()
    assert cw.run_bar.model_b.model_name() == demo_model_b_dir()
    cw.run_bar.run_button.click()       # works on first try
    assert [(a.model, b.model) for a, b in started] == [(demo_model_dir(), demo_model_b_dir())]
    assert started[0][0].media_paths == (str(sample_media["image"]),)
    # The preset from the Presets button, with media chosen: runs on those media.
    started.clear()
    cw.run_bar.model_b.setCurrentText("some/model")
    cw.act_demo_preset.trigger()
    assert started[0][1].model == demo_model_b_dir()
    assert started[0][0].media_paths == (str(sample_media["image"]),)
    cw.close()


# ---------------------------------------------------------------------- nothing lost
def finished_run(window):
    """As the controller ends a run the user started: its explanation shown and unsaved."""
    window.saver.ask = True   # as in the app (the fixture's window never asks)
    ex = synthetic_explanation("image")
    window.state.set_content(ex.media, ex)
    window.run_finished(ex)
    assert window.unsaved
    return ex


@pytest.fixture
def answer_box(monkeypatch):
    """``answer_box.button = QMessageBox.StandardButton.X``; ``answer_box.asked`` the texts."""
    class Answer:
        button = QMessageBox.StandardButton.Cancel
        asked: list[str] = []

    def fake_exec(box):
        Answer.asked.append(box.text() + " " + box.informativeText())
        return Answer.button.value

    Answer.asked = []
    monkeypatch.setattr(QMessageBox, "exec", fake_exec)
    return Answer


def test_opening_media_over_an_unsaved_run_asks_cancel_keeps_it(qtbot, main_window,
                                                                sample_media, answer_box):
    ex = finished_run(main_window)
    answer_box.button = QMessageBox.StandardButton.Cancel
    main_window.open_paths([str(sample_media["video"])])
    qtbot.wait(300)
    assert len(answer_box.asked) == 1 and "not been saved" in answer_box.asked[0]
    assert main_window.state.explanation is ex and main_window.unsaved
    assert main_window.media_paths != [str(sample_media["video"])]
    main_window.saver.ask = False   # the test's end closes the window without a box


def test_discard_opens_and_save_writes_first(qtbot, main_window, sample_media, answer_box,
                                            tmp_path):
    finished_run(main_window)
    answer_box.button = QMessageBox.StandardButton.Discard
    open_and_wait(qtbot, main_window, [sample_media["image"]])
    assert main_window.state.explanation is None and not main_window.unsaved
    # Save: the save dialog, the file written, then the new media open.
    ex = finished_run(main_window)
    answer_box.button = QMessageBox.StandardButton.Save
    target = tmp_path / "mine.tam.npz"
    main_window.saver.ask_path = lambda start: str(target)
    open_and_wait(qtbot, main_window, [sample_media["video"]])
    assert target.is_file() and not main_window.unsaved
    assert len(answer_box.asked) == 2
    from tam_engine.core.explanation import Explanation

    assert Explanation.load(target).n_answer == ex.n_answer
    assert main_window.settings.last_save_dir == str(tmp_path)
    # Giving up in the save dialog cancels the open.
    finished_run(main_window)
    main_window.saver.ask_path = lambda start: ""
    main_window.open_paths([str(sample_media["image"])])
    qtbot.wait(300)
    assert main_window.media_paths == [str(sample_media["video"])] and main_window.unsaved
    main_window.saver.ask = False


def test_quitting_with_an_unsaved_run_asks(qtbot, main_window, answer_box):
    finished_run(main_window)
    answer_box.button = QMessageBox.StandardButton.Cancel
    main_window.close()
    assert main_window.isVisible() and "quitting" in answer_box.asked[-1]
    answer_box.button = QMessageBox.StandardButton.Discard
    main_window.close()
    qtbot.waitUntil(lambda: not main_window.isVisible(), timeout=5_000)


def test_a_saved_or_opened_explanation_is_not_asked_about(qtbot, main_window, sample_media,
                                                         answer_box, tmp_path):
    finished_run(main_window)
    main_window.save_explanation(str(tmp_path / "kept.tam.npz"))
    qtbot.waitUntil(lambda: not main_window.unsaved, timeout=10_000)
    open_and_wait(qtbot, main_window, [sample_media["image"]])
    assert answer_box.asked == []


def test_save_dialog_starts_in_documents_not_the_open_folder(qtbot, main_window, sample_media):
    from PySide6.QtCore import QStandardPaths

    finished_run(main_window)
    main_window.saver.ask = False
    main_window.settings.last_dir = str(Path(sample_media["image"]).parent)
    starts = []
    main_window.saver.ask_path = lambda start: starts.append(start) or ""
    main_window.save_explanation_dialog()
    docs = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.DocumentsLocation)
    assert Path(starts[0]).parent in (Path(docs), Path.home())
    assert Path(starts[0]).parent != Path(sample_media["image"]).parent


# ---------------------------------------------------------------------- polish
def test_prompt_follows_the_media_unless_the_user_typed_one(qtbot, main_window, sample_media):
    rp = main_window.run_panel
    open_and_wait(qtbot, main_window, [sample_media["video"]])
    assert rp.prompt_text() == VIDEO_PROMPT
    open_and_wait(qtbot, main_window, [sample_media["image"]])
    assert rp.prompt_text() == IMAGE_PROMPT
    rp.prompt.setCurrentText("Which shape is on the left?")
    open_and_wait(qtbot, main_window, [sample_media["video"]])
    assert rp.prompt_text() == "Which shape is on the left?"


def test_several_images_make_one_recent_entry_that_reopens_them_all(qtbot, main_window,
                                                                   sample_media, tmp_path):
    from tam_engine.demo import synth

    second = tmp_path / "second.png"
    second.write_bytes(synth.encode_png(synth.make_image_scene(9, size=96).image))
    both = [Path(sample_media["image"]).resolve(), second.resolve()]
    open_and_wait(qtbot, main_window, both)
    open_and_wait(qtbot, main_window, [sample_media["video"]])
    assert len(main_window.settings.recent_files) == 2
    menu = main_window.recent_menu
    menu.aboutToShow.emit()
    entries = [a for a in menu.actions() if "second.png" in a.text()]
    assert len(entries) == 1 and "shapes.png" in entries[0].text()
    entries[0].trigger()
    qtbot.waitUntil(lambda: main_window.media_paths == [str(p) for p in both], timeout=20_000)
    assert len(main_window.state.media) == 2


def test_the_run_row_stays_still_during_a_run(qtbot, main_window, sample_media):
    rp = main_window.run_panel
    open_and_wait(qtbot, main_window, [sample_media["image"]])
    qtbot.wait(50)
    before = (rp.run_button.geometry(), rp.cancel_button.geometry(), rp.prompt.geometry())
    rp.set_running(True)
    rp.set_busy()
    main_window.run_phase(f"Loading the model {demo_model_dir()}")
    qtbot.wait(50)
    assert (rp.run_button.geometry(), rp.cancel_button.geometry(), rp.prompt.geometry()) \
        == before
    assert rp.progress.isVisible() and main_window.statusBar().isAncestorOf(rp.progress)
    main_window.run_phase("Generating")
    rp.set_progress(3, 64)
    qtbot.wait(50)
    assert rp.phase.text() == "Generating …"     # whole, not clipped
    assert rp.phase.fontMetrics().horizontalAdvance(rp.phase.text()) <= rp.phase.width()
    assert rp.run_button.geometry() == before[0]
    rp.set_running(False)
    qtbot.wait(50)
    assert rp.run_button.geometry() == before[0]


def test_long_phases_are_elided_with_the_whole_text_in_the_tooltip(main_window):
    rp = main_window.run_panel
    long_text = "Loading the model " + "very-long-folder-name/" * 12 + " …"
    rp.set_phase(long_text)
    assert rp.phase.toolTip() == long_text and "…" in rp.phase.text()
    assert rp.phase.fontMetrics().horizontalAdvance(rp.phase.text()) <= rp.phase.width()
