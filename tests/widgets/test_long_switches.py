"""What one token switch costs with a long explanation open (issue 16), counted, never timed:
the switch reads one row of map tiles, lays the text map out once (after the paint), draws only
the chips whose look changed, keeps every filmstrip thumbnail and the timeline's bars, and
computes the frame strengths once."""

from __future__ import annotations

import numpy as np
import pytest

from tam_engine.core import explanation_store as store
from tam_engine.core.explanation import Explanation
from tam_engine.testing.synthetic import synthetic_explanation


@pytest.fixture
def long_video(tmp_path):
    """A saved-and-reopened video explanation (chunked file: maps read on demand)."""
    ex = synthetic_explanation("video", n_frames=24, width=64, height=48, grid_hw=(6, 8),
                               n_answer=300)
    return Explanation.load(store.save_chunked(ex, tmp_path / "long.tam.npz")), ex


def test_a_token_switch_does_only_the_work_of_what_changed(qtbot, main_window, long_video,
                                                            monkeypatch):
    back, ex = long_video
    main_window.show_explanation(back)
    pane, st = main_window.pane, main_window.state
    canvas, fs = pane.answer_strip.canvas, pane.frame_controls.filmstrip
    qtbot.waitUntil(lambda: not canvas._warm_timer.isActive(), timeout=20_000)
    qtbot.waitUntil(lambda: all(t is not None for t in fs._thumbs), timeout=20_000)
    st.set_token(0)
    main_window.repaint()
    thumbs = list(fs._thumbs)

    from tam_desktop.views import token_strip

    counts = {"chips": 0, "html": 0, "bars": 0, "strengths": 0}
    reads: list[str] = []

    def count(name, fn):
        def wrapped(*args, **kwargs):
            counts[name] += 1
            return fn(*args, **kwargs)
        return wrapped

    monkeypatch.setattr(token_strip, "_paint_chip", count("chips", token_strip._paint_chip))
    monkeypatch.setattr(pane.text_map, "setHtml", count("html", pane.text_map.setHtml))
    monkeypatch.setattr(pane.timeline.bars, "setData", count("bars", pane.timeline.bars.setData))
    monkeypatch.setattr(back, "frame_strengths", count("strengths", back.frame_strengths))
    original_read = store._Archive.read
    monkeypatch.setattr(store._Archive, "read",
                        lambda self, names: reads.extend(names) or original_read(self, names))

    k = 257  # far from token 0: the strip scrolls and repaints every chip in view
    st.set_token(k)
    main_window.repaint()
    # The text map is laid out after the window has been painted, once, by the event loop.
    assert counts["html"] == 0 and pane.text_map.pending
    qtbot.waitUntil(lambda: not pane.text_map.pending, timeout=5_000)
    n_cols = len(store.column_blocks(back.grids))
    assert sorted(reads) == sorted(f"answer_maps/{k // store.ROW_BLOCK}_{c}.z"
                                   for c in range(n_cols))
    # The chips in view were drawn once already (idle time after opening); only the two
    # chips whose look changed (token 0 back to plain, token 257 current) are drawn anew.
    assert counts["chips"] <= 2
    assert (counts["html"], counts["bars"], counts["strengths"]) == (1, 0, 1)
    assert all(a is b for a, b in zip(thumbs, fs._thumbs, strict=True))
    # The phrase path holds the selected bar only, not a path through all 300.
    x, _ = pane.timeline.selection_bars.getData()
    assert len(x) == 4 and np.isclose(x.mean(), k)
    # What is shown is still the token's map.
    np.testing.assert_array_equal(st.current_map(), ex.frame_map(k, 0, st.cursor.frame))

    reads.clear()
    st.set_token(k + 1 if (k + 1) // store.ROW_BLOCK == k // store.ROW_BLOCK else k - 1)
    main_window.repaint()
    assert reads == []  # the same row of tiles: already inflated


def test_timeline_labels_match_placing_each_token_on_the_axis(qtbot, main_window, monkeypatch):
    """Label positions come from two mappings (they are linear in the index); the labels left
    out are the same as when every token is mapped through the view box."""
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QFontMetricsF

    from tam_desktop.views.timeline import LABEL_GAP_PX, MAX_LABEL_PX

    ex = synthetic_explanation("image", width=32, height=24, n_answer=400)
    main_window.resize(1400, 900)
    main_window.show_explanation(ex)
    qtbot.wait(20)
    tl = main_window.pane.timeline
    calls = []
    monkeypatch.setattr(tl, "token_x", lambda i, f=tl.token_x: calls.append(i) or f(i))
    tl._relabel()
    assert len(calls) <= 2
    metrics = QFontMetricsF(tl.tick_font)
    want, last_right = [], -np.inf
    for i, text in enumerate(tl._labels):
        text = metrics.elidedText(text, Qt.TextElideMode.ElideRight, MAX_LABEL_PX)
        half, x = metrics.horizontalAdvance(text) / 2, type(tl).token_x(tl, i)  # unpatched
        if x - half >= last_right + LABEL_GAP_PX:
            want.append((i, text))
            last_right = x + half
    got = tl.getAxis("bottom")._tickLevels[0]
    assert [i for i, _ in got] == [i for i, _ in want]
    assert [t for _, t in got] == [t for _, t in want]
    assert 10 < len(got) < 400


def test_files_written_with_longer_rows_of_tiles_still_open(tmp_path, monkeypatch):
    """The row block is the header's: files written with 16 tokens per row (before it became
    4) read the same maps."""
    ex = synthetic_explanation("video", n_frames=14, width=64, height=48, n_answer=37)
    monkeypatch.setattr(store, "ROW_BLOCK", 16)
    path = store.save_chunked(ex, tmp_path / "old.tam.npz")
    monkeypatch.undo()
    back = Explanation.load(path)
    assert back.answer.maps.shape == ex.answer.maps.shape
    for k in (0, 15, 16, 36):
        np.testing.assert_array_equal(back.vision_vector(k), ex.answer.maps[k])
    np.testing.assert_array_equal(back.answer.maps, ex.answer.maps)


def test_new_content_is_painted_in_stages_and_all_of_it_shows(qtbot, main_window, long_video):
    back, _ = long_video
    pane = main_window.pane
    staged = [pane.media_view, pane.answer_strip, pane.prompt_strip, pane.timeline,
              pane.frame_controls]
    main_window.show_explanation(back)
    # Painted one at a time (the media view first) once the work of showing it is done, and
    # none is left out.
    assert not any(w.updatesEnabled() for w in staged)
    qtbot.waitUntil(lambda: all(w.updatesEnabled() for w in staged), timeout=5_000)
    assert pane.answer_strip.count == back.n_answer


def test_a_burst_of_switches_lays_the_text_map_out_once_for_the_last_token(
        qtbot, main_window, long_video, monkeypatch):
    back, ex = long_video
    main_window.show_explanation(back)
    pane, st = main_window.pane, main_window.state
    qtbot.waitUntil(lambda: not pane.text_map.pending, timeout=5_000)
    laid_out = []
    monkeypatch.setattr(pane.text_map, "setHtml",
                        lambda html, f=pane.text_map.setHtml: laid_out.append(1) or f(html))
    from PySide6.QtWidgets import QApplication

    for k in (5, 120, 260):   # each painted before the next, as keys held down
        st.set_token(k)
        main_window.repaint()
        QApplication.processEvents()   # one pass of the event loop between two switches
    assert laid_out == []
    qtbot.waitUntil(lambda: not pane.text_map.pending, timeout=5_000)
    assert laid_out == [1]
    assert f"Answer token 261 / {ex.n_answer}" in pane.text_map.toPlainText()


def test_evidence_flags_are_computed_once_per_explanation(monkeypatch):
    from tam_desktop.models import evidence
    from tam_engine.core.flags import evidence_flags

    ex = synthetic_explanation("image", width=32, height=24, n_answer=40)
    calls = []
    monkeypatch.setattr(evidence, "evidence_flags",
                        lambda *a, **k: calls.append(1) or evidence_flags(*a, **k))
    assert evidence.prepare_for_view(ex) is ex
    flags = evidence.answer_flags(ex)
    assert evidence.answer_flags(ex) is flags and calls == [1]
    want = evidence_flags(ex.answer, ex.special())
    np.testing.assert_array_equal(flags.flagged, want.flagged)
    other = synthetic_explanation("image", width=32, height=24, n_answer=40)
    evidence.answer_flags(other)   # another explanation: its own flags
    assert calls == [1, 1]
