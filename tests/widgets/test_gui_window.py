"""The real main window, driven as a user would (offscreen, pytest-qt)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent, QHelpEvent
from PySide6.QtWidgets import QApplication, QToolTip

from tam_desktop.main_window import MainWindow
from tam_desktop.views.colors import lut
from tam_engine.core.placement import resize_map
from tam_engine.render.colormaps import colormap_lut
from tam_engine.testing.synthetic import synthetic_explanation


def click_token(qtbot, strip, index, modifier=Qt.KeyboardModifier.NoModifier):
    qtbot.mouseClick(strip.canvas, Qt.MouseButton.LeftButton, modifier,
                     pos=strip.canvas.chip_rect(index).center())


def open_and_wait(qtbot, window, paths):
    window.open_paths([str(p) for p in paths])
    qtbot.waitUntil(lambda: window.media_paths == [str(p) for p in paths], timeout=20_000)


def test_open_image_shows_it_without_a_map(qtbot, main_window, sample_media):
    assert not main_window.run_panel.run_button.isEnabled()  # nothing to explain yet
    open_and_wait(qtbot, main_window, [sample_media["image"]])
    assert main_window.run_panel.run_button.isEnabled()
    mv = main_window.pane.media_view
    assert mv.image_item.image.shape == (112, 112, 3)
    assert mv.heat_image() is None
    assert not main_window.pane.frame_controls.isVisible()
    assert "shapes.png" in main_window.windowTitle()
    assert main_window.settings.recent_files[0].endswith("shapes.png")


def test_open_video_shows_frames_and_filmstrip(qtbot, main_window, sample_media):
    open_and_wait(qtbot, main_window, [sample_media["video"]])
    fc = main_window.pane.frame_controls
    assert fc.isVisible() and fc.slider.maximum() == main_window.state.cursor.n_frames - 1 > 0
    assert len(fc.filmstrip._thumbs) == main_window.state.cursor.n_frames
    qtbot.keyClick(main_window, Qt.Key.Key_Down)
    qtbot.keyClick(main_window, Qt.Key.Key_Period)
    qtbot.keyClick(main_window, Qt.Key.Key_Comma)
    assert main_window.state.cursor.frame == 1 and fc.slider.value() == 1
    media = main_window.state.current_media
    assert np.array_equal(main_window.pane.media_view.image_item.image, media.frames[1])


def test_click_tokens_phrases_and_keys(qtbot, main_window):
    ex = synthetic_explanation("image", width=96, height=72)
    main_window.show_explanation(ex)
    st, strip = main_window.state, main_window.pane.answer_strip
    assert strip.count == ex.n_answer
    click_token(qtbot, strip, 3)
    assert (st.kind, st.token, st.selection) == ("answer", 3, (3,))
    want = resize_map(ex.frame_map(3), (96, 72))
    assert np.array_equal(main_window.pane.media_view.heat_image(), want)
    assert strip.looks[3] == "current"
    pos = strip.canvas.chip_rect(2).center()
    QApplication.sendEvent(strip.canvas, QHelpEvent(QEvent.Type.ToolTip, pos,
                                                    strip.canvas.mapToGlobal(pos)))
    assert "top candidates" in QToolTip.text() and "answer token 3 / " in QToolTip.text()
    assert "top candidates" in main_window.pane.text_map.toHtml()
    click_token(qtbot, strip, 5, Qt.KeyboardModifier.ShiftModifier)
    assert st.selection == (3, 4, 5)
    phrase = ex.combined_grid_maps([3, 4, 5], "mean")[0][0]
    assert np.array_equal(main_window.pane.media_view.heat_image(), resize_map(phrase, (96, 72)))
    click_token(qtbot, strip, 4, Qt.KeyboardModifier.ControlModifier)
    assert st.selection == (3, 5)
    assert strip.looks[3:6] == ["selected", "plain", "current"]
    qtbot.keyClick(main_window, Qt.Key.Key_Right)
    assert st.token == 6 and st.selection == (6,)
    qtbot.keyClick(main_window, Qt.Key.Key_End)
    assert st.token == ex.n_answer - 1
    qtbot.keyClick(main_window, Qt.Key.Key_Home)
    qtbot.keyClick(main_window, Qt.Key.Key_Left)
    assert st.token == 0
    click_token(qtbot, main_window.pane.prompt_strip, 1)
    assert (st.kind, st.token) == ("prompt", 1)
    assert np.array_equal(main_window.pane.media_view.heat_image(),
                          resize_map(ex.frame_map(1, kind="prompt"), (96, 72)))
    assert not main_window.pane.timeline.cursor.isVisible()
    assert "Describe" in main_window.pane.text_map.toHtml()


def test_timeline_cursor_and_click_pick_tokens(qtbot, main_window):
    ex = synthetic_explanation("image")
    main_window.show_explanation(ex)
    tl = main_window.pane.timeline
    assert np.allclose(tl.bars.getData()[1][1::4], ex.answer.visual_strength())
    tl.cursor.setValue(6.8)  # dragging the InfiniteLine
    assert main_window.state.token == 7
    main_window.state.set_token(2)
    assert tl.cursor.value() == 2
    vb = tl.getPlotItem().vb
    scene_pt = vb.mapViewToScene(QPointF(5.0, sum(vb.viewRange()[1]) / 2))
    view_pt = tl.mapFromScene(scene_pt)
    qtbot.mouseClick(tl.viewport(), Qt.MouseButton.LeftButton, pos=view_pt)
    assert main_window.state.token == 5


def test_display_controls_change_the_overlay(qtbot, main_window):
    main_window.show_explanation(synthetic_explanation("image"))
    bar, mv = main_window.pane.display_bar, main_window.pane.media_view
    bar.colormap.setCurrentText("viridis")
    assert np.array_equal(mv.heat_item.lut, colormap_lut("viridis"))
    assert np.array_equal(lut("viridis"), colormap_lut("viridis"))
    bar.opacity.setValue(30)
    assert mv.heat_item.opacity() == pytest.approx(0.3)
    qtbot.keyClick(main_window, Qt.Key.Key_O)
    assert mv.heat_image() is None and not bar.overlay.isChecked()
    bar.overlay.setChecked(True)
    assert mv.heat_image() is not None and main_window.act_overlay.isChecked()
    top = int(main_window.state.current_grid().max())
    bar.scale.setCurrentIndex(bar.scale.findData("token"))  # 0 .. the token's strongest cell
    assert list(mv.heat_item.levels) == pytest.approx([0, top / 255.0])
    assert mv.colorbar.levels() == pytest.approx((0.0, top / 255.0))
    assert mv.heat_image().dtype == np.float32         # coloured from the float map: no bands
    ex = main_window.state.explanation
    bar.scale.setCurrentIndex(bar.scale.findData("shared"))  # 0 .. any token's strongest cell
    assert mv.colorbar.levels() == pytest.approx((0.0, int(ex.answer.maps.max()) / 255.0))
    bar.scale.setCurrentIndex(bar.scale.findData("joint"))
    assert list(mv.heat_item.levels) == [0, 255] and mv.colorbar.levels() == (0.0, 1.0)


def test_video_scrub_and_play(qtbot, main_window):
    ex = synthetic_explanation("video", n_frames=6, width=80, height=60)
    ex.media[0].fps = 25.0  # play fast
    main_window.show_explanation(ex)
    st, fc = main_window.state, main_window.pane.frame_controls
    st.set_token(4)
    fc.slider.setValue(3)
    assert st.cursor.frame == 3
    assert np.array_equal(main_window.pane.media_view.heat_image(),
                          resize_map(ex.frame_map(4, 0, 3), (80, 60)))
    fs = fc.filmstrip
    qtbot.mouseClick(fs, Qt.MouseButton.LeftButton, pos=fs._thumb_rect(5).center())
    assert st.cursor.frame == 5
    qtbot.keyClick(main_window, Qt.Key.Key_Space)
    assert st.cursor.playing and fc.play_button.isChecked()
    seen = set()
    st.cursor.frame_changed.connect(seen.add)
    qtbot.waitUntil(lambda: len(seen) >= 3, timeout=5000)
    qtbot.keyClick(main_window, Qt.Key.Key_Space)
    assert not st.cursor.playing


def test_two_panes_share_one_frame_position(qtbot, no_gui_leaks):
    from tam_desktop.models import FrameCursor
    from tam_desktop.views.pane import ExplanationPane

    cursor = FrameCursor()
    a, b = ExplanationPane(cursor=cursor), ExplanationPane(cursor=cursor)
    for pane, seed in ((a, 0), (b, 1)):
        qtbot.addWidget(pane)
        pane.state.set_content([], synthetic_explanation("video", n_frames=6, seed=seed))
    a.frame_controls.slider.setValue(4)
    assert b.state.cursor.frame == 4 and b.frame_controls.slider.value() == 4
    assert np.array_equal(b.media_view.image_item.image, b.state.media[0].frames[4])


def test_drop_a_file_opens_it(qtbot, main_window, sample_media):
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(sample_media["image"]))])
    ev = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                    Qt.KeyboardModifier.NoModifier)
    main_window.dropEvent(ev)
    qtbot.waitUntil(lambda: main_window.media_paths == [str(sample_media["image"])], timeout=20_000)


def test_save_and_reopen_explanation(qtbot, main_window, tmp_path, error_boxes):
    ex = synthetic_explanation("video", n_frames=4)
    main_window.show_explanation(ex)
    target = tmp_path / "run"
    main_window.save_explanation(str(target))
    saved = tmp_path / "run.tam.npz"
    qtbot.waitUntil(lambda: "Saved" in main_window.status_label.text(), timeout=20_000)
    assert saved.is_file()
    main_window.state.set_content([], None)
    main_window.open_paths([str(saved)])
    qtbot.waitUntil(lambda: main_window.state.explanation is not None, timeout=20_000)
    back = main_window.state.explanation
    assert np.array_equal(back.answer.maps, ex.answer.maps) and back.answer_texts == ex.answer_texts
    assert main_window.pane.answer_strip.count == ex.n_answer
    assert main_window.pane.frame_controls.isVisible()
    # The keyboard lands on the picture (not in a text field): arrows walk the tokens.
    graphics = main_window.pane.media_view.graphics
    assert graphics.hasFocus() or main_window.focusWidget() is graphics
    first = back.strongest_token()                    # where a view opens
    assert main_window.state.token == first
    qtbot.keyClick(graphics, Qt.Key.Key_Right)
    assert main_window.state.token == min(first + 1, back.n_answer - 1)
    assert not error_boxes


def test_error_dialogs_for_bad_files(qtbot, main_window, tmp_path, error_boxes):
    fake_video = tmp_path / "notes.mp4"
    fake_video.write_text("this is text, not a video")
    main_window.open_paths([str(fake_video)])
    qtbot.waitUntil(lambda: len(error_boxes) == 1, timeout=20_000)
    title, text, hint = error_boxes[0]
    assert title == "Cannot open the media" and "notes.mp4" in text and hint
    bad_npz = tmp_path / "broken.tam.npz"
    bad_npz.write_bytes(b"PK\x03\x04 not really a zip")
    main_window.open_paths([str(bad_npz)])
    qtbot.waitUntil(lambda: len(error_boxes) == 2, timeout=20_000)
    title, text, hint = error_boxes[1]
    assert title == "Cannot open the explanation" and "broken.tam.npz" in text
    assert hint  # the engine says what to do
    main_window.run()  # nothing open: says what to do, runs nothing
    assert error_boxes[2][1] == "There is no image or video to explain."
    assert not main_window.controller.running


def test_settings_persist_between_sessions(qtbot, no_gui_leaks, gui_settings_path):
    w = MainWindow(settings_path=gui_settings_path)
    qtbot.addWidget(w)
    w.show_explanation(synthetic_explanation("image"))
    w.pane.display_bar.colormap.setCurrentText("magma")
    w.pane.display_bar.opacity.setValue(70)
    w.pane.display_bar.scale.setCurrentIndex(w.pane.display_bar.scale.findData("shared"))
    w.run_panel.set_prompt("What colour is the circle?")
    w.settings.generation.max_new_tokens = 21
    w.resize(700, 500)  # the offscreen screen is 800 x 600
    size = w.size()
    w.close()
    w2 = MainWindow(settings_path=gui_settings_path)
    qtbot.addWidget(w2)
    assert w2.state.display.colormap == "magma" and w2.state.display.opacity == pytest.approx(0.7)
    assert w2.state.display.scale == "shared"
    assert w2.pane.display_bar.scale.currentData() == "shared"
    assert w2.run_panel.prompt_text() == "What colour is the circle?"
    assert w2.settings.generation.max_new_tokens == 21
    assert w2.size() == size and w2.settings.geometry
    w2.close()


def test_command_line_version_and_help():
    out = subprocess.run([sys.executable, "-m", "tam_desktop", "--version"],
                         capture_output=True, text=True, check=True)
    assert out.stdout.startswith("tam-desktop ")
    out = subprocess.run([sys.executable, "-m", "tam_desktop", "--help"],
                         capture_output=True, text=True, check=True)
    assert "media" in out.stdout and "--self-test" in out.stdout


def test_command_line_paths_open_after_start(qtbot, main_window, sample_media):
    from tam_desktop.main_window import schedule_open

    schedule_open(main_window, [str(sample_media["video"])])
    qtbot.waitUntil(lambda: main_window.media_paths == [str(sample_media["video"])],
                    timeout=20_000)
    assert main_window.state.current_media.kind == "video"


def test_generation_settings_dialog_round_trip(qtbot, main_window, monkeypatch):
    from PySide6.QtWidgets import QDialog

    from tam_desktop.dialogs import GenerationDialog
    from tam_engine.inference.settings import GenerationSettings

    want = GenerationSettings(max_new_tokens=33, video_fps=1.5, max_frames=9, min_pixels=None,
                           max_pixels=401_408, device="cpu", dtype="bfloat16")

    def accept_with_changes(dlg):
        dlg.set_prefs(want)
        return int(QDialog.DialogCode.Accepted)

    monkeypatch.setattr(GenerationDialog, "exec", accept_with_changes)
    main_window.run_panel.settings_button.click()
    assert main_window.settings.generation == want
    qtbot.waitUntil(lambda: main_window.tasks.busy is False, timeout=10_000)
    from tam_desktop.settings import load_settings

    assert load_settings(main_window.context.settings_path).generation == want


def test_several_images_are_picked_from_the_media_box(qtbot, main_window, sample_media,
                                                      tmp_path):
    from tam_engine.demo import synth

    second = tmp_path / "second.png"
    second.write_bytes(synth.encode_png(synth.make_image_scene(9, size=96).image))
    open_and_wait(qtbot, main_window, [sample_media["image"], second])
    box = main_window.pane.display_bar.media
    assert box.isVisible() and box.count() == 2
    box.setCurrentIndex(1)
    assert main_window.state.media_index == 1
    assert main_window.pane.media_view.image_item.image.shape == (96, 96, 3)


def test_recent_files_menu_reopens(qtbot, main_window, sample_media):
    open_and_wait(qtbot, main_window, [sample_media["video"]])
    open_and_wait(qtbot, main_window, [sample_media["image"]])
    main_window.recent_menu.aboutToShow.emit()
    actions = [a for a in main_window.recent_menu.actions() if a.text().endswith(".mp4")]
    assert actions
    actions[0].trigger()
    qtbot.waitUntil(lambda: main_window.state.current_media.kind == "video", timeout=20_000)


def test_a_run_gets_the_media_as_they_were_opened(qtbot, main_window, sample_media,
                                                  monkeypatch):
    from tam_engine.inference.settings import GenerationSettings

    open_and_wait(qtbot, main_window, [sample_media["video"]])
    shown = main_window.state.media
    requests = []
    monkeypatch.setattr(main_window.controller, "start", requests.append)
    main_window.run_panel.model.setCurrentText("some/model")
    main_window.run()
    assert requests[-1].media_paths == (str(sample_media["video"]),)
    assert requests[-1].media[0] is shown[0]               # decoded once, not read again
    # Other video sampling: the frames shown are not the ones to run on; the run reads them.
    main_window.settings.generation = GenerationSettings(max_frames=3)
    main_window.run()
    assert requests[-1].media == ()
