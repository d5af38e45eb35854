"""The evaluation metrics on hand-made cases with known answers."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from tam_engine.eval.masks import (
    decode_counts,
    encode_counts,
    mask_to_rle,
    polygons_to_mask,
    rle_to_mask,
    segmentation_to_mask,
)
from tam_engine.eval.metrics import (
    f1_iou,
    function_score,
    iou,
    meteor,
    object_score,
    otsu_threshold,
    precision_recall,
    resize_map,
    rouge_l,
)


# ------------------------------------------------------------------------------------ Otsu
def _brute_otsu(x: np.ndarray) -> set[int]:
    """Every threshold t maximising the between-class variance of (x <= t, x > t)."""
    x = x.astype(np.float64).ravel()
    best, arg = -1.0, set()
    for t in range(256):
        lo, hi = x[x <= t], x[x > t]
        if lo.size == 0 or hi.size == 0:
            continue
        v = lo.size * hi.size / x.size ** 2 * (lo.mean() - hi.mean()) ** 2
        if v > best + 1e-9:
            best, arg = v, {t}
        elif abs(v - best) <= 1e-9:
            arg.add(t)
    return arg


def test_otsu_splits_two_modes():
    x = np.array([10] * 50 + [200] * 30, dtype=np.uint8)
    t = otsu_threshold(x)
    assert 10 <= t < 200
    assert np.count_nonzero(x > t) == 30


def test_otsu_ties_take_the_lowest_threshold_like_scikit_image():
    # Splitting {0 | 22, 44} and {0, 22 | 44} are equally good; scikit-image's threshold_otsu
    # answers 0 here (checked against scikit-image 0.25 on 3000 random arrays: all agree).
    x = np.array([0, 0, 22, 22, 44, 44], np.uint8)
    assert otsu_threshold(x) == 0.0
    assert otsu_threshold(np.array([10, 10, 200], np.uint8)) == 10.0


def test_otsu_of_a_constant_map_gives_an_empty_foreground():
    for v in (0, 7, 255):
        x = np.full((5, 5), v, np.uint8)
        assert not np.any(x > otsu_threshold(x))


@settings(max_examples=60, deadline=None)
@given(arrays(np.uint8, st.integers(2, 60)))
def test_otsu_maximises_between_class_variance(x):
    expected = _brute_otsu(x)
    if not expected:                       # a constant array
        assert not np.any(x > otsu_threshold(x))
    else:
        assert int(otsu_threshold(x)) in expected


# ------------------------------------------------------------------------------------ IoU
def test_perfect_map_has_iou_one_and_empty_map_zero():
    mask = np.zeros((20, 30), bool)
    mask[5:12, 8:20] = True
    perfect = mask.astype(np.uint8) * 255
    s = object_score(perfect, mask)
    assert s["iou"] == 1.0 and s["precision"] == 1.0 and s["recall"] == 1.0
    empty = object_score(np.zeros_like(perfect), mask)
    assert empty["iou"] == 0.0 and empty["recall"] == 0.0


def test_block_map_upsampled_bilinear_still_finds_the_object():
    small = np.zeros((4, 4), np.uint8)
    small[1:3, 1:3] = 255
    mask = np.zeros((32, 32), bool)
    mask[8:24, 8:24] = True
    big = resize_map(small, mask.shape)
    assert big.shape == (32, 32) and big.dtype == np.uint8
    s = object_score(big, mask)
    # The bilinear ramp at the edges makes the Otsu foreground a little larger than the block.
    assert s["iou"] > 0.75 and s["recall"] > 0.95


def test_iou_precision_recall_by_hand():
    a = np.zeros((4, 4), bool)
    b = np.zeros((4, 4), bool)
    a[0, :] = True           # 4 pixels
    b[0, :2] = True          # 2 pixels, both inside a
    b[1, 0] = True           # 1 outside
    assert iou(a, b) == pytest.approx(2 / 5)
    p, r = precision_recall(a, b)
    assert p == pytest.approx(2 / 4) and r == pytest.approx(2 / 3)
    assert iou(np.zeros(3, bool), np.zeros(3, bool)) == 0.0


def test_function_word_with_a_dark_map_scores_one():
    assert function_score(np.zeros((7, 9), np.uint8), threshold=40.0) == 1.0
    assert function_score(np.full((7, 9), 200, np.uint8), threshold=40.0) == 0.0
    half = np.zeros((2, 4), np.uint8)
    half[0] = 255
    assert function_score(half, threshold=128.0) == 0.5


def test_f1_iou_is_the_harmonic_mean():
    assert f1_iou(0.5, 0.5) == pytest.approx(0.5)
    assert f1_iou(0.4, 0.8) == pytest.approx(2 * 0.4 * 0.8 / 1.2)
    assert f1_iou(0.0, 0.0) == 0.0


def test_video_volume_is_thresholded_as_one():
    mask = np.zeros((3, 8, 8), bool)
    mask[1, 2:6, 2:6] = True
    s = object_score(mask.astype(np.uint8) * 255, mask)
    assert s["iou"] == 1.0


# ------------------------------------------------------------------------------------ captions
def test_rouge_l_known_values():
    assert rouge_l("the cat sat on the mat", "the cat sat on the mat") == pytest.approx(1.0)
    # LCS 5, P = 1, R = 5/6, beta = 1.2
    p, r, b2 = 1.0, 5 / 6, 1.44
    assert rouge_l("the cat on the mat", "the cat sat on the mat") == pytest.approx(
        (1 + b2) * p * r / (r + b2 * p))
    assert rouge_l("dogs bark", "the cat sat") == 0.0
    assert rouge_l("", "the cat") == 0.0


def test_rouge_l_several_references_take_the_best_precision_and_recall():
    one = rouge_l("a red circle", ["a red circle", "something else entirely here"])
    assert one == pytest.approx(1.0)


def test_rouge_l_ignores_case_and_punctuation():
    assert rouge_l("The cat, sat.", "the cat sat") == pytest.approx(1.0)


def test_meteor_known_values():
    # Identical 6 words: one chunk, penalty 0.5 * (1/6)^3.
    assert meteor("the cat sat on the mat", "the cat sat on the mat") == pytest.approx(
        1 - 0.5 / 216)
    # 5 matches in 2 chunks ("the cat" | "on the mat"): P = 1, R = 5/6.
    p, r = 1.0, 5 / 6
    fmean = p * r / (0.9 * p + 0.1 * r)
    assert meteor("the cat on the mat", "the cat sat on the mat") == pytest.approx(
        fmean * (1 - 0.5 * (2 / 5) ** 3))
    assert meteor("dogs bark", "the cat sat") == 0.0


def test_meteor_penalises_word_order():
    inorder = meteor("a red circle and a blue square", "a red circle and a blue square")
    shuffled = meteor("a blue square and a red circle", "a red circle and a blue square")
    assert shuffled < inorder
    # 7 matches; chunks: "a blue square" | "and" | "a red circle" -> 3
    assert shuffled == pytest.approx(1 - 0.5 * (3 / 7) ** 3)


def test_meteor_takes_the_best_reference():
    assert meteor("a dog", ["a cat", "a dog"]) == pytest.approx(meteor("a dog", "a dog"))


# ------------------------------------------------------------------------------------ masks
def test_uncompressed_rle_by_hand():
    # 3x2 image, column-major: column 0 = (0, 1, 1), column 1 = (1, 0, 0)
    rle = {"size": [3, 2], "counts": [1, 3, 2]}
    expected = np.array([[0, 1], [1, 0], [1, 0]], bool)
    assert np.array_equal(rle_to_mask(rle), expected)
    assert mask_to_rle(expected, compressed=False)["counts"] == [1, 3, 2]


def test_compressed_rle_by_hand():
    # Runs 32, 3, 7, 3, 7, 3, 7, 3, 7, 3, 25 of a 10x10 box: rows 2..4, columns 3..7.
    counts = [32, 3, 7, 3, 7, 3, 7, 3, 7, 3, 25]
    assert encode_counts(counts) == "P1370000000b0"
    assert decode_counts("P1370000000b0") == counts
    box = np.zeros((10, 10), bool)
    box[2:5, 3:8] = True
    assert np.array_equal(rle_to_mask({"size": [10, 10], "counts": "P1370000000b0"}), box)


@settings(max_examples=60, deadline=None)
@given(arrays(bool, st.tuples(st.integers(1, 25), st.integers(1, 25))))
def test_rle_round_trips(mask):
    for compressed in (True, False):
        assert np.array_equal(rle_to_mask(mask_to_rle(mask, compressed)), mask)


def test_rle_with_a_wrong_size_is_refused():
    with pytest.raises(ValueError):
        rle_to_mask({"size": [2, 2], "counts": [1, 1]})


def test_polygon_rectangle_covers_its_area():
    m = polygons_to_mask([[2, 2, 7, 2, 7, 5, 2, 5]], height=8, width=10)
    assert m[2:5, 2:7].all() and m.sum() == 5 * 3
    assert not polygons_to_mask([[1, 1, 2, 2]], 4, 4).any()      # degenerate: ignored


def test_polygon_areas_match_geometry():
    tri = polygons_to_mask([[0, 0, 40, 0, 0, 40]], 50, 50)
    assert abs(int(tri.sum()) - 800) <= 40
    a = np.linspace(0, 2 * np.pi, 100, endpoint=False)
    circle = np.c_[25 + 15 * np.cos(a), 25 + 15 * np.sin(a)].ravel().tolist()
    assert abs(int(polygons_to_mask([circle], 50, 50).sum()) - np.pi * 225) < 15
    # Two polygons of one object (an occluded object in two parts) are united; parts outside
    # the image are clipped.
    two = polygons_to_mask([[0, 0, 2, 0, 2, 2, 0, 2], [4, 4, 9, 4, 9, 9, 4, 9]], 6, 6)
    assert two.sum() == 4 + 4 and two[:2, :2].all() and two[4:, 4:].all()


def test_segmentation_dispatch():
    box = np.zeros((6, 6), bool)
    box[1:3, 1:4] = True
    assert np.array_equal(segmentation_to_mask(mask_to_rle(box), 6, 6), box)
    assert np.array_equal(segmentation_to_mask([mask_to_rle(box, False)], 6, 6), box)
    with pytest.raises(ValueError):
        segmentation_to_mask(mask_to_rle(box), 5, 6)
