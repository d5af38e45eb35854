"""Compare mode with real runs of two tiny models: side by side, alignment, cancel, errors."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QThreadPool

from tam_engine.compare.comparison import Comparison
from tam_engine.core.placement import resize_map
from tam_engine.inference.settings import GenerationSettings
from tam_engine.testing.synthetic import independent_difference


# ------------------------------------------------------------------------------ real runs
@pytest.fixture(scope="module")
def two_models(tiny_model_dir):
    return str(tiny_model_dir("qwen2_vl")), str(tiny_model_dir("llava"))


def run_both(qtbot, w, max_new_tokens=5):
    w.settings.generation = GenerationSettings(max_new_tokens=max_new_tokens, device="cpu",
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
    # A opens on its strongest token. Random models' answers may share no word: then A's has
    # no counterpart (no difference shown) until a word of B is picked by hand.
    linked = [k for k in range(ea.n_answer) if cmp.alignment.aligned_tokens("a", (k,))]
    if linked:
        sa.set_token(linked[0])
    else:
        assert w.diff_view.diff is None and "no counterpart in B" in w.diff_view.title.text()
        sb.set_token(1 if sb.selection == (0,) else 0)
        assert "chosen by hand" in w.diff_view.title.text()
    assert np.array_equal(w.pane_b.media_view.heat_image(),
                          resize_map(sb.current_map(), (112, 112)))
    # The difference view shows A's shown map minus B's on the shared frame (each model on
    # its own temporal slot of frame 3; a word of several tokens shows their phrase map).
    np.testing.assert_allclose(
        w.diff_view.diff, independent_difference(ea, sa.current_map(), sb.current_map()),
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
    # Words tokenised alike pair token for token (issue 18: a given text explained by both
    # models aligns word for word), so a click selects the same single token on both sides.
    for word in al.words_a:
        for k in word.tokens:
            w.states["b"].set_token(k)
            assert w.states["a"].selection == (k,) == w.states["b"].selection
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
    w.settings.generation = GenerationSettings(max_new_tokens=400, device="cpu")
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
