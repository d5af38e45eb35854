"""Engine unit tests: phrase maps, switches, edge shapes, input types, score-table reuse."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_engine_reference import run_both

from tam_engine.core.engine import explain, explain_from_scores, score_table
from tam_engine.core.explanation import TamOptions
from tam_engine.testing.synthetic import synthetic_inputs


def _inputs(seed: int = 5, **kw):
    params = dict(d=10, vocab=9, grids=((1, 4, 5), (2, 3, 3)), n_prompt=4, n_answer=6,
                  values="gaussian", bias=True)
    params.update(kw)
    return synthetic_inputs(np.random.default_rng(seed), **params)


# ----------------------------------------------------------------------------- phrase maps
def test_phrase_map_mean_and_max():
    expl = explain(_inputs())
    idx = [1, 3, 4]
    rows = expl.answer.filtered[idx].astype(np.float64)
    mean = expl.combined_vector(idx, "mean")
    assert mean.dtype == np.uint8
    np.testing.assert_array_equal(mean, np.floor(255 * rows.mean(axis=0)).astype(np.uint8))
    # floor is monotone, so the max phrase map is the max of the tokens' uint8 maps.
    np.testing.assert_array_equal(expl.combined_vector(idx, "max"),
                                  expl.answer.maps[idx].max(axis=0))
    # One token: its own map.
    np.testing.assert_array_equal(expl.combined_vector([2], "mean"), expl.answer.maps[2])
    np.testing.assert_array_equal(expl.combined_vector(np.array([2]), "max"),
                                  expl.answer.maps[2])


def test_phrase_grid_maps_split_per_grid():
    expl = explain(_inputs())
    grids = expl.combined_grid_maps([0, 5], "max")
    assert [g.shape for g in grids] == [(1, 4, 5), (2, 3, 3)]
    np.testing.assert_array_equal(np.concatenate([g.ravel() for g in grids]),
                                  expl.combined_vector([0, 5], "max"))


def test_grid_slices_have_one_layout_for_inputs_and_explanation():
    from tam_engine.core.spans import grid_slices

    inputs = _inputs()
    expl = explain(inputs)
    want = [slice(0, 20), slice(20, 38)]                 # (1, 4, 5) then (2, 3, 3)
    assert grid_slices(inputs.spans.grids) == inputs.spans.grid_slices == expl.grid_slices == want
    assert grid_slices([]) == []
    # The layout is that of vision_positions: a grid's slice picks its own positions.
    for g, s in zip(inputs.spans.grids, inputs.spans.grid_slices):
        np.testing.assert_array_equal(inputs.spans.vision_positions[s], g.positions)
    # grid_maps cut each token's vector along those slices.
    for g, s, m in zip(expl.grids, expl.grid_slices, expl.grid_maps(3)):
        np.testing.assert_array_equal(m, expl.answer.maps[3, s].reshape(g.t, g.h, g.w))


def test_phrase_map_of_prompt_tokens_and_bad_requests():
    expl = explain(_inputs())
    np.testing.assert_array_equal(expl.combined_vector([0, 1], "max", kind="prompt"),
                                  expl.prompt.maps[[0, 1]].max(axis=0))
    with pytest.raises(ValueError):
        expl.combined_vector([], "mean")
    with pytest.raises(ValueError):
        expl.combined_vector([0], "median")


# ----------------------------------------------------------------------------- switches
def test_eci_off_keeps_the_raw_map_and_filter_off_keeps_the_normalised_map():
    inputs = _inputs()
    expl = explain(inputs, TamOptions(eci=False, filter=False))
    np.testing.assert_array_equal(expl.answer.eci, expl.answer.raw)
    assert not expl.answer.alpha.any()
    tm = expl.answer
    for k in range(len(tm)):
        lo, hi = float(tm.norm_lo[k]), float(tm.norm_hi[k])
        want = (tm.eci[k].astype(np.float64) - lo) / (hi - lo) if hi > lo else 0 * tm.eci[k]
        np.testing.assert_allclose(tm.filtered[k], want, rtol=1e-5, atol=1e-6)


def test_eci_changes_maps_when_context_is_relevant():
    inputs = _inputs()
    on, off = explain(inputs, TamOptions(eci=True)), explain(inputs, TamOptions(eci=False))
    assert (on.answer.alpha > 0).any()
    assert not np.array_equal(on.answer.eci, off.answer.eci)
    assert (on.answer.eci <= on.answer.raw + 1e-6).all()  # ECI only removes activation


def test_score_table_reused_across_options_equals_explain():
    inputs = _inputs()
    table = score_table(inputs)
    for opts in (TamOptions(), TamOptions(eci=False), TamOptions(kernel_size=5),
                 TamOptions(filter=False, explain_prompt=False)):
        a = explain_from_scores(inputs, table, opts)
        b = explain(inputs, opts)
        np.testing.assert_array_equal(a.answer.maps, b.answer.maps)
        assert a.options == opts


# ----------------------------------------------------------------------------- edge shapes
def test_text_only_generation_has_empty_maps():
    expl, _ = run_both(_inputs(grids=()), TamOptions())
    assert expl.answer.maps.shape == (6, 0) and expl.n_vision == 0
    assert expl.answer.visual_strength().tolist() == [0.0] * 6


def test_no_answer_tokens():
    expl, _ = run_both(_inputs(n_answer=0), TamOptions())
    assert expl.n_answer == 0 and expl.answer.maps.shape == (0, 38)
    assert len(expl.prompt) == 4


def test_no_prompt_tokens_and_single_cells():
    run_both(_inputs(n_prompt=0, grids=((1, 1, 1), (3, 1, 1))), TamOptions(kernel_size=5))


# ----------------------------------------------------------------------------- input types
def test_bfloat16_and_float16_hidden_states():
    ref = _inputs(values="dyadic")  # multiples of 1/4: exact in bfloat16 and float16
    want = explain(ref)
    for dtype in (torch.bfloat16, torch.float16):
        inputs = _inputs(values="dyadic")
        inputs.hidden = torch.as_tensor(inputs.hidden).to(dtype)
        inputs.lm_weight = torch.as_tensor(inputs.lm_weight).to(dtype)
        inputs.lm_bias = torch.as_tensor(inputs.lm_bias).to(dtype)
        got = explain(inputs)
        np.testing.assert_array_equal(got.answer.maps, want.answer.maps)
        np.testing.assert_array_equal(got.prompt.raw, want.prompt.raw)


def test_inputs_are_not_modified():
    inputs = _inputs()
    before = (inputs.ids.copy(), np.array(inputs.hidden).copy(), list(inputs.token_texts))
    explain(inputs)
    np.testing.assert_array_equal(inputs.ids, before[0])
    np.testing.assert_array_equal(np.array(inputs.hidden), before[1])
    assert inputs.token_texts == before[2]


def test_outputs_are_float32_maps_uint8_and_in_range():
    expl = explain(_inputs())
    for tm in (expl.answer, expl.prompt):
        for name in ("raw", "eci", "filtered", "alpha", "relevance", "norm_lo", "norm_hi"):
            assert getattr(tm, name).dtype == np.float32, name
        assert tm.maps.dtype == np.uint8 and tm.context.dtype == bool
        assert (tm.filtered >= 0).all() and (tm.filtered <= 1).all()
        np.testing.assert_array_equal(tm.maps, np.floor(255 * tm.filtered.astype(np.float64)))
        # Relevances outside a token's context are zero (answer tokens never see j >= k).
        assert not tm.relevance[~tm.context].any()
