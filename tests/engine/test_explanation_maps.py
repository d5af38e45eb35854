"""Map lookups of ``Explanation``: the temporal slot of a frame, selection maps, strengths."""

from __future__ import annotations

import numpy as np

from tam_engine.compare.comparison import selection_frame_map
from tam_engine.testing.synthetic import synthetic_explanation


def test_slot_of_frame_follows_the_media_and_clamps_both_ways():
    ex = synthetic_explanation("video", n_frames=6)        # slots 0 0 1 1 2 2, grid t = 3
    assert ex.grids[0].t == 3
    assert [ex.slot_of_frame(0, f) for f in range(6)] == [0, 0, 1, 1, 2, 2]
    assert ex.slot_of_frame(0, 99) == 2                    # past the end: the last frame
    assert ex.slot_of_frame(0, -3) == 0
    # Frames of another sampling than the grid's (a slot past the grid): its last slot.
    ex.media[0].frame_slot = np.array([0, 1, 2, 3, 4, 5])
    assert [ex.slot_of_frame(0, f) for f in range(6)] == [0, 1, 2, 2, 2, 2]
    # No grid for that media item: the media's slot as is; no stored media: slot 0.
    assert ex.slot_of_frame(1, 4) == 0
    ex.media = []
    assert ex.slot_of_frame(0, 5) == 0


def test_frame_maps_of_tokens_and_phrases_use_that_slot():
    ex = synthetic_explanation("video", n_frames=6)
    for f in range(6):
        slot = ex.slot_of_frame(0, f)
        assert np.array_equal(ex.frame_map(4, 0, f), ex.grid_maps(4)[0][slot])
        phrase = ex.combined_grid_maps([2, 3], "max")[0][slot]
        assert np.array_equal(selection_frame_map(ex, [2, 3], 0, f, "max"), phrase)
    assert np.array_equal(ex.selection_grid_maps([4])[0], ex.grid_maps(4)[0])
    assert np.array_equal(ex.selection_grid_maps([2, 3], "max")[0],
                          ex.combined_grid_maps([2, 3], "max")[0])


def test_frame_strengths_are_the_mean_map_of_each_frame():
    ex = synthetic_explanation("video", n_frames=6)
    s = ex.frame_strengths([4])
    want = [ex.frame_map(4, 0, f).mean() / 255.0 for f in range(6)]
    np.testing.assert_allclose(s, want, rtol=1e-6)
    assert s.dtype == np.float32 and s[0] == s[1] and s[2] == s[3]
    phrase = ex.frame_strengths([2, 3, 4], how="max", n_frames=8)   # more frames shown
    grid = ex.combined_grid_maps([2, 3, 4], "max")[0]
    assert phrase.shape == (8,)
    assert phrase[7] == np.float32(grid[2].mean() / 255.0)       # shows the last frame's slot
