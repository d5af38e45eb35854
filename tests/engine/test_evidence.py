"""The per-token visual-evidence score: its definition on engine quantities, and the export."""

from __future__ import annotations

import numpy as np
import pytest

from tam_engine.core.engine import explain
from tam_engine.core.evidence import visual_evidence
from tam_engine.core.explanation import TamOptions
from tam_engine.testing.synthetic import synthetic_inputs


def _inputs(seed: int = 5):
    return synthetic_inputs(np.random.default_rng(seed), d=10, vocab=9,
                            grids=((1, 4, 5), (2, 3, 3)), n_prompt=4, n_answer=6,
                            values="gaussian", bias=True)


@pytest.mark.parametrize("eci", [True, False])
def test_score_is_vision_peak_over_vision_plus_text_peak(eci):
    expl = explain(_inputs(), TamOptions(eci=eci))
    for tm in (expl.answer, expl.prompt):
        ev = visual_evidence(tm)
        assert ev is not None and ev.shape == (len(tm),) and ev.dtype == np.float32
        for k in range(len(tm)):
            v = max(float(tm.eci[k].max()), 0.0)  # after ECI (raw with ECI off), before filter
            ctx = tm.context[k]
            t = max(float(np.maximum(tm.relevance[k, ctx], 0).max(initial=0.0)), 0.0)
            want = v / (v + t) if v + t > 0 else 0.0
            assert ev[k] == pytest.approx(want, rel=1e-5, abs=1e-7)
        assert np.all((ev >= 0) & (ev <= 1))


def test_a_token_with_no_visual_scores_scores_zero():
    expl = explain(_inputs())
    tm = expl.answer
    before = visual_evidence(tm)
    assert before is not None and before.max() > 0
    # The same token maps with every ECI score at 0 (a token that saw nothing visual).
    tm._stages.update(raw=tm.raw, eci=np.zeros_like(tm.eci), filtered=tm.filtered)
    after = visual_evidence(tm)
    assert after is not None and np.all(after == 0.0)


def test_without_float_stages_the_score_is_none_not_a_guess(tmp_path):
    from tam_engine.core.token_maps import TokenMaps

    expl = explain(_inputs())
    tm = expl.answer
    bare = TokenMaps(kind="answer", token_ids=tm.token_ids, positions=tm.positions,
                     texts=tm.texts, maps=tm.maps, alpha=tm.alpha, relevance=tm.relevance,
                     context=tm.context, norm_lo=tm.norm_lo, norm_hi=tm.norm_hi)
    assert visual_evidence(bare) is None


def test_json_export_carries_the_score():
    from tam_engine.export.data import explanation_json

    expl = explain(_inputs())
    doc = explanation_json(expl)
    ev = visual_evidence(expl.answer)
    assert "visual_evidence" in doc
    got = [t["visual_evidence"] for t in doc["answer_tokens"]]
    np.testing.assert_allclose(got, ev, atol=1e-6)
    assert all(t["visual_evidence"] is not None for t in doc["prompt_tokens"])
