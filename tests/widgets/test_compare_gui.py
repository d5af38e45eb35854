"""Compare mode in the GUI on synthetic explanations: two panes, one frame cursor, linked
words, the A-B view, exports."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QPushButton

from tam_desktop.compare import CompareWindow
from tam_desktop.settings import AppSettings
from tam_engine.core.placement import resize_map
from tam_engine.render.compare_figure import render_side_by_side
from tam_engine.testing.synthetic import compare_pair, independent_difference, synthetic_explanation


def test_words_link_across_panes_and_the_difference_follows(qtbot, click_token, compare_window):
    w = compare_window()
    a, b = compare_pair()
    w.show_explanations(a, b)
    cmp = w.comparison
    assert cmp is not None and cmp.alignment.pairs[:2] == ((0, 0), (2, 2))
    sa, sb = w.states["a"], w.states["b"]
    click_token(w.pane_a.answer_strip, 2)     # "circle" in A
    assert sb.selection == (2,)
    assert w.pane_b.answer_strip.looks[2] == "current"
    d = w.diff_view.diff
    np.testing.assert_allclose(
        d, independent_difference(a, a.frame_map(2), b.frame_map(2)), atol=1e-5)
    assert "aligned words" in w.diff_view.title.text()
    assert w.diff_view.image().shape == (72, 96, 3)
    click_token(w.pane_b.answer_strip, 6)     # "square" in B -> A follows
    assert sa.selection == (6,)
    np.testing.assert_allclose(
        w.diff_view.diff, independent_difference(a, a.frame_map(6), b.frame_map(6)), atol=1e-5)
    # "red" has no counterpart in B: no difference against whatever B showed before, and
    # the view and the status bar say so; the export compares nothing either.
    click_token(w.pane_a.answer_strip, 1)
    assert w.link.unmatched == "a"
    assert w.diff_view.diff is None and w.diff_view.image() is None
    assert "no counterpart in B" in w.diff_view.title.text()
    assert "no counterpart in B" in w.status_label.text()
    assert w._export_args()["tokens_b"] == ()
    panel_b = w.comparison.panels(sa.selection, w._export_args()["tokens_b"])[1]
    assert panel_b.map_u8 is None and panel_b.tokens == ()   # as the side-by-side export shows
    # Then a word of B without a counterpart either: a pair chosen by hand, compared.
    click_token(w.pane_b.answer_strip, 1)
    assert w.link.unmatched is None and "chosen by hand" in w.diff_view.title.text()
    np.testing.assert_allclose(
        w.diff_view.diff, independent_difference(a, a.frame_map(1), b.frame_map(1)), atol=1e-5)
    # Back on a linked word, the difference returns.
    click_token(w.pane_a.answer_strip, 2)
    assert w.link.unmatched is None and w.diff_view.diff is not None
    # A phrase (shift-click) maps word by word; the difference is of the phrase maps.
    click_token(w.pane_a.answer_strip, 5)
    click_token(w.pane_a.answer_strip, 6, Qt.KeyboardModifier.ShiftModifier)
    assert sa.selection == (5, 6) and sb.selection == (5, 6)
    gi = 0
    ma = a.combined_grid_maps([5, 6])[gi][0]
    mb = b.combined_grid_maps([5, 6])[gi][0]
    np.testing.assert_allclose(w.diff_view.diff, independent_difference(a, ma, mb), atol=1e-5)
    assert "<u>" in w.alignment_label.text() or "underline" in w.alignment_label.text()


def test_identical_explanations_differ_nowhere(qtbot, click_token, compare_window):
    w = compare_window()
    a, _ = compare_pair()
    w.show_explanations(a, a)
    assert w.comparison.alignment.n_aligned == 10
    for k in (0, 3, 9):
        click_token(w.pane_a.answer_strip, k)
        assert w.states["b"].selection == (k,)
        assert np.all(w.diff_view.diff == 0.0)


def test_frame_is_shared_and_the_colour_scale_too(qtbot, click_token, compare_window):
    w = compare_window()
    a, b = compare_pair("video")
    w.show_explanations(a, b)
    click_token(w.pane_a.answer_strip, 2)
    w.pane_a.frame_controls.slider.setValue(3)      # move the frame in A ...
    assert w.frame_cursor.frame == 3
    assert w.pane_b.frame_controls.slider.value() == 3     # ... B follows
    assert np.array_equal(w.pane_b.media_view.heat_image(),
                          resize_map(b.frame_map(2, 0, 3), (96, 72)))
    np.testing.assert_allclose(
        w.diff_view.diff, independent_difference(a, a.frame_map(2, 0, 3), b.frame_map(2, 0, 3)),
        atol=1e-5)
    # Playing from A's controls plays both panes, one frame per tick (one clock per cursor).
    a.media[0].fps = b.media[0].fps = 25.0
    w.show_explanations(a, b)
    seen = []
    w.frame_cursor.frame_changed.connect(seen.append)
    w.pane_a.frame_controls.play_button.click()
    assert w.frame_cursor.playing and w.pane_b.frame_controls.play_button.isChecked()
    qtbot.waitUntil(lambda: len(seen) >= 4, timeout=5000)
    w.pane_b.frame_controls.play_button.click()     # and B's button pauses both
    assert not w.frame_cursor.playing
    steps = {(y - x) % 6 for x, y in zip(seen, seen[1:])}
    assert steps == {1}
    assert w.pane_b.frame_controls.slider.value() == w.frame_cursor.frame
    w.display_bar.colormap.setCurrentText("viridis")
    assert w.states["b"].display.colormap == "viridis"
    assert not w.pane_b.display_bar.isVisible()


def test_exports_of_the_side_by_side_view(qtbot, click_token, compare_window, tmp_path, error_boxes):
    import av
    from PIL import Image

    w = compare_window()
    a, b = compare_pair("video")
    w.show_explanations(a, b)
    click_token(w.pane_a.answer_strip, 2)
    w.frame_cursor.set_frame(1)
    png = tmp_path / "side.png"
    with qtbot.waitSignal(w.exported, timeout=30_000):
        w.export_png(str(png), panel_width=200)
    expected = render_side_by_side(*w.comparison.panels((2,), (2,), 0, 1), panel_width=200,
                                   cmap=w.display.colormap, opacity=w.display.opacity)
    with Image.open(png) as im:
        assert im.size == (expected.shape[1], expected.shape[0])
        assert np.array_equal(np.asarray(im.convert("RGB")), expected)
    mp4 = tmp_path / "side.mp4"
    with qtbot.waitSignal(w.exported, timeout=60_000):
        w.export_mp4(str(mp4), panel_width=160)
    with av.open(str(mp4)) as c:
        s = c.streams.video[0]
        assert s.codec_context.name == "h264"
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(s)]
    assert len(frames) == a.media[0].n_frames               # a video plays its frames
    assert frames[0].shape[1] >= 3 * 160
    assert not error_boxes
    # Cancelling an export leaves no file.
    w.exports.start("x", _slow_export, str(tmp_path / "never.mp4"))
    qtbot.waitUntil(lambda: w.exports.dialog.value() > 0, timeout=10_000)  # progress shows
    with qtbot.waitSignal(w.exports.cancelled, timeout=30_000):
        w.exports.dialog.findChild(QPushButton).click()   # the progress dialog's Cancel
    assert not (tmp_path / "never.mp4").exists() and not w.exports.busy


def _slow_export(path, progress=None, should_stop=None):
    import time

    from tam_engine.core.errors import Cancelled

    for i in range(200):
        if should_stop():
            raise Cancelled("Export cancelled.")
        progress(i, 200)
        time.sleep(0.01)
    raise AssertionError("the export was not cancelled")


def test_export_without_a_comparison_says_what_to_do(qtbot, compare_window, error_boxes,
                                                     tmp_path):
    w = compare_window()
    w.export_png(str(tmp_path / "x.png"))
    assert error_boxes and error_boxes[0][0] == "Nothing to export"
    assert "Run both models" in error_boxes[0][2]


def test_run_without_media_or_models_explains_itself(qtbot, compare_window, error_boxes):
    w = compare_window(model_a="x", model_b="y")
    w.run_bar.run_button.click()
    assert error_boxes[-1][0] == "Nothing to compare on"
    w2 = compare_window(media_paths=["/tmp/a.png"], model_a="x", model_b="")
    w2.run_bar.model_b.setCurrentText("")
    w2.run()
    assert error_boxes[-1][0] == "Two models needed"
    assert not w.controller.running and not w2.controller.running


def test_main_window_opens_compare_mode_with_its_media_and_prompt(qtbot, main_window,
                                                                  no_gui_leaks):
    a, _ = compare_pair()
    main_window.show_explanation(a)
    main_window.media_paths = ["/some/where/scene.png"]
    main_window.run_panel.set_prompt("What is red?")
    main_window.state.display.scale = "token"
    main_window.state.display.colormap = "magma"
    main_window.act_compare.trigger()
    w = main_window.compare_window
    assert isinstance(w, CompareWindow) and w.isVisible()
    assert w.media_paths == ["/some/where/scene.png"]
    assert w.run_bar.prompt_text() == "What is red?"
    assert w.states["a"].media and w.states["a"].media[0] is a.media[0]
    assert w.display is not main_window.state.display
    assert w.display.colormap == "magma" and w.display.scale == "token"  # every option copied
    assert w.display_bar.scale.currentData() == "token"
    main_window.state.display.scale = "joint"                        # copied, not shared
    assert w.display.scale == "token"
    assert w.controller.cache is main_window.controller.cache
    main_window.act_compare.trigger()                    # raises the same window
    assert main_window.compare_window is w
    main_window.close()                                  # closes compare mode with it
    assert not w.isVisible()


def test_panes_keep_the_longer_video_reachable(qtbot, compare_window):
    w = compare_window()
    a = synthetic_explanation("video", n_frames=8, width=96, height=72, seed=0)
    b = synthetic_explanation("video", n_frames=4, width=96, height=72, seed=1)
    w.show_explanations(a, b)                      # B (shorter) is set last
    assert w.frame_cursor.n_frames == 8
    w.frame_cursor.set_frame(7)
    assert w.pane_a.media_view._displayed_frame() == 7
    assert w.pane_b.media_view._displayed_frame() == 3   # B holds its last frame
    assert w.diff_view.diff is not None


def test_export_menu_actions_add_the_extension(qtbot, compare_window, tmp_path, monkeypatch,
                                               error_boxes):
    from PySide6.QtWidgets import QFileDialog

    w = compare_window()
    a, b = compare_pair()
    w.show_explanations(a, b)
    target = tmp_path / "picked"
    monkeypatch.setattr(QFileDialog, "getSaveFileName",
                        staticmethod(lambda *args, **kw: (str(target), "")))
    with qtbot.waitSignal(w.exported, timeout=30_000) as sig:
        w.act_export_png.trigger()
    assert sig.args[0] == tmp_path / "picked.png" and (tmp_path / "picked.png").is_file()
    with qtbot.waitSignal(w.exported, timeout=60_000) as sig:
        w.act_export_mp4.trigger()
    assert (tmp_path / "picked.mp4").is_file()          # an image: one picture per A word
    # A folder that cannot be written: an error dialog with a hint, no crash.
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with qtbot.waitSignal(w.exports.failed, timeout=30_000):
        w.export_png(str(blocker / "x.png"))
    assert error_boxes and error_boxes[-1][0] == "Cannot export"
    assert "x.png" in error_boxes[-1][1] and "folder you can write to" in error_boxes[-1][2]


def test_big_frames_are_drawn_at_view_resolution(qtbot, compare_window):
    from tam_desktop.compare.diff_view import MAX_SIDE

    w = compare_window()
    a = synthetic_explanation("image", width=1600, height=900, seed=0)
    b = synthetic_explanation("image", width=1600, height=900, grid_hw=(3, 4), seed=1)
    w.show_explanations(a, b)
    d = w.diff_view.diff
    assert d.shape == (405, MAX_SIDE)               # aspect kept, long side capped
    cmp = w.comparison
    full = cmp.difference(w.states["a"].selection, w.states["b"].selection)
    assert full.shape == (900, 1600)
    assert abs(float(full.mean()) - float(d.mean())) < 0.01


def test_compare_window_reopens_where_it_was_left(qtbot, compare_window):
    settings = AppSettings()
    w = compare_window(settings=settings)
    default = w.size()
    w.resize(default.width() - 30, default.height() - 40)
    size = w.size()
    assert size != default
    w.close()
    assert settings.compare_geometry
    w2 = compare_window(settings=settings)
    assert w2.size() == size
    # The geometry is part of the saved settings.
    assert AppSettings.from_dict(settings.to_dict()).compare_geometry == settings.compare_geometry
