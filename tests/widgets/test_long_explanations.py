"""The window with long explanations (issue 16): thumbnails made in the background, the
text map's window, finding a word among many tokens, and the None reference guard."""

from __future__ import annotations

import sys

import numpy as np

from tam_desktop.views.token_find import find_tokens
from tam_engine.testing.synthetic import synthetic_explanation


def test_find_tokens_by_shown_text_and_by_phrase():
    texts = ["a", " red", " circle", " and", " a", " Red", " square", "\n", " circ", "le"]
    assert find_tokens(texts, "red") == [1, 5]
    assert find_tokens(texts, "  CIRC ") == [2, 8]
    assert find_tokens(texts, "red square") == [5]
    assert find_tokens(texts, "circle and") == [2]
    assert find_tokens(texts, "") == [] and find_tokens(texts, "zebra") == []


def test_find_box_jumps_to_each_match_and_wraps(qtbot, main_window):
    ex = synthetic_explanation("image", width=64, height=48, n_answer=30)
    main_window.show_explanation(ex)
    find, st = main_window.pane.token_find, main_window.state
    st.set_token(0, "answer")  # the view opens on the strongest token; search from the start
    want = [k for k, t in enumerate(ex.answer_texts) if "circle" in t]
    assert len(want) == 3
    find.edit.setText("Circle")
    assert find.matches == want and find.count.text() == "3"
    for k in [*want, want[0]]:
        find.step(+1)
        assert st.token == k and st.kind == "answer"
    assert find.count.text() == "1/3"
    find.step(-1)
    assert st.token == want[-1]
    find.edit.setText("nothing like it")
    assert find.count.text() == "no match"


def test_filmstrip_thumbnails_arrive_from_the_background(qtbot, main_window):
    ex = synthetic_explanation("video", n_frames=40, width=80, height=60, n_answer=4)
    main_window.show_explanation(ex)
    fs = main_window.pane.frame_controls.filmstrip
    assert len(fs._thumbs) == 40
    qtbot.waitUntil(lambda: all(t is not None for t in fs._thumbs), timeout=10_000)
    assert {(t.width(), t.height()) for t in fs._thumbs} == {(fs._thumb_w, 64)}
    for i in (0, 17, 39):
        r = fs._thumb_rect(i)
        assert fs.frame_at(r.center().x()) == i and fs.frame_at(r.left()) == i
    assert fs.frame_at(fs._thumb_rect(39).right() + 10) is None


def test_the_text_map_of_a_long_answer_shows_a_window_around_the_token(qtbot, main_window):
    from tam_desktop.views.text_map_view import ANSWER_WINDOW, text_map_html

    ex = synthetic_explanation("image", width=32, height=24, n_answer=ANSWER_WINDOW + 90)
    main_window.show_explanation(ex)
    st = main_window.state
    st.set_token(150)
    html = text_map_html(st)
    lo = 150 - ANSWER_WINDOW // 2
    assert f"… {lo} earlier tokens …" in html
    assert f"… {ex.n_answer - lo - ANSWER_WINDOW} later tokens …" in html
    st.set_token(3)
    html = text_map_html(st)
    assert "earlier tokens" not in html and "… 90 later tokens …" in html


def test_painting_many_chips_keeps_none_alive(qtbot):
    """PySide6 6.12 on Python 3.11 drops a reference to None per void call; the guard that
    tam_desktop installs keeps the interpreter alive well past what 1,000 chips cost."""
    from PySide6.QtCore import QRect
    from PySide6.QtGui import QColor, QImage, QPainter

    import tam_desktop  # noqa: F401  (installs the guard)

    img = QImage(64, 64, QImage.Format.Format_RGB32)
    p = QPainter(img)
    for _ in range(20_000):
        p.fillRect(QRect(0, 0, 4, 4), QColor("#e8eaed"))
    p.end()
    assert sys.getrefcount(None) > 2**39 or sys.version_info >= (3, 12)
    assert np.zeros(1)[0] == 0  # the interpreter still works after the leak
