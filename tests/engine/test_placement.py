"""Maps placed in the original frame (tam_engine.core.placement), on hand-built grids."""

from __future__ import annotations

import numpy as np
import pytest

from tam_engine.core.placement import (
    border_boxes,
    layer_members,
    natural_size,
    place,
    resize_map,
    strength,
)
from tam_engine.core.spans import VisionGrid

SIZE = (120, 60)  # (W, H)


def grid(h, w, box=(0.0, 0.0, 1.0, 1.0), role="full", t=1):
    return VisionGrid("image", 0, t, h, w, np.arange(t * h * w), box=box, role=role)


def tiled():
    """Two tiles side by side and a thumbnail over the whole frame."""
    return [grid(2, 2, (0.0, 0.0, 0.5, 1.0), "tile"), grid(2, 2, (0.5, 0.0, 1.0, 1.0), "tile"),
            grid(2, 4, role="thumbnail")]


def test_one_full_grid_is_the_plain_resize():
    rng = np.random.default_rng(0)
    m = rng.integers(0, 256, (3, 5), dtype=np.uint8)
    for layer in ("tiles", "thumbnail", "fused"):
        p = place([grid(3, 5)], [m], layer, SIZE)
        assert np.array_equal(p.values, resize_map(m, SIZE)) and p.covers_all
    assert strength([grid(3, 5)], [m], "fused") == pytest.approx(m.mean() / 255)


def test_tiles_are_stitched_into_their_boxes():
    left, right = np.full((2, 2), 40, np.uint8), np.full((2, 2), 200, np.uint8)
    thumb = np.zeros((2, 4), np.uint8)
    p = place(tiled(), [left, right, thumb], "tiles", SIZE)
    assert p.covers_all
    assert (p.values[:, :60] == 40).all() and (p.values[:, 60:] == 200).all()
    assert strength(tiled(), [left, right, thumb], "tiles") == pytest.approx(120 / 255)
    assert border_boxes(tiled(), "tiles") == [(0.0, 0.0, 0.5, 1.0), (0.5, 0.0, 1.0, 1.0)]


def test_thumbnail_layer_and_fused_mean():
    tiles = [np.full((2, 2), 40, np.uint8), np.full((2, 2), 200, np.uint8)]
    thumb = np.full((2, 4), 100, np.uint8)
    maps = [*tiles, thumb]
    p = place(tiled(), maps, "thumbnail", SIZE)
    assert (p.values == 100).all() and p.covers_all
    f = place(tiled(), maps, "fused", SIZE)
    assert (f.values[:, :60] == 70).all() and (f.values[:, 60:] == 150).all()
    assert strength(tiled(), maps, "fused") == pytest.approx((120 + 100) / 2 / 255)
    assert layer_members(tiled(), "fused") == [0, 1, 2]


def test_a_missing_layer_falls_back_to_the_other():
    grids = [grid(2, 2, (0.0, 0.0, 0.5, 1.0), "tile"), grid(2, 2, (0.5, 0.0, 1.0, 1.0), "tile")]
    assert layer_members(grids, "thumbnail") == [0, 1]


def test_a_centre_crop_leaves_its_margins_uncovered():
    g = grid(2, 2, (0.25, 0.0, 0.75, 1.0))
    p = place([g], [np.full((2, 2), 255, np.uint8)], "fused", SIZE)
    assert not p.coverage[:, :30].any() and not p.coverage[:, 90:].any()
    assert p.coverage[:, 30:90].all()
    assert (p.values[:, 30:90] == 255).all() and (p.values[:, :30] == 0).all()
    # the strength is the mean over what the grid saw, not diluted by the margins
    assert strength([g], [np.full((2, 2), 255, np.uint8)], "fused") == pytest.approx(1.0)
    assert border_boxes([g], "fused") == [(0.25, 0.0, 0.75, 1.0)]


def test_padding_beyond_the_frame_is_clipped():
    # A square pad of a 2:1 frame: the grid's box runs from -0.5 to 1.5 vertically; the top
    # and bottom quarters of its rows are padding the frame does not have.
    m = np.array([[10, 10], [20, 20], [30, 30], [40, 40]], np.uint8)
    g = grid(4, 2, (0.0, -0.5, 1.0, 1.5))
    p = place([g], [m], "fused", SIZE)
    assert p.covers_all
    assert p.values[0, 0] < p.values[-1, 0]
    assert set(np.unique(p.values[25:35, :])) <= set(range(18, 33))
    # Only the cells inside the frame count, each by the area it has there.
    assert strength([g], [m], "fused") == pytest.approx(25 / 255)


def test_a_grid_outside_the_frame_covers_nothing():
    p = place([grid(2, 2, (1.0, 0.0, 2.0, 1.0))], [np.ones((2, 2), np.uint8)], "fused", SIZE)
    assert not p.coverage.any() and not p.values.any()


def test_natural_size_follows_the_grid():
    assert natural_size([grid(3, 6)], 120) == (120, 60)
    assert natural_size([grid(4, 4, (0.25, 0.0, 0.75, 1.0))], 120) == (120, 60)


# ---------------------------------------------------------------- on explanations
def test_a_plain_explanation_places_exactly_its_frame_map():
    from tam_engine.testing.golden import build_explanation

    for expl in (build_explanation(), build_explanation(video=True)):
        m = expl.media[0]
        for f in range(m.n_frames):
            p = expl.placed_map(2, 0, f)
            assert p.covers_all
            assert np.array_equal(p.values, resize_map(expl.frame_map(2, 0, f), m.size))
        grid = expl.selection_grid_maps([1, 2])[0]
        old = (grid.reshape(grid.shape[0], -1).mean(axis=1) / 255.0)[
            [expl.slot_of_frame(0, f) for f in range(m.n_frames)]].astype(np.float32)
        assert np.array_equal(expl.frame_strengths([1, 2]), old)
        assert not expl.has_tiles()


def test_a_tiled_explanation_stitches_its_tiles(tmp_path):
    from tam_engine.core.explanation import Explanation
    from tam_engine.testing.synthetic import tiled_explanation

    expl = tiled_explanation(width=160, height=96, tiles=(2, 3), cells=4)
    assert expl.has_tiles() and expl.has_tiles(0)
    maps = expl.grid_maps(1)
    tiles = expl.placed_map(1, layer="tiles")
    for i in range(6):
        r, c = divmod(i, 3)
        want = resize_map(maps[i][0], (53 if c != 1 else 54, 48))
        x0 = round(c * 160 / 3)
        assert np.array_equal(tiles.values[48 * r:48 * (r + 1), x0:x0 + want.shape[1]], want)
    thumb = expl.placed_map(1, layer="thumbnail")
    assert np.array_equal(thumb.values, resize_map(maps[6][0], (160, 96)))
    fused = expl.placed_map(1, layer="fused")
    assert np.abs(fused.values.astype(int) - (tiles.values.astype(int) + thumb.values) / 2
                  ).max() <= 0.5
    sel = expl.placed_selection([0, 1], layer="tiles", size=(80, 48))
    assert sel.values.shape == (48, 80) and sel.covers_all
    s = {layer: expl.frame_strengths([1], layer=layer)[0]
         for layer in ("tiles", "thumbnail", "fused")}
    assert s["thumbnail"] == pytest.approx(maps[6].mean() / 255, abs=1e-6)
    assert s["fused"] == pytest.approx((s["tiles"] + s["thumbnail"]) / 2, abs=1e-6)
    back = Explanation.load(expl.save(tmp_path / "tiled.tam.npz"))
    assert np.array_equal(back.placed_map(1, layer="fused").values, fused.values)
