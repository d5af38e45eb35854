"""The window says what it shows: one token numbering, the phrase named, the candidates'
meaning, the first token shown, timeline labels that never overlap, a slider that goes where
it is clicked, room for the text map in compare mode."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QEvent, QPoint, Qt
from PySide6.QtGui import QFontMetricsF, QHelpEvent
from PySide6.QtWidgets import QApplication, QToolTip

from tam_engine.core.inputs import PROBABILITY_LABEL, percent
from tam_engine.testing.synthetic import compare_pair, synthetic_explanation


def tooltip_of(strip, index):
    pos = strip.canvas.chip_rect(index).center()
    QApplication.sendEvent(strip.canvas, QHelpEvent(QEvent.Type.ToolTip, pos,
                                                    strip.canvas.mapToGlobal(pos)))
    return QToolTip.text()


def test_one_numbering_and_one_candidate_meaning(qtbot, main_window, click_token):
    ex = synthetic_explanation("image", n_answer=8)
    main_window.show_explanation(ex)
    strip = main_window.pane.answer_strip
    click_token(strip, 2)
    label = "answer token 3 / 8"
    assert main_window.status_label.text().startswith(label)
    assert "Answer token 3 / 8" in main_window.pane.text_map.toPlainText()
    tip = tooltip_of(strip, 2)
    assert label in tip and PROBABILITY_LABEL in tip
    # the probabilities the model gave over its whole vocabulary, as stored
    for p in ex.candidates.probs[2, :3]:
        assert percent(p) in tip and percent(p) in main_window.pane.text_map.toPlainText()


def test_the_phrase_is_named_in_the_status_bar_and_the_text_map(qtbot, main_window,
                                                                click_token):
    ex = synthetic_explanation("image", n_answer=8)
    main_window.show_explanation(ex)
    strip = main_window.pane.answer_strip
    click_token(strip, 2)
    click_token(strip, 4, Qt.KeyboardModifier.ShiftModifier)
    words = "".join(ex.answer_texts[2:5]).strip()
    status = main_window.status_label.text()
    assert status.startswith("answer tokens 3-5 / 8") and words in status and "mean of 3" in status
    text = main_window.pane.text_map.toPlainText()
    assert "Phrase: answer tokens 3-5" in text and words in text
    click_token(strip, 6, Qt.KeyboardModifier.ControlModifier)
    assert main_window.status_label.text().startswith("answer tokens 3, 4, 5, 7 / 8")
    click_token(strip, 1)                                  # one token again
    assert main_window.status_label.text().startswith("answer token 2 / 8")
    assert "Phrase" not in main_window.pane.text_map.toPlainText()


def test_opens_on_the_strongest_token(qtbot, main_window):
    ex = synthetic_explanation("image", n_answer=10, seed=3)
    main_window.show_explanation(ex)
    k = int(np.argmax(ex.answer.visual_strength()))
    assert k != 0 and main_window.state.token == k and main_window.state.selection == (k,)


def label_rects(timeline):
    """The drawn token labels' extents along the bottom axis (pixels), from the axis' ticks
    and the tick font's metrics."""
    axis = timeline.getAxis("bottom")
    metrics = QFontMetricsF(axis.style["tickFont"])
    ticks = axis._tickLevels[0] if axis._tickLevels else []
    out = []
    for value, text in ticks:
        x, half = timeline.token_x(value), metrics.horizontalAdvance(text) / 2
        out.append((x - half, x + half, text))
    return out


def assert_no_overlap(rects):
    rects = sorted(rects)
    for (_l0, r0, t0), (l1, _r1, t1) in zip(rects, rects[1:]):
        assert l1 > r0, f"labels {t0!r} and {t1!r} overlap"


def test_timeline_labels_never_overlap(qtbot, no_gui_leaks):
    from tam_desktop.models.playback import PlaybackState
    from tam_desktop.views.timeline import TokenTimeline

    state = PlaybackState()
    state.set_content([], synthetic_explanation("image", n_answer=60))
    tl = TokenTimeline(state)
    qtbot.addWidget(tl)
    tl.show()
    counts = []
    for width in (780, 360):
        tl.resize(width, 140)
        qtbot.waitUntil(lambda w=width: abs(tl.width() - w) < 2)
        QApplication.processEvents()
        rects = label_rects(tl)
        assert 3 <= len(rects) < 60            # thinned, not dropped
        assert_no_overlap(rects)
        counts.append(len(rects))
    assert counts[1] < counts[0]               # narrower: fewer labels


def test_compare_panes_thin_labels_and_give_the_text_map_room(qtbot, compare_window):
    w = compare_window()
    a, b = compare_pair()
    w.show_explanations(a, b)
    w.resize(1000, 700)
    w.show()
    qtbot.waitExposed(w)
    for pane in (w.pane_a, w.pane_b):
        assert_no_overlap(label_rects(pane.timeline))
        tm = pane.text_map
        assert tm.height() >= 7 * tm.fontMetrics().lineSpacing()


def test_frame_slider_goes_where_the_groove_is_clicked(qtbot, main_window):
    ex = synthetic_explanation("video", n_frames=10, width=80, height=60)
    main_window.show_explanation(ex)
    slider = main_window.pane.frame_controls.slider
    main_window.resize(900, 700)
    qtbot.waitUntil(slider.isVisible)
    assert slider.maximum() == 9
    for want in (6, 2, 8):
        # the middle of the pixels that mean this frame
        xs = [x for x in range(slider.width()) if slider.value_at(x) == want]
        x = xs[len(xs) // 2]
        qtbot.mouseClick(slider, Qt.MouseButton.LeftButton, pos=QPoint(x, slider.height() // 2))
        assert main_window.state.cursor.frame == want
    # and the pixel positions spread over the groove, first to last
    assert slider.value_at(0) == 0 and slider.value_at(slider.width() - 1) == 9
