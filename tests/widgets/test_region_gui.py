"""Region query in the windows: a box dragged on the media ranks the answer tokens, the best
are marked in the strip and the timeline, a row picks its token, Esc clears; compare mode
queries both sides."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QApplication

from tam_engine.core.explanation import Explanation
from tam_engine.core.explanation_store import save_chunked
from tam_engine.core.region import rank_region
from tam_engine.core.token_maps import TokenMaps
from tam_engine.testing.synthetic import compare_pair, synthetic_explanation

W, H = 96, 72   # synthetic_explanation's frame here; its grid is 6 x 8 cells of 12 x 12 px


def with_corner_token(ex: Explanation, k: int = 3) -> Explanation:
    """``ex`` with token ``k``'s map all in the top-left 2 x 2 cells (24 x 24 px)."""
    tm = ex.answer
    maps = tm.maps.copy()
    g = ex.grids[0]
    corner = np.zeros((g.t, g.h, g.w), np.uint8)
    corner[:, :2, :2] = 255
    maps[k] = corner.reshape(-1)
    answer = TokenMaps(kind="answer", token_ids=tm.token_ids, positions=tm.positions,
                       texts=tm.texts, maps=maps, alpha=tm.alpha, relevance=tm.relevance,
                       context=tm.context, norm_lo=tm.norm_lo, norm_hi=tm.norm_hi)
    return dataclasses.replace(ex, answer=answer)


def _send(widget, kind, pos: QPoint, button, buttons, modifiers) -> None:
    ev = QMouseEvent(kind, QPointF(pos), QPointF(widget.mapToGlobal(pos)), button, buttons,
                     modifiers)
    QApplication.sendEvent(widget, ev)


def drag_box(qtbot, media_view, box, modifiers=Qt.KeyboardModifier.NoModifier) -> None:
    """A left drag over ``box`` (frame pixels) on the media view, as the mouse does it."""
    vb, gv = media_view.view_box, media_view.graphics
    x0, y0, x1, y1 = box

    def at(x, y) -> QPoint:
        return gv.mapFromScene(vb.mapViewToScene(QPointF(x, y)))

    port, left, none = gv.viewport(), Qt.MouseButton.LeftButton, Qt.MouseButton.NoButton
    start, end = at(x0, y0), at(x1, y1)
    _send(port, QMouseEvent.Type.MouseButtonPress, start, left, left, modifiers)
    for f in np.linspace(0.1, 1.0, 8):
        p = QPoint(round(start.x() + f * (end.x() - start.x())),
                   round(start.y() + f * (end.y() - start.y())))
        _send(port, QMouseEvent.Type.MouseMove, p, none, left, modifiers)
        qtbot.wait(5)
    _send(port, QMouseEvent.Type.MouseButtonRelease, end, left, none, modifiers)
    qtbot.wait(10)


@pytest.fixture
def shown(qtbot, main_window):
    ex = with_corner_token(synthetic_explanation("image", width=W, height=H))
    main_window.show_explanation(ex)
    main_window.resize(1400, 900)
    qtbot.wait(50)
    return main_window, ex


def test_a_dragged_box_ranks_marks_and_picks_tokens(qtbot, shown):
    w, ex = shown
    pane = w.pane
    assert not pane.region_panel.isVisible()
    w.act_region.trigger()                       # View > Query a Region
    assert w.act_region.isChecked() and pane.media_view.view_box.region_mode
    drag_box(qtbot, pane.media_view, (30, 30, -5, -5))   # up-left, past the corner: clipped
    q = pane.region
    assert q.box is not None
    np.testing.assert_allclose(q.box, (0, 0, 30, 30), atol=1.0)   # screen pixels round
    r = q.ranking
    assert r is not None and int(r.order[0]) == 3 and r.share[3] == pytest.approx(1.0)
    expected = rank_region(ex, q.box)
    np.testing.assert_array_equal(r.order, expected.order)
    # The ranking is shown, and the best tokens are marked in the strip and the timeline.
    assert pane.region_panel.isVisible()
    table = pane.region_panel.table
    assert table.item(0, 0).text() == "1" and table.item(0, 1).text() == "token 4"
    assert table.item(0, 3).text() == "100.0%"
    marked = q.marked()
    assert marked[0] == 3 and len(marked) == 5
    assert pane.answer_strip.canvas.highlighted == marked
    xs, _ = pane.timeline.region_marks.getData()
    assert list(xs) == marked
    # A row picks its token.
    second = int(r.order[1])
    table.cellClicked.emit(1, 2)
    assert w.state.token == second and w.state.selection == (second,)
    # Esc clears the region and leaves region mode.
    w.act_cancel.trigger()
    assert q.box is None and q.ranking is None and not w.act_region.isChecked()
    assert not pane.region_panel.isVisible()
    assert pane.answer_strip.canvas.highlighted == []
    assert list(pane.timeline.region_marks.getData()[0]) == []
    assert not pane.media_view.view_box.region.isVisible()


def test_shift_drag_queries_without_the_mode_and_a_plain_drag_pans(qtbot, shown):
    w, _ = shown
    pane = w.pane
    before = pane.media_view.view_box.viewRange()
    drag_box(qtbot, pane.media_view, (10, 10, 40, 30))
    assert pane.region.box is None
    assert pane.media_view.view_box.viewRange() != before   # panned
    drag_box(qtbot, pane.media_view, (40, 30, 10, 10), Qt.KeyboardModifier.ShiftModifier)
    assert pane.region.box is not None and pane.region.ranking is not None
    x0, y0, x1, y1 = pane.region.box
    assert x0 < x1 and y0 < y1    # dragged up-left: ordered


def test_a_box_past_the_frame_is_clipped_and_one_outside_is_ignored(qtbot, shown):
    w, _ = shown
    view = w.pane.media_view
    view.region_drawn.emit((0.0, 0.0, 1.0, 1.0))
    view._on_region_drawn((-50.0, -50.0, -10.0, -10.0))   # entirely outside: nothing
    assert w.pane.region.box == (0.0, 0.0, 1.0, 1.0)
    view._on_region_drawn((80.0, 60.0, 500.0, 500.0))
    assert w.pane.region.box == (80.0, 60.0, W, H)


def test_video_re_ranks_when_the_frame_changes_slot(qtbot, main_window):
    ex = synthetic_explanation("video", n_frames=6, width=W, height=H)
    main_window.show_explanation(ex)
    q = main_window.pane.region
    q.set_box((0, 0, 48, 36))
    first = q.ranking
    assert first is not None and first.slot == 0
    main_window.state.cursor.set_frame(1)            # same slot: the same ranking object
    assert q.ranking is first
    main_window.state.cursor.set_frame(4)
    assert q.ranking is not first and q.ranking.slot == 2 and q.ranking.frame == 4
    np.testing.assert_allclose(q.ranking.share, rank_region(ex, (0, 0, 48, 36), frame=4).share)
    main_window.state.display.layer = "thumbnail"    # a layer change re-ranks too (same here)
    assert q.ranking.layer == "thumbnail"


def test_maps_still_in_a_file_are_ranked_off_the_ui_thread(qtbot, main_window, tmp_path):
    ex = synthetic_explanation("video", n_frames=6, width=W, height=H, n_answer=40)
    back = Explanation.load(save_chunked(ex, tmp_path / "v.tam.npz"))
    main_window.show_explanation(back)
    q = main_window.pane.region
    q.set_box((0, 0, 48, 36))
    assert q.pending and "ranking" in main_window.pane.region_panel.summary.text()
    qtbot.waitUntil(lambda: q.ranking is not None, timeout=10_000)
    assert not q.pending
    np.testing.assert_allclose(q.ranking.share, rank_region(ex, (0, 0, 48, 36)).share)


def test_compare_mode_queries_both_models_on_the_same_box(qtbot, compare_window):
    w = compare_window()
    a, b = compare_pair()
    w.show_explanations(a, b)
    w.act_region.trigger()
    assert all(p.media_view.view_box.region_mode for p in w.panes.values())
    drag_box(qtbot, w.pane_b.media_view, (0, 0, 48, 36))
    box = w.pane_b.region.box
    assert box is not None and w.pane_a.region.box == box
    for side, ex in (("a", a), ("b", b)):
        r = w.panes[side].region.ranking
        assert r is not None
        np.testing.assert_array_equal(r.order, rank_region(ex, box).order)
        assert w.panes[side].region_panel.isVisible()
        assert w.panes[side].answer_strip.canvas.highlighted == r.top(5)
    w.act_cancel.trigger()                         # Esc clears both
    assert w.pane_a.region.box is None and w.pane_b.region.box is None
    assert not w.act_region.isChecked()
