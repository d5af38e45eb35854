"""The engine block by block (issue 16): chunked and unchunked runs against the reference, and
float stages produced on demand equal to the ones an eager run computes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_engine_reference import SETTINGS, assert_matches, cases

from tam_engine.core.engine import explain_from_scores, score_table
from tam_engine.core.explanation import TamOptions
from tam_engine.core.token_maps import FLOAT_STAGES
from tam_engine.testing.reference import reference_explain
from tam_engine.testing.synthetic import synthetic_inputs


def _run(inputs, options: TamOptions, chunk: int | None):
    return explain_from_scores(inputs, score_table(inputs), options, chunk_tokens=chunk)


@settings(max_examples=60, **SETTINGS)
@given(cases(), st.sampled_from([1, 2, 3]))
def test_chunked_and_unchunked_runs_match_the_reference(case, st_chunk):
    inputs, options = case
    ref = reference_explain(inputs, eci=options.eci, filter=options.filter,
                            kernel_size=options.kernel_size,
                            explain_prompt=options.explain_prompt)
    whole = _run(inputs, options, None)
    chunked = _run(inputs, options, st_chunk)
    for got in (whole, chunked):
        assert_matches(got.answer, ref.answer)
        if options.explain_prompt:
            assert got.prompt is not None and ref.prompt is not None
            assert_matches(got.prompt, ref.prompt)
    # The blocks only change the BLAS kernel's rounding of the interference (the ECI weights
    # are quotients, not exact even for dyadic inputs): raw maps are the same bits, the rest
    # agrees to float64 rounding before the float32 cast.
    for kind in ("answer", "prompt") if options.explain_prompt else ("answer",):
        a, b = whole.tokens(kind), chunked.tokens(kind)
        np.testing.assert_array_equal(a.stage("raw"), b.stage("raw"))
        for name in ("eci", "filtered"):
            np.testing.assert_allclose(a.stage(name), b.stage(name), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("chunk", [None, 1, 5, 64])
def test_stages_asked_later_equal_the_eager_run_bit_for_bit(chunk):
    rng = np.random.default_rng(3)
    inputs = synthetic_inputs(rng, d=16, vocab=12, grids=((3, 5, 6), (1, 4, 4)), n_prompt=6,
                              n_answer=23, values="gaussian", bias=True)
    expl = _run(inputs, TamOptions(), chunk)
    for tm in (expl.answer, expl.prompt):
        assert tm is not None and tm.source is not None
        # The uint8 maps kept while explaining are what the stage source produces again.
        again = np.concatenate([tm.source.chunk(c).maps for c in range(tm.source.n_chunks)])
        np.testing.assert_array_equal(again, tm.maps)
        # A short explanation keeps the stages computed while explaining (eager); the source
        # produces them again (lazy), whole or token by token in any order: the same bits.
        whole = {name: tm.stage(name) for name in FLOAT_STAGES}
        for name, arr in whole.items():
            assert arr.dtype == np.float32 and arr.shape == tm.maps.shape
            np.testing.assert_array_equal(tm.source.stage(name), arr)
        order = rng.permutation(len(tm))
        for k in order:
            for name in FLOAT_STAGES:
                np.testing.assert_array_equal(tm.source.rows(name, [int(k)])[0], whole[name][k])
                np.testing.assert_array_equal(expl.vision_vector(int(k), tm.kind, name),
                                              whole[name][k])
        # The uint8 maps are floor(255 * filtered), as the method says.
        np.testing.assert_array_equal(
            tm.maps, np.multiply(whole["filtered"], 255.0, dtype=np.float64).astype(np.uint8))
        np.testing.assert_array_equal(tm.map_rows(order), tm.maps[order])


def test_a_phrase_map_reads_the_filtered_stage_of_its_tokens_only():
    rng = np.random.default_rng(5)
    inputs = synthetic_inputs(rng, d=16, vocab=30, grids=((2, 6, 6),), n_prompt=3,
                              n_answer=40, values="gaussian")
    expl = _run(inputs, TamOptions(), 8)
    filtered = expl.answer.stage("filtered")
    for how in ("mean", "max"):
        want = getattr(filtered[[1, 17, 33]].astype(np.float64), how)(axis=0)
        np.testing.assert_array_equal(expl.combined_vector([1, 17, 33], how),
                                      (np.clip(want, 0, 1) * 255.0).astype(np.uint8))
    with pytest.raises(IndexError):
        expl.vision_vector(40, stage="eci")
    np.testing.assert_array_equal(expl.vision_vector(-1, stage="raw"), expl.answer.raw[-1])


@pytest.mark.parametrize("layer", ["tiles", "thumbnail", "fused"])
def test_frame_strengths_of_one_whole_frame_grid_equal_the_placed_means(layer):
    """The all-slots-at-once path of a single whole-frame grid gives what strength() gives
    frame by frame."""
    from tam_engine.core.placement import strength
    from tam_engine.testing.synthetic import synthetic_explanation

    expl = synthetic_explanation("video", n_frames=9, n_answer=6)
    g = expl.grids[0]
    for tokens in ([2], [0, 3, 5]):
        maps = expl.selection_grid_maps(tokens, "mean")
        want = [strength([g], [maps[0][min(expl._raw_slot(0, f), g.t - 1)]], layer)
                for f in range(11)]
        got = expl.frame_strengths(tokens, n_frames=11, layer=layer)
        np.testing.assert_array_equal(got, np.asarray(want, np.float32))
    with pytest.raises(ValueError):
        expl.frame_strengths([1], layer="nonsense")  # type: ignore[arg-type]


def test_a_long_explanation_keeps_only_its_maps_and_derives_the_stages(monkeypatch):
    """Above the size limit nothing but the uint8 maps and scalars is kept; stages asked for
    are produced by the source, equal to what a short (eager) run of the same inputs keeps."""
    import tam_engine.core.engine as engine

    rng = np.random.default_rng(8)
    inputs = synthetic_inputs(rng, d=16, vocab=12, grids=((3, 5, 6),), n_prompt=4,
                              n_answer=19, values="gaussian")
    eager = _run(inputs, TamOptions(), 4)
    monkeypatch.setattr(engine, "KEEP_STAGE_BYTES", 0)
    lazy = _run(inputs, TamOptions(), 4)
    for kind in ("answer", "prompt"):
        a, b = eager.tokens(kind), lazy.tokens(kind)
        assert b._stages == {}
        np.testing.assert_array_equal(a.maps, b.maps)
        for name in FLOAT_STAGES:
            np.testing.assert_array_equal(b.stage(name), a.stage(name))
            np.testing.assert_array_equal(b.stage_rows(name, [3, 1]), a.stage(name)[[3, 1]])


def test_threads_and_row_groups_do_not_change_a_bit(monkeypatch):
    """The engine's pass runs blocks on several threads and works through each block a few
    rows at a time after the product: neither may change any number (the lazy reader computes
    a block alone, whole, on its own thread)."""
    from tam_engine.core import stages

    rng = np.random.default_rng(11)
    inputs = synthetic_inputs(rng, d=16, vocab=40, grids=((4, 6, 7), (1, 5, 5)), n_prompt=7,
                              n_answer=70, values="gaussian", bias=True)

    def run(threads: int, group_bytes: int):
        monkeypatch.setattr(stages, "_BLOCK_THREADS", threads)
        monkeypatch.setattr(stages, "_ROW_GROUP_BYTES", group_bytes)
        return _run(inputs, TamOptions(), 16)

    base = run(1, 1 << 30)          # one thread, whole blocks
    for threads, group_bytes in ((2, 1 << 30), (1, 1), (2, 8 * 40)):
        other = run(threads, group_bytes)
        for kind in ("answer", "prompt"):
            a, b = base.tokens(kind), other.tokens(kind)
            np.testing.assert_array_equal(a.maps, b.maps)
            for name in ("alpha", "norm_lo", "norm_hi"):
                np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
            for name in FLOAT_STAGES:
                np.testing.assert_array_equal(a.stage(name), b.stage(name))


def test_two_engine_passes_at_once_leave_blas_threads_as_they_were():
    """The engine limits BLAS to one thread while its own threads run (a process-wide
    setting): when two passes overlap and the first to start ends first, BLAS stays on one
    thread until the second ends, then gets its original setting back."""
    from threadpoolctl import threadpool_info

    from tam_engine.core import stages

    def blas_threads() -> list[int]:
        return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]

    before = blas_threads()
    first, second = stages._single_threaded_blas(), stages._single_threaded_blas()
    first.__enter__()
    second.__enter__()
    assert all(n == 1 for n in blas_threads())
    first.__exit__(None, None, None)
    assert all(n == 1 for n in blas_threads())
    second.__exit__(None, None, None)
    assert blas_threads() == before


def test_engine_threads_follow_tam_engine_threads(monkeypatch):
    import os

    from tam_engine.core import stages

    default = min(4, os.cpu_count() or 1)
    for value, expected in (("3", 3), ("1", 1), ("0", default), ("-2", default),
                            ("many", default), ("", default)):
        monkeypatch.setenv("TAM_ENGINE_THREADS", value)
        assert stages._engine_threads() == expected


@pytest.mark.parametrize("rows", [np.arange(5, 5 + 3000), np.r_[0:1000, 1003:3003]])
def test_vision_scores_by_class_for_consecutive_and_gapped_rows(rows):
    """The vision block of the score table, classes in a given order, whether the vision rows
    are consecutive (one image or video) or not (text between two images)."""
    from tam_engine.core.engine import ScoreTable

    rng = np.random.default_rng(4)
    scores = rng.random((3100, 7)).astype(np.float32)
    table = ScoreTable(scores=scores, row_index=np.r_[rows, [1, 2]],
                       class_index=rng.integers(0, 7, 9), nv=rows.size, np_=2, t=7)
    order = rng.permutation(7)
    vision, col = table.vision_by_class(order)
    np.testing.assert_array_equal(vision, scores[rows][:, order].T)
    np.testing.assert_array_equal(vision[col], scores[rows][:, table.class_index].T)
