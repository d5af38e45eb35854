"""The shared geometry-oracle helpers (tam_engine.testing.geometry) judge grids correctly."""

from __future__ import annotations

import numpy as np
import pytest

from tam_engine.core.spans import VisionGrid
from tam_engine.testing.geometry import (
    CASE_SIZES,
    SQUARE,
    assert_grid_sees_square,
    block_means,
    case_media,
    per_grid,
    snapped_square,
)


def _grid(h: int, w: int, box=(0.0, 0.0, 1.0, 1.0), t: int = 1) -> VisionGrid:
    return VisionGrid("image", 0, t, h, w, np.arange(t * h * w), box=box)


@pytest.mark.parametrize("case", list(CASE_SIZES))
def test_case_media_draws_the_square(case):
    items = case_media(case)
    assert len(items) == (2 if case == "two" else 1)
    for item, (h, w) in zip(items, CASE_SIZES[case]):
        assert item.frames.shape[1:3] == (h, w)
        frame = item.frames[0].mean(axis=-1) / 255
        x0, y0, x1, y1 = snapped_square(h, w)
        inside = frame[round(y0 * h):round(y1 * h), round(x0 * w):round(x1 * w)]
        assert inside.min() == 1.0 and frame.sum() == inside.sum()


def test_a_right_grid_passes_and_a_stretched_one_fails():
    # A 60x180 frame, seen through a centre crop of its middle third (as LLaVA-1.5 does).
    frame = case_media("wide")[0].frames[0].mean(axis=-1) / 255
    crop = frame[:, 60:120]
    bright = block_means(crop, 6, 6)
    assert_grid_sees_square(_grid(6, 6, box=(1 / 3, 0.0, 2 / 3, 1.0)), bright,
                            square=snapped_square(60, 180))
    with pytest.raises(AssertionError, match="misses the square|predicts"):
        assert_grid_sees_square(_grid(6, 6), bright, square=snapped_square(60, 180))


def test_per_grid_splits_in_sequence_order_and_checks_every_slot():
    grids = [_grid(2, 2), _grid(3, 3, t=2)]
    parts = per_grid(grids, np.arange(4 + 18))
    assert [p.shape for p in parts] == [(1, 2, 2), (2, 3, 3)]
    assert parts[1][1, 0, 0] == 13
    bright = np.zeros((2, 4, 4))
    bright[0] = block_means(case_media("square")[0].frames[0].mean(axis=-1) / 255, 4, 4)
    with pytest.raises(AssertionError, match="slot 1"):
        assert_grid_sees_square(_grid(4, 4, t=2), bright, square=SQUARE)
