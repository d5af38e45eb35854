"""The pipeline with several option sets: one generation, each explanation as a separate run."""

from __future__ import annotations

import numpy as np
import pytest

from tam_engine.core.explanation import Explanation, TamOptions, TokenMaps
from tam_engine.core.media import MediaItem
from tam_engine.inference.pipeline import run_and_explain, run_and_explain_many
from tam_engine.inference.settings import GenerationSettings

PROMPT = "Describe this image."
VARIANTS = [TamOptions(), TamOptions(eci=False), TamOptions(filter=False),
            TamOptions(eci=False, filter=False, kernel_size=5, explain_prompt=False)]


def _image(seed: int = 0) -> MediaItem:
    rng = np.random.default_rng(seed)
    return MediaItem("image", f"img{seed}.png", rng.integers(0, 256, (112, 112, 3), dtype=np.uint8))


def _count_generate(monkeypatch, loaded) -> list[int]:
    calls: list[int] = []
    real = loaded.model.generate

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(loaded.model, "generate", counted)
    return calls


def _assert_maps_equal(a: TokenMaps | None, b: TokenMaps | None) -> None:
    assert (a is None) == (b is None)
    if a is None or b is None:
        return
    for name in TokenMaps.FIELDS:
        x, y = getattr(a, name), getattr(b, name)
        if isinstance(x, np.ndarray):
            np.testing.assert_array_equal(x, y, err_msg=name)
        else:
            assert x == y, name


def _assert_same_explanation(a: Explanation, b: Explanation) -> None:
    np.testing.assert_array_equal(a.ids, b.ids)
    assert a.input_len == b.input_len and a.token_texts == b.token_texts
    assert a.options == b.options and len(a.grids) == len(b.grids)
    for ga, gb in zip(a.grids, b.grids):
        assert (ga.kind, ga.media_index, ga.t, ga.h, ga.w) == (gb.kind, gb.media_index, gb.t,
                                                                gb.h, gb.w)
        np.testing.assert_array_equal(ga.positions, gb.positions)
    np.testing.assert_array_equal(a.prompt_positions, b.prompt_positions)
    _assert_maps_equal(a.answer, b.answer)
    _assert_maps_equal(a.prompt, b.prompt)
    np.testing.assert_array_equal(a.candidates.ids, b.candidates.ids)
    np.testing.assert_array_equal(a.candidates.probs, b.candidates.probs)
    assert [m.path for m in a.media] == [m.path for m in b.media]
    strip = lambda meta: {k: v for k, v in meta.items() if k != "timings"}  # noqa: E731
    assert strip(a.meta) == strip(b.meta)
    assert set(a.meta["timings"]) == {"prepare_s", "generate_s", "explain_s"}


def test_several_options_equal_separate_runs_from_one_generation(tiny_loaded, monkeypatch):
    loaded = tiny_loaded("qwen2_vl")
    settings = GenerationSettings(max_new_tokens=4)
    calls = _count_generate(monkeypatch, loaded)
    streamed: list[int] = []
    many = run_and_explain_many(loaded, [_image()], PROMPT, settings, VARIANTS,
                                on_token=lambda i, s: streamed.append(i))
    assert len(calls) == 1, "several option sets must share one generation"
    assert len(many) == len(VARIANTS) and streamed == list(range(many[0].n_answer))
    for options, got in zip(VARIANTS, many):
        want = run_and_explain(loaded, [_image()], PROMPT, settings, options)
        _assert_same_explanation(got, want)
    assert len(calls) == 1 + len(VARIANTS)
    # the variants really differ (the test would prove nothing otherwise) ...
    assert not np.array_equal(many[0].answer.maps, many[2].answer.maps)
    assert many[3].prompt is None
    # ... and share no mutable meta
    many[0].meta["settings"]["top_k"] = 99
    assert many[1].meta["settings"]["top_k"] == settings.top_k


def test_several_options_need_at_least_one(tiny_loaded, monkeypatch):
    loaded = tiny_loaded("qwen2_vl")
    calls = _count_generate(monkeypatch, loaded)
    with pytest.raises(ValueError, match="at least one"):
        run_and_explain_many(loaded, [_image()], PROMPT, None, [])
    assert not calls


def test_eval_explain_fn_generates_once_per_item(tiny_loaded, monkeypatch, tmp_path):
    """``tam eval``'s explain function is the pipeline's: one generation per item for all
    variants, the same explanations, and the eval records' timing names."""
    from PIL import Image

    from tam_engine.eval.datasets import EvalItem
    from tam_engine.eval.explainers import model_explain_fn
    from tam_engine.eval.words import Vocabulary
    from tam_engine.media.io import load_media

    loaded = tiny_loaded("qwen2_vl")
    path = tmp_path / "img0.png"
    Image.fromarray(_image().frames[0]).save(path)
    item = EvalItem(id="img0", kind="image", media=[str(path)], references=[],
                    vocabulary=Vocabulary({}))
    settings = GenerationSettings(max_new_tokens=3)
    calls = _count_generate(monkeypatch, loaded)
    got = model_explain_fn(loaded, settings, PROMPT)(item, VARIANTS[:2])
    assert len(calls) == 1 and len(got) == 2
    for options, e in zip(VARIANTS[:2], got):
        assert set(e.meta["timings"]) == {"generate_s", "engine_s"} and e.meta["item"] == "img0"
        want = run_and_explain(loaded, load_media([str(path)]), PROMPT, settings, options)
        np.testing.assert_array_equal(e.answer.maps, want.answer.maps)
        np.testing.assert_array_equal(e.ids, want.ids)
