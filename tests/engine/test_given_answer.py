"""Teacher forcing: a given answer is explained from one forward pass, exactly as if the model
had generated it; a token the model would not say gets its (low) probability recorded."""

from __future__ import annotations

import numpy as np
import pytest

from tam_engine.core.engine import explain
from tam_engine.core.media import MediaItem
from tam_engine.inference.capture import capture
from tam_engine.inference.capture.given import (
    GIVEN_META,
    answer_ids,
    capture_given,
    end_of_turn_id,
)
from tam_engine.inference.pipeline import run_and_explain
from tam_engine.inference.settings import GenerationSettings

FAMILIES = ["qwen2_vl", "qwen2_5_vl", "llava", "internvl"]
PROMPT = "Describe this image in one sentence."


def _image(seed: int = 0, h: int = 112, w: int = 112) -> MediaItem:
    rng = np.random.default_rng(seed)
    return MediaItem("image", f"img{seed}.png", rng.integers(0, 256, (h, w, 3), dtype=np.uint8))


def _assert_same_explanation(a, b) -> None:
    np.testing.assert_array_equal(a.ids, b.ids)
    assert a.input_len == b.input_len and a.token_texts == b.token_texts
    for ta, tb in ((a.answer, b.answer), (a.prompt, b.prompt)):
        np.testing.assert_array_equal(np.asarray(ta.maps), np.asarray(tb.maps))
        np.testing.assert_allclose(ta.relevance, tb.relevance, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(ta.alpha, tb.alpha, rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(a.candidates.ids, b.candidates.ids)
    np.testing.assert_allclose(a.candidates.probs, b.candidates.probs, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("stop_at_eos", [False, True])
def test_teacher_forced_greedy_answer_equals_the_generated_run(tiny_loaded, family,
                                                                stop_at_eos):
    loaded = tiny_loaded(family)
    settings = GenerationSettings(max_new_tokens=7, top_k=4)
    prepared = loaded.adapter.prepare([_image(2)], PROMPT, settings)
    generated = capture(loaded, prepared, settings, min_new_tokens=6)
    new = generated.ids[generated.input_len:]
    eot = end_of_turn_id(loaded)
    # The tiny random models rarely end by themselves: the end-of-turn form is checked by
    # forcing one more step, which is what generation records when the model does stop.
    if stop_at_eos:
        assert eot is not None
        new = np.concatenate([new[new != eot][:6], [eot]])
        generated = None
    given = capture_given(loaded, prepared, [int(i) for i in new], settings,
                          end_of_turn=stop_at_eos)
    np.testing.assert_array_equal(given.ids[given.input_len:], new)
    probs = np.asarray(given.meta[GIVEN_META]["token_probs"])
    np.testing.assert_allclose(
        probs, np.where(given.candidates.ids[:, 0] == new, given.candidates.probs[:, 0], probs),
        rtol=1e-4)
    if generated is not None:
        # the greedy answer is the model's top-1 everywhere
        np.testing.assert_allclose(probs, generated.candidates.probs[:, 0], rtol=1e-4)
        _assert_same_explanation(explain(given), explain(generated))


@pytest.mark.parametrize("family", ["qwen2_vl", "llava"])
def test_given_text_is_tokenised_after_the_assistant_prefix(tiny_loaded, family):
    loaded = tiny_loaded(family)
    tok = loaded.adapter.tokenizer
    settings = GenerationSettings(max_new_tokens=5)
    prepared = loaded.adapter.prepare([_image(3)], PROMPT, settings)
    ids = answer_ids(loaded, "a red circle", end_of_turn=True)
    assert ids[-1] == end_of_turn_id(loaded)
    assert ids[:-1] == tok("a red circle", add_special_tokens=False)["input_ids"]
    ti = capture_given(loaded, prepared, "a red circle", settings)
    np.testing.assert_array_equal(ti.ids[:ti.input_len], prepared.input_ids)
    assert ti.meta[GIVEN_META]["text"] == "a red circle"


@pytest.mark.parametrize("family", FAMILIES)
def test_a_token_the_model_would_not_say_gets_its_low_probability(tiny_loaded, family):
    loaded = tiny_loaded(family)
    settings = GenerationSettings(max_new_tokens=4, top_k=3)
    prepared = loaded.adapter.prepare([_image(4)], PROMPT, settings)
    gen = capture(loaded, prepared, settings, min_new_tokens=4)
    new = [int(i) for i in gen.ids[gen.input_len:]]
    # Replace the second token by the one the model likes least among ordinary tokens.
    import torch
    with torch.no_grad():
        logits = loaded.adapter.lm_head(loaded.model)(gen.hidden[gen.input_len])
    special = set(loaded.adapter.tokenizer.all_special_ids)
    order = [int(i) for i in torch.argsort(logits.float()) if int(i) not in special]
    worst = order[0]
    forced = [new[0], worst, *new[2:]]
    # ids, not text: a random vocabulary's decoded text need not tokenise back the same
    ti = capture_given(loaded, prepared, forced, settings, end_of_turn=False)
    probs = ti.meta[GIVEN_META]["token_probs"]
    p_worst = float(torch.softmax(logits.float(), -1)[worst])
    assert probs[1] == pytest.approx(p_worst, rel=1e-3)
    assert probs[1] < ti.candidates.probs[1, -1]  # below every shown candidate
    assert probs[0] == pytest.approx(float(gen.candidates.probs[0, 0]), rel=1e-4)


def test_run_and_explain_with_an_answer_records_it(tiny_loaded):
    loaded = tiny_loaded("qwen2_vl")
    settings = GenerationSettings(max_new_tokens=4, top_k=3)
    expl = run_and_explain(loaded, [_image(5)], PROMPT, settings, answer="a red circle")
    rec = expl.meta[GIVEN_META]
    assert rec["text"] == "a red circle" and rec["end_of_turn"] is True
    assert len(rec["token_probs"]) == expl.n_answer == len(rec["ids"])
    assert all(0.0 < p <= 1.0 for p in rec["token_probs"])
    np.testing.assert_array_equal(expl.ids[expl.input_len:], rec["ids"])


def test_cli_explain_answer_writes_the_given_answer(tiny_model_dir, tmp_path, capsys):
    from PIL import Image

    from tam_engine.cli import main
    from tam_engine.core.explanation import Explanation

    png = tmp_path / "pic.png"
    Image.fromarray(np.random.default_rng(6).integers(0, 256, (64, 80, 3), dtype=np.uint8)
                    ).save(png)
    out = tmp_path / "out"
    code = main(["explain", str(png), "--model", str(tiny_model_dir("qwen2_vl")), "--prompt",
                 "Describe this image.", "--answer", "a red circle", "--out", str(out),
                 "--device", "cpu"])
    assert code == 0
    expl = Explanation.load(out / "explanation.tam.npz")
    rec = expl.meta[GIVEN_META]
    assert rec["text"] == "a red circle" and len(rec["token_probs"]) == expl.n_answer
    assert "red circle" in expl.answer_text
