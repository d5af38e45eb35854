"""Compare mode in the GUI: two panes, one frame cursor, linked words, A-B view, exports."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt, QThreadPool
from PySide6.QtWidgets import QPushButton

from tam_desktop.app_context import AppContext
from tam_desktop.compare import CompareWindow, SelectionLink
from tam_desktop.models import PlaybackState
from tam_desktop.settings import AppSettings, GenerationPrefs
from tam_engine.compare.comparison import Comparison
from tam_engine.core.placement import resize_map
from tam_engine.render.compare_figure import render_side_by_side
from tam_engine.testing.synthetic import synthetic_explanation


def click_token(qtbot, strip, index, modifier=Qt.KeyboardModifier.NoModifier):
    qtbot.mouseClick(strip.canvas, Qt.MouseButton.LeftButton, modifier,
                     pos=strip.canvas.chip_rect(index).center())


def expected_diff(ex_a, ex_b, map_a, map_b):
    """A - B computed here independently: both maps resized bilinearly to A's frame."""
    import cv2

    h, w = ex_a.media[0].frames.shape[1:3]
    fa = cv2.resize(map_a.astype(np.float32) / 255.0, (w, h), interpolation=cv2.INTER_LINEAR)
    fb = cv2.resize(map_b.astype(np.float32) / 255.0, (w, h), interpolation=cv2.INTER_LINEAR)
    return fa - fb


def two_synthetic(kind="image"):
    """A: "a red circle and a blue square moves left ." on a 6x8 grid; B: "a blue circle
    and a blue square moves" on a 3x4 grid (another model, another grid)."""
    a = synthetic_explanation(kind, width=96, height=72, seed=0)
    b = synthetic_explanation(kind, width=96, height=72, grid_hw=(3, 4), n_answer=8, seed=5)
    b.answer.texts[1] = " blue"
    a.meta["model"], b.meta["model"] = "model-a", "model-b"
    return a, b


@pytest.fixture
def compare_window(qtbot, no_gui_leaks, error_boxes):
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


# ------------------------------------------------------------------------------ no widgets
def test_selection_link_between_two_states():
    a, b = two_synthetic()
    sa, sb = PlaybackState(), PlaybackState()
    link = SelectionLink(sa, sb)
    sa.set_content(a.media, a)
    sb.set_content(b.media, b)
    cmp = Comparison.of(a, b)
    link.set_comparison(cmp)
    sa.set_token(2)                              # "circle" -> B's "circle"
    assert sb.selection == (2,) and link.aligned
    sb.set_token(6)                              # B "square" -> A "square"
    assert sa.selection == (6,) and sa.token == 6
    sa.set_token(1)                              # A "red": no counterpart, B stays put
    assert sb.selection == (6,) and not link.aligned
    sb.set_token(1)                              # B's first "blue": no counterpart either
    assert sa.selection == (1,)
    sa.set_token(5)                              # the "blue" both share
    assert sb.selection == (5,)
    sa.select([6, 7], current=7)
    assert sa.selection == (6, 7) and sa.token == 7 and sb.selection == (6, 7)
    link.set_comparison(None)
    sa.set_token(2)
    assert sb.selection == (6, 7)                # unlinked


# ------------------------------------------------------------------------------ widgets
def test_words_link_across_panes_and_the_difference_follows(qtbot, compare_window):
    w = compare_window()
    a, b = two_synthetic()
    w.show_explanations(a, b)
    cmp = w.comparison
    assert cmp is not None and cmp.alignment.pairs[:2] == ((0, 0), (2, 2))
    sa, sb = w.states["a"], w.states["b"]
    click_token(qtbot, w.pane_a.answer_strip, 2)     # "circle" in A
    assert sb.selection == (2,)
    assert w.pane_b.answer_strip.looks[2] == "current"
    d = w.diff_view.diff
    np.testing.assert_allclose(
        d, expected_diff(a, b, a.frame_map(2), b.frame_map(2)), atol=1e-5)
    assert "aligned words" in w.diff_view.title.text()
    assert w.diff_view.image().shape == (72, 96, 3)
    click_token(qtbot, w.pane_b.answer_strip, 6)     # "square" in B -> A follows
    assert sa.selection == (6,)
    np.testing.assert_allclose(
        w.diff_view.diff, expected_diff(a, b, a.frame_map(6), b.frame_map(6)), atol=1e-5)
    # "red" has no counterpart: B keeps "square", the view says the pair is hand-picked.
    click_token(qtbot, w.pane_a.answer_strip, 1)
    assert sb.selection == (6,)
    assert "not aligned" in w.diff_view.title.text()
    np.testing.assert_allclose(
        w.diff_view.diff, expected_diff(a, b, a.frame_map(1), b.frame_map(6)), atol=1e-5)
    # A phrase (shift-click) maps word by word; the difference is of the phrase maps.
    click_token(qtbot, w.pane_a.answer_strip, 5)
    click_token(qtbot, w.pane_a.answer_strip, 6, Qt.KeyboardModifier.ShiftModifier)
    assert sa.selection == (5, 6) and sb.selection == (5, 6)
    gi = 0
    ma = a.combined_grid_maps([5, 6])[gi][0]
    mb = b.combined_grid_maps([5, 6])[gi][0]
    np.testing.assert_allclose(w.diff_view.diff, expected_diff(a, b, ma, mb), atol=1e-5)
    assert "<u>" in w.alignment_label.text() or "underline" in w.alignment_label.text()


def test_identical_explanations_differ_nowhere(qtbot, compare_window):
    w = compare_window()
    a, _ = two_synthetic()
    w.show_explanations(a, a)
    assert w.comparison.alignment.n_aligned == 10
    for k in (0, 3, 9):
        click_token(qtbot, w.pane_a.answer_strip, k)
        assert w.states["b"].selection == (k,)
        assert np.all(w.diff_view.diff == 0.0)


def test_frame_is_shared_and_the_colour_scale_too(qtbot, compare_window):
    w = compare_window()
    a, b = two_synthetic("video")
    w.show_explanations(a, b)
    click_token(qtbot, w.pane_a.answer_strip, 2)
    w.pane_a.frame_controls.slider.setValue(3)      # move the frame in A ...
    assert w.frame_cursor.frame == 3
    assert w.pane_b.frame_controls.slider.value() == 3     # ... B follows
    assert np.array_equal(w.pane_b.media_view.heat_image(),
                          resize_map(b.frame_map(2, 0, 3), (96, 72)))
    np.testing.assert_allclose(
        w.diff_view.diff, expected_diff(a, b, a.frame_map(2, 0, 3), b.frame_map(2, 0, 3)),
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


def test_exports_of_the_side_by_side_view(qtbot, compare_window, tmp_path, error_boxes):
    import av
    from PIL import Image

    w = compare_window()
    a, b = two_synthetic("video")
    w.show_explanations(a, b)
    click_token(qtbot, w.pane_a.answer_strip, 2)
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


# ------------------------------------------------------------------------------ real runs
@pytest.fixture(scope="module")
def two_models(tiny_model_dir):
    return str(tiny_model_dir("qwen2_vl")), str(tiny_model_dir("llava"))


def run_both(qtbot, w, max_new_tokens=5):
    w.settings.generation = GenerationPrefs(max_new_tokens=max_new_tokens, device="cpu",
                                            max_frames=4)
    w.run_bar.run_button.click()
    qtbot.waitUntil(lambda: not w.controller.running, timeout=120_000)


@pytest.mark.slow
def test_two_tiny_models_side_by_side(qtbot, compare_window, two_models, sample_media,
                                      error_boxes):
    qwen, llava = two_models
    w = compare_window(media_paths=[str(sample_media["video"])], model_a=qwen, model_b=llava,
                       prompt="Describe this video.")
    phases = []
    orig = w.side_phase
    w.side_phase = lambda side, text: (phases.append((side, text)), orig(side, text))
    w.controller.view = w
    progress_formats = []
    w.run_bar.progress.valueChanged.connect(
        lambda _v: progress_formats.append(w.run_bar.progress.format()))
    run_both(qtbot, w)
    assert not error_boxes
    ea, eb = w.states["a"].explanation, w.states["b"].explanation
    assert ea is not None and eb is not None
    assert ea.meta["model"] == qwen and eb.meta["model"] == llava
    assert ea.meta["prompt"] == eb.meta["prompt"] == "Describe this video."
    # A ran first, then B; the progress said which model was generating.
    sides = [s for s, _ in phases]
    assert sides[0] == "a" and sides[-1] == "b" and sides == sorted(sides)
    assert any(f.startswith("Model A") for f in progress_formats)
    assert any(f.startswith("Model B") for f in progress_formats)
    assert w.pane_a.answer_strip.count == ea.n_answer > 0
    assert w.pane_b.answer_strip.count == eb.n_answer > 0
    # Different models: different temporal grids over the same frames.
    assert (ea.grids[0].t, eb.grids[0].t) == (2, 4)
    cmp = w.comparison
    assert cmp is not None
    assert cmp.alignment == Comparison.of(ea, eb).alignment
    # One frame cursor: moving A's frame moves B's.
    w.pane_a.frame_controls.slider.setValue(3)
    assert w.pane_b.frame_controls.slider.value() == 3
    sa, sb = w.states["a"], w.states["b"]
    assert sb.cursor.frame == 3
    assert np.array_equal(w.pane_b.media_view.heat_image(),
                          resize_map(sb.current_map(), (112, 112)))
    # The difference view shows A's shown map minus B's on the shared frame (each model on
    # its own temporal slot of frame 3; a word of several tokens shows their phrase map).
    np.testing.assert_allclose(
        w.diff_view.diff, expected_diff(ea, eb, sa.current_map(), sb.current_map()),
        atol=1e-5)
    if len(sa.selection) == 1:
        assert np.array_equal(sa.current_map(), ea.frame_map(sa.token, 0, 3))
    assert not w.run_bar.cancel_button.isEnabled() and w.run_bar.run_button.isEnabled()


@pytest.mark.slow
def test_same_model_twice_aligns_every_word(qtbot, compare_window, two_models,
                                            sample_media, error_boxes):
    qwen, _ = two_models
    w = compare_window(media_paths=[str(sample_media["image"])], model_a=qwen, model_b=qwen)
    run_both(qtbot, w, max_new_tokens=6)
    assert not error_boxes
    cmp = w.comparison
    al = cmp.alignment
    assert cmp.a.answer.texts == cmp.b.answer.texts
    assert al.n_aligned == len(al.words_a) == len(al.words_b)
    for word in al.words_a:
        k = word.tokens[-1]
        w.states["b"].set_token(k)
        assert w.states["a"].selection == word.tokens == w.states["b"].selection
        assert np.all(w.diff_view.diff == 0.0)


@pytest.mark.slow
def test_cancel_during_model_a_skips_model_b(qtbot, compare_window, two_models, sample_media,
                                             error_boxes):
    qwen, llava = two_models
    w = compare_window(media_paths=[str(sample_media["image"])], model_a=qwen, model_b=llava)
    started = []
    w.controller.runs["b"].start = lambda req: started.append(req)  # B must never start

    def on_streamed(texts):
        if len(texts) == 2:
            w.run_bar.cancel_button.click()

    w.states["a"].streamed.connect(on_streamed)
    w.settings.generation = GenerationPrefs(max_new_tokens=400, device="cpu")
    w.run_bar.run_button.click()
    qtbot.waitUntil(lambda: not w.controller.running, timeout=60_000)
    assert w.states["a"].explanation is None and w.states["b"].explanation is None
    assert w.run_bar.run_button.isEnabled() and "Cancelled" in w.status_label.text()
    assert QThreadPool.globalInstance().waitForDone(30_000)
    qtbot.wait(50)
    assert not started and not error_boxes


@pytest.mark.slow
def test_a_bad_model_b_shows_what_to_do(qtbot, compare_window, two_models, sample_media,
                                        error_boxes, tmp_path):
    qwen, _ = two_models
    bad = tmp_path / "not_a_model"
    bad.mkdir()
    w = compare_window(media_paths=[str(sample_media["image"])], model_a=qwen,
                       model_b=str(bad))
    run_both(qtbot, w, max_new_tokens=3)
    assert w.states["a"].explanation is not None          # A finished before B failed
    assert len(error_boxes) == 1
    title, message, hint = error_boxes[0]
    assert title == "Cannot load model B" and "not_a_model" in message and hint
    # B's pane still shows the media (not an empty "open a file" view).
    assert w.states["b"].media and w.states["b"].media[0].n_frames == 1
    assert w.pane_b.media_view.image_item.image is not None
    assert w.run_bar.run_button.isEnabled()


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
    a, _ = two_synthetic()
    main_window.show_explanation(a)
    main_window.media_paths = ["/some/where/scene.png"]
    main_window.run_panel.set_prompt("What is red?")
    main_window.state.display.stretch = True
    main_window.state.display.colormap = "magma"
    main_window.act_compare.trigger()
    w = main_window.compare_window
    assert isinstance(w, CompareWindow) and w.isVisible()
    assert w.media_paths == ["/some/where/scene.png"]
    assert w.run_bar.prompt_text() == "What is red?"
    assert w.states["a"].media and w.states["a"].media[0] is a.media[0]
    assert w.display is not main_window.state.display
    assert w.display.colormap == "magma" and w.display.stretch       # every option copied
    assert w.display_bar.stretch.isChecked()
    main_window.state.display.stretch = False                        # copied, not shared
    assert w.display.stretch
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
    a, b = two_synthetic()
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
