"""The demo trainer's inputs and grounding targets (training itself never runs in CI)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "training"))
import demo_inputs as di  # noqa: E402
import train_demo_model as tdm  # noqa: E402

from tam_engine.demo import synth  # noqa: E402


@pytest.mark.parametrize("grid", [8, 12])
def test_coverage_is_the_covered_fraction_of_each_cell(grid):
    rng = np.random.default_rng(grid)
    mask = rng.random((224, 224)) < 0.3
    cov = di.coverage(mask, grid)
    assert cov.shape == (1, grid, grid)
    assert cov.min() >= 0 and cov.max() <= 1
    # every pixel is shared out over the cells: the cell average is the mask average
    assert cov.mean() == pytest.approx(mask.mean(), abs=1e-6)
    full = di.coverage(np.ones((224, 224), bool), grid)
    np.testing.assert_allclose(full, 1.0, atol=1e-6)
    # a block exactly on the first cell of an 8 x 8 grid
    block = np.zeros((224, 224), bool)
    block[:28, :28] = True
    c8 = di.coverage(block, 8)[0]
    assert c8[0, 0] == 1.0 and c8.sum() == 1.0


def test_centre_cover_marks_cells_whose_centre_is_inside():
    mask = np.zeros((224, 224), bool)
    mask[14, 42] = True  # the centre pixel of cell (0, 1) of an 8 x 8 grid
    t = di.centre_cover(mask, 8)[0]
    assert t[0, 1] == 1 and t.sum() == 1
    video = np.zeros((4, 224, 224), bool)
    video[1, 14, 14] = True  # second frame of the first temporal slot
    tv = di.centre_cover(video, 8)
    assert tv.shape == (2, 8, 8) and tv[0, 0, 0] == 1 and tv.sum() == 1


def test_word_targets_follow_the_objects():
    scene = synth.make_image_scene(34, n_objects=3)
    b = di.Batcher.__new__(di.Batcher)
    b.grid, b.hard, b.centre = 12, 0.25, False
    tgt = b.word_targets(scene)
    assert tgt.shape == (144, len(synth.CAPTION_WORDS))
    for o in scene.objects:
        j = synth.CAPTION_WORDS.index(o.color)
        assert tgt[:, j].sum() >= 1
    absent = [w for w in ("red", "yellow", "orange") if w not in {o.color for o in scene.objects}]
    for w in absent:
        assert tgt[:, synth.CAPTION_WORDS.index(w)].sum() == 0


def test_video_targets_ground_only_the_words_the_caption_says():
    b = di.Batcher.__new__(di.Batcher)
    b.grid, b.hard, b.centre = 12, 0.25, False
    moves = synth.CAPTION_WORDS.index("moves")
    for seed in range(4):
        for captions in ("motion", "objects"):
            v = synth.make_video_scene(seed, captions=captions)
            tgt = b.word_targets(v)
            assert tgt.shape == (4 * 144, len(synth.CAPTION_WORDS))
            for o in v.objects:
                direction = tgt[:, synth.CAPTION_WORDS.index(o.direction)]
                colour = tgt[:, synth.CAPTION_WORDS.index(o.color)]
                # Each temporal slot of the clip marks the object in that slot.
                assert (colour.reshape(4, -1).sum(axis=1) >= 1).all()
                assert (direction.sum() > 0) == (captions == "motion")
            assert tgt[:, moves].sum() == 0  # "moves" names no region


@pytest.mark.slow
def test_fast_batches_equal_the_real_processor_at_the_default_size():
    processor = tdm.build_processor(336)
    tdm.check_against_processor(di.Batcher(processor, 336, 0.25))
