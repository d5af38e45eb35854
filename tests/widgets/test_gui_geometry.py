"""The app draws each map only where its grids looked, with the layer choice of a tiled image."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from PySide6.QtCore import QPointF

from tam_desktop.main_window import MainWindow
from tam_desktop.models.playback import DisplayOptions
from tam_engine.core.placement import resize_map
from tam_engine.testing.synthetic import synthetic_explanation, tiled_explanation


def test_display_options_carry_the_layer():
    d, names = DisplayOptions(), []
    d.changed.connect(names.append)
    assert (d.layer, d.tile_borders) == ("fused", False)
    d.layer, d.tile_borders = "tiles", True
    assert names == ["layer", "tile_borders"]
    c = d.copy()
    assert (c.layer, c.tile_borders) == ("tiles", True) and c.changed is not d.changed
    try:
        d.layer = "both"
    except ValueError:
        pass
    else:
        raise AssertionError("an unknown layer must be refused")


def test_layer_choice_only_for_tiled_images_and_persisted(qtbot, no_gui_leaks,
                                                          gui_settings_path):
    w = MainWindow(settings_path=gui_settings_path)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    bar, mv, st = w.pane.display_bar, w.pane.media_view, w.state
    w.show_explanation(synthetic_explanation("image"))
    assert not bar.layer.isVisible() and not bar.tile_borders.isVisible()
    ex = tiled_explanation(width=160, height=96, tiles=(2, 3))
    w.show_explanation(ex)
    assert bar.layer.isVisible() and bar.tile_borders.isVisible()
    st.set_token(2)
    heat = {}
    for layer in ("tiles", "thumbnail", "fused"):
        bar.layer.setCurrentText(layer)
        assert st.display.layer == layer
        heat[layer] = mv.heat_image()
        assert np.array_equal(heat[layer], ex.placed_map(2, layer=layer,
                                                         size=heat[layer].shape[::-1]).values)
    assert not np.array_equal(heat["tiles"], heat["thumbnail"])
    assert np.array_equal(heat["thumbnail"], resize_map(ex.grid_maps(2)[6][0], (160, 96)))
    assert not any(item.isVisible() for item in mv.border_items)
    bar.tile_borders.setChecked(True)
    bar.layer.setCurrentText("tiles")
    rects = sorted((r.x(), r.y(), r.width(), r.height())
                   for r in (item.rect() for item in mv.border_items))
    assert len(rects) == 6 and rects[0] == (0.0, 0.0, 53.0, 48.0)
    w.close()
    w2 = MainWindow(settings_path=gui_settings_path)
    qtbot.addWidget(w2)
    assert (w2.state.display.layer, w2.state.display.tile_borders) == ("tiles", True)
    assert w2.pane.display_bar.layer.currentText() == "tiles"
    w2.close()


def test_a_centre_crop_is_drawn_over_the_crop_only(qtbot, main_window):
    ex = tiled_explanation(width=160, height=96, tiles=(1, 1), thumbnail=False)
    ex.grids = [dataclasses.replace(ex.grids[0], box=(0.25, 0.0, 0.75, 1.0), role="full")]
    main_window.show_explanation(ex)
    bar, mv = main_window.pane.display_bar, main_window.pane.media_view
    assert not bar.layer.isVisible()      # one grid: no layers to choose from
    path = mv.heat_clip.path()
    assert path.boundingRect().getRect() == (40.0, 0.0, 80.0, 96.0)
    assert not path.contains(QPointF(20, 50)) and path.contains(QPointF(80, 50))
    heat = mv.heat_image()
    assert np.array_equal(heat, ex.placed_map(0, size=(160, 96)).values)
    # The whole frame for an image seen whole, as before.
    main_window.show_explanation(synthetic_explanation("image", width=96, height=72))
    assert mv.heat_clip.path().boundingRect().getRect() == (0.0, 0.0, 96.0, 72.0)


def test_the_compare_window_follows_the_layer(qtbot, no_gui_leaks):
    from tam_desktop.app_context import AppContext
    from tam_desktop.compare.window import CompareWindow
    from tam_desktop.settings import AppSettings

    display = DisplayOptions(layer="thumbnail", tile_borders=True)
    w = CompareWindow(AppContext(AppSettings()), display=display)
    qtbot.addWidget(w)
    w.show()
    qtbot.waitExposed(w)
    a, b = tiled_explanation(seed=0), tiled_explanation(seed=3)
    w.show_explanations(a, b)
    assert (w.display.layer, w.display.tile_borders) == ("thumbnail", True)
    assert w.pane_a.display_bar.layer.isVisible()
    w.states["a"].set_token(1)
    shown = w.diff_view.diff.copy()
    assert np.allclose(shown, w.comparison.difference(
        w.states["a"].selection, w.states["b"].selection, size=shown.shape,
        layer="thumbnail"))
    w.display.layer = "tiles"
    assert not np.allclose(w.diff_view.diff, shown)
    w.close()


def test_stretch_spans_every_tile(qtbot, main_window):
    ex = tiled_explanation(width=160, height=96, tiles=(2, 3), seed=4)
    main_window.show_explanation(ex)
    main_window.state.set_token(1)
    bar = main_window.pane.display_bar
    bar.scale.setCurrentIndex(bar.scale.findData("token"))
    top = max(int(m.max()) for m in ex.grid_maps(1))
    assert list(main_window.pane.media_view.heat_item.levels) == pytest.approx([0, top / 255])
