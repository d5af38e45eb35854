"""The rank Gaussian filter (TAM-METHOD section 6): hand cases, limits, and the reference."""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from tam_engine.core.filters import MERGE3x3, rank_gaussian_filter
from tam_engine.testing.reference import rank_gaussian_cell, rank_gaussian_map, reflect_index


def _strict():
    """Raise on any float trouble except underflow (exp of a very negative number is 0)."""
    return np.errstate(divide="raise", over="raise", invalid="raise", under="ignore")


def _by_hand(window: list[float]) -> float:
    """Section 6 written out once more, for a single window."""
    v = sorted(window)
    n = len(v)
    mu = sum(v) / n
    sd = math.sqrt(sum((x - mu) ** 2 for x in v) / n)
    sigma = sd / mu
    g = [math.exp(-((r - (n - 1) / 2) ** 2) / (2 * sigma**2)) for r in range(n)]
    return sum(a * b for a, b in zip(g, v)) / sum(g)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_flat_map_gives_its_value(dtype):
    for value in (0.37, 1.0, 1e-30, 5.0):
        out = rank_gaussian_filter(np.full((4, 5), value), 3, dtype=dtype)
        np.testing.assert_array_equal(out, np.full((4, 5), value, dtype=dtype))


def test_flat_window_gives_its_median_not_nan():
    # Every window of the 3x3 centre of this map holds the same values -> sd = 0 there.
    m = np.full((5, 5), 0.25)
    with _strict():
        out = rank_gaussian_filter(m, 5)
    np.testing.assert_array_equal(out, m)


@pytest.mark.parametrize("kernel_size", [3, 5])
def test_windows_with_mean_at_most_zero_give_zero(kernel_size):
    np.testing.assert_array_equal(rank_gaussian_filter(np.zeros((6, 6)), kernel_size), 0.0)
    # Negative means (possible for a general map) also give 0, not a negative weight mess.
    m = -np.arange(36, dtype=np.float64).reshape(6, 6) - 1
    np.testing.assert_array_equal(rank_gaussian_filter(m, kernel_size), 0.0)
    # Mean exactly 0 with spread: 0 as well.
    z = np.array([[1.0, -1.0, 1.0], [-1.0, 0.0, -1.0], [1.0, -1.0, 1.0]])
    assert rank_gaussian_filter(z, 3)[1, 1] == 0.0


def test_high_variation_window_is_close_to_its_mean():
    # Centre window: four -1, four +1 and 0.009 -> mean 0.001, sd ~0.94, sigma ~940: the
    # Gaussian over ranks is nearly flat, so the output is nearly the mean.
    m = np.array([[-1.0, 1.0, -1.0], [1.0, 0.009, 1.0], [-1.0, 1.0, -1.0]])
    out = rank_gaussian_filter(m, 3)[1, 1]
    assert out == pytest.approx(0.001, abs=1e-6)


def test_low_variation_window_is_close_to_its_median():
    # A small spread around 0.5 (sigma ~0.006): weights off the centre rank vanish.
    rng = np.random.default_rng(0)
    window = 0.5 + rng.uniform(-0.005, 0.005, size=9)
    m = window.reshape(3, 3)
    out = rank_gaussian_filter(m, 3)[1, 1]
    assert out == np.median(window)


def test_one_hand_computed_window():
    m = np.array([[0.1, 0.9, 0.3], [0.4, 0.0, 0.6], [0.2, 0.8, 0.5]])
    expected = _by_hand(m.ravel().tolist())
    for dtype, tol in ((np.float64, 1e-14), (np.float32, 1e-6)):
        assert rank_gaussian_filter(m, 3, dtype=dtype)[1, 1] == pytest.approx(expected, abs=tol)
    assert rank_gaussian_cell(m.ravel().tolist()) == pytest.approx(expected, abs=1e-15)


def test_borders_reflect_without_repeating_the_edge():
    m = np.arange(12, dtype=np.float64).reshape(3, 4) + 1
    # Corner (0, 0): rows 1, 0, 1 and columns 1, 0, 1 (numpy "reflect").
    window = [m[r, c] for r in (1, 0, 1) for c in (1, 0, 1)]
    assert rank_gaussian_filter(m, 3)[0, 0] == pytest.approx(_by_hand(window), abs=1e-14)


@pytest.mark.parametrize("n", [1, 2, 3, 5])
@pytest.mark.parametrize("pad", [1, 2, 4])
def test_reference_reflection_is_numpys(n, pad):
    row = np.arange(n) * 10
    want = np.pad(row, pad, mode="reflect")
    got = [row[reflect_index(i, n)] for i in range(-pad, n + pad)]
    np.testing.assert_array_equal(got, want)


def test_sorting_network_sorts_every_input():
    # 0-1 principle: a comparator network sorts everything iff it sorts all 0/1 inputs. The
    # filter sorts each row triple first, then merges the three sorted triples.
    for bits in itertools.product((0, 1), repeat=9):
        v = [b for r in range(3) for b in sorted(bits[3 * r:3 * r + 3])]
        for i, j in MERGE3x3:
            if v[i] > v[j]:
                v[i], v[j] = v[j], v[i]
        assert v == sorted(v)


def test_kernel_one_and_bad_arguments():
    m = np.array([[0.5, -1.0], [0.0, 2.0]])
    np.testing.assert_array_equal(rank_gaussian_filter(m, 1), np.maximum(m, 0))
    for k in (0, 2, 4, -3):
        with pytest.raises(ValueError):
            rank_gaussian_filter(m, k)
    with pytest.raises(ValueError):
        rank_gaussian_filter(np.zeros(4), 3)
    with pytest.raises(ValueError):
        rank_gaussian_filter(m, 3, dtype=np.int32)


@pytest.mark.parametrize("kernel_size", [3, 5])
def test_leading_axes_and_chunks_filter_each_map_on_its_own(kernel_size):
    rng = np.random.default_rng(1)
    maps = rng.random((7, 6, 29, 31))  # 42 maps, more cells than one chunk holds
    maps[0, 0] = 0.0
    maps[1, 2] = 0.5
    out = rank_gaussian_filter(maps, kernel_size)
    assert out.shape == maps.shape and out.dtype == np.float64
    for i, j in [(0, 0), (1, 2), (3, 4), (6, 5)]:
        np.testing.assert_allclose(out[i, j], rank_gaussian_filter(maps[i, j], kernel_size),
                                   rtol=0, atol=1e-15)
    out32 = rank_gaussian_filter(maps, kernel_size, dtype=np.float32)
    assert out32.dtype == np.float32
    np.testing.assert_allclose(out32, out, rtol=0, atol=2e-6)


def test_extreme_values_never_give_nan_or_warnings():
    rng = np.random.default_rng(2)
    maps = rng.random((6, 8, 8))
    maps[0] = 1e-300
    maps[1, ::2] = 0.0
    maps[2] *= 1e-200
    maps[3] = 1e150 * maps[3]
    maps[4, 3:5, 3:5] = 1.0 + 1e-15
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for k in (3, 5):
            for dtype in (np.float64, np.float32):
                x = maps if dtype == np.float64 else np.clip(maps, 0, 1e15)
                with _strict():
                    out = rank_gaussian_filter(x, k, dtype=dtype)
                assert np.isfinite(out).all()
                lo = x.reshape(6, -1).min(axis=1)[:, None, None]
                hi = x.reshape(6, -1).max(axis=1)[:, None, None]
                # A weighted mean of each window: within the map's range (or 0).
                assert (out >= np.minimum(lo, 0) * (1 + 1e-6)).all()
                assert (out <= hi * (1 + 1e-6)).all()


maps_st = st.integers(1, 7).flatmap(lambda h: st.integers(1, 7).flatmap(
    lambda w: arrays(np.float64, (h, w), elements=st.sampled_from(
        [0.0, 0.0, 0.1, 0.25, 0.25, 0.5, 0.999, 1.0, 1e-12, 0.3333333333333333]))))


@settings(max_examples=60, deadline=None)
@given(maps_st, st.sampled_from([3, 5]))
def test_matches_the_reference(m, k):
    """Repeated values (flat and near-flat windows), zeros and tiny values included."""
    want = np.array(rank_gaussian_map(m.tolist(), k))
    with _strict():
        got64 = rank_gaussian_filter(m, k)
        got32 = rank_gaussian_filter(m, k, dtype=np.float32)
    np.testing.assert_allclose(got64, want, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(got32, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shape", [(2, 2), (3, 5), (6, 4), (1, 5), (5, 1), (1, 1)])
@pytest.mark.parametrize("r", [1, 2])
def test_padding_is_numpys_reflect(shape, r):
    from tam_engine.core.filters import _reflect_pad

    x = np.random.default_rng(3).random((3,) + shape)
    want = np.pad(x, [(0, 0), (r, r), (r, r)], mode="reflect")
    np.testing.assert_array_equal(_reflect_pad(x, r, np.dtype(np.float64)), want)


def test_out_receives_the_same_result():
    rng = np.random.default_rng(8)
    m = rng.random((3, 2, 7, 9))
    for dtype in (np.float32, np.float64):
        out = np.full(m.shape, np.nan, dtype)
        got = rank_gaussian_filter(m, 3, dtype=dtype, out=out)
        np.testing.assert_array_equal(out, rank_gaussian_filter(m, 3, dtype=dtype))
        assert np.shares_memory(got, out)
    with pytest.raises(ValueError):
        rank_gaussian_filter(m, 3, dtype=np.float32, out=np.empty(m.shape, np.float64))
    with pytest.raises(ValueError):
        rank_gaussian_filter(m, 3, out=np.empty((3, 2, 9, 7)))
