"""Capture: one hook on the final norm records exactly what lm_head consumes; candidates,
token texts, streaming, cancel and memory errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tam_engine.core.errors import Cancelled, ModelMemoryError
from tam_engine.core.media import MediaItem
from tam_engine.inference.capture import capture
from tam_engine.inference.capture.detokenise import token_texts
from tam_engine.inference.capture.hooks import FinalHiddenHook
from tam_engine.inference.settings import GenerationSettings

FAMILIES = ["qwen2_vl", "qwen2_5_vl", "llava", "internvl"]
PROMPT = "Describe this image in one sentence."


def _image(seed: int = 0, h: int = 112, w: int = 112) -> MediaItem:
    rng = np.random.default_rng(seed)
    return MediaItem("image", f"img{seed}.png", rng.integers(0, 256, (h, w, 3), dtype=np.uint8))


def _full_forward(loaded, prepared, ids: np.ndarray):
    """A plain forward pass over the whole sequence (input + generated but the last)."""
    inputs = dict(prepared.model_inputs)
    seq = torch.as_tensor(ids[None, :-1])
    extra = seq.shape[1] - inputs["input_ids"].shape[1]
    inputs["input_ids"] = seq
    inputs["attention_mask"] = torch.ones_like(seq)
    if "mm_token_type_ids" in inputs:
        tt = inputs["mm_token_type_ids"]
        inputs["mm_token_type_ids"] = torch.cat([tt, torch.zeros(1, extra, dtype=tt.dtype)], 1)
    with torch.no_grad():
        return loaded.model(**inputs, output_hidden_states=True)


@pytest.mark.parametrize("family", FAMILIES)
def test_captured_states_equal_a_plain_forward(tiny_loaded, family):
    loaded = tiny_loaded(family)
    settings = GenerationSettings(max_new_tokens=6)
    prepared = loaded.adapter.prepare([_image()], PROMPT, settings)
    ti = capture(loaded, prepared, settings, min_new_tokens=6)
    L, T = ti.input_len, ti.n_answer
    assert T == 6 and ti.hidden.shape == (L + T - 1, loaded.model.config.get_text_config().hidden_size)
    out = _full_forward(loaded, prepared, ti.ids)
    # transformers' last hidden state has the final norm applied ...
    torch.testing.assert_close(ti.hidden, out.hidden_states[-1][0], atol=2e-4, rtol=1e-4)
    # ... and lm_head of the captured states gives the model's logits at every position.
    head = loaded.adapter.lm_head(loaded.model)
    with torch.no_grad():
        torch.testing.assert_close(head(ti.hidden), out.logits[0], atol=2e-4, rtol=1e-4)
    assert ti.lm_weight is head.weight  # a reference, not a copy


@pytest.mark.parametrize("family", FAMILIES)
def test_candidates_top1_is_the_generated_token(tiny_loaded, family):
    loaded = tiny_loaded(family)
    settings = GenerationSettings(max_new_tokens=5, top_k=4)
    ti = capture(loaded, loaded.adapter.prepare([_image(1)], PROMPT, settings), settings)
    c = ti.candidates
    assert c.ids.shape == (ti.n_answer, 4) and c.logits.shape == c.probs.shape == c.ids.shape
    np.testing.assert_array_equal(c.ids[:, 0], ti.ids[ti.input_len:])
    assert np.all(np.diff(c.logits, axis=1) <= 0)
    assert np.all((c.probs > 0) & (c.probs <= 1)) and np.all(c.probs.sum(axis=1) <= 1 + 1e-5)
    # probabilities are the full-vocabulary softmax at the predicting position
    prepared = loaded.adapter.prepare([_image(1)], PROMPT, settings)
    out = _full_forward(loaded, prepared, ti.ids)
    full = torch.softmax(out.logits[0, ti.input_len - 1:].float(), dim=-1)
    np.testing.assert_allclose(c.probs, np.take_along_axis(full.numpy(), c.ids, 1), atol=1e-5)
    assert all(len(row) == 4 for row in c.texts)


@pytest.mark.parametrize("family", FAMILIES)
def test_special_tokens_are_marked_from_the_tokenizer(tiny_loaded, family):
    loaded = tiny_loaded(family)
    tok = loaded.adapter.tokenizer
    settings = GenerationSettings(max_new_tokens=3)
    ti = capture(loaded, loaded.adapter.prepare([_image()], PROMPT, settings), settings)
    assert ti.is_special.dtype == bool and ti.is_special.shape == ti.ids.shape
    np.testing.assert_array_equal(ti.is_special, np.isin(ti.ids, tok.all_special_ids))
    # Media placeholders and the chat template's markers are special; the user's words are not.
    assert ti.is_special[ti.spans.vision_positions].all()
    assert not ti.is_special[ti.spans.prompt_positions].any()
    assert ti.is_special[:ti.input_len].any()
    assert {ti.token_texts[p] for p in np.flatnonzero(ti.is_special)} <= set(
        tok.all_special_tokens)


def test_token_texts_concatenate_to_the_decoded_sequence(tiny_loaded):
    tok = tiny_loaded("qwen2_vl").adapter.tokenizer
    text = "A café in 日本 — naïve über ✓ and 100 cats."
    ids = tok(text, add_special_tokens=False)["input_ids"]
    texts = token_texts(tok, ids)
    assert len(texts) == len(ids)
    assert "".join(texts) == text == tok.decode(ids)
    assert not any("\ufffd" in t for t in texts)  # multi-byte characters are never split


def test_streaming_reports_every_step_and_the_answer(tiny_loaded):
    loaded = tiny_loaded("qwen2_vl")
    settings = GenerationSettings(max_new_tokens=5)
    seen: list[tuple[int, str]] = []
    ti = capture(loaded, loaded.adapter.prepare([_image()], PROMPT, settings), settings,
                 on_token=lambda i, s: seen.append((i, s)), min_new_tokens=5)
    assert [i for i, _ in seen] == list(range(ti.n_answer))
    assert "".join(ti.token_texts) == loaded.adapter.tokenizer.decode(
        ti.ids, skip_special_tokens=False)


def test_cancel_raises_releases_and_leaves_the_model_usable(tiny_loaded):
    loaded = tiny_loaded("qwen2_vl")
    settings = GenerationSettings(max_new_tokens=8)
    prepared = loaded.adapter.prepare([_image()], PROMPT, settings)
    norm = loaded.adapter.final_norm(loaded.model)
    reference = capture(loaded, prepared, settings, min_new_tokens=8)
    steps: list[int] = []
    with pytest.raises(Cancelled):
        capture(loaded, prepared, settings, on_token=lambda i, s: steps.append(i),
                should_stop=lambda: len(steps) >= 2, min_new_tokens=8)
    assert steps == [0, 1]  # stopped between steps, not at the end
    assert len(norm._forward_hooks) == 0
    again = capture(loaded, prepared, settings, min_new_tokens=8)
    np.testing.assert_array_equal(again.ids, reference.ids)
    torch.testing.assert_close(again.hidden, reference.hidden)


def test_cancel_before_start(tiny_loaded):
    loaded = tiny_loaded("qwen2_vl")
    prepared = loaded.adapter.prepare([_image()], PROMPT)
    with pytest.raises(Cancelled):
        capture(loaded, prepared, should_stop=lambda: True)


def test_out_of_memory_becomes_a_model_memory_error(tiny_loaded, monkeypatch):
    loaded = tiny_loaded("qwen2_vl")
    prepared = loaded.adapter.prepare([_image()], PROMPT)

    def boom(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(loaded.model, "generate", boom)
    with pytest.raises(ModelMemoryError) as info:
        capture(loaded, prepared)
    assert "frames" in info.value.hint and "dtype" in info.value.hint
    assert len(loaded.adapter.final_norm(loaded.model)._forward_hooks) == 0


def test_hook_records_until_released():
    lin = torch.nn.Linear(3, 3)
    with FinalHiddenHook(lin) as hook:
        lin(torch.zeros(1, 2, 3))
        lin(torch.zeros(1, 1, 3))
        assert hook.take().shape == (3, 3)
    assert len(lin._forward_hooks) == 0


@pytest.mark.parametrize("with_bias", [False, True])
def test_candidates_in_vocabulary_blocks_equal_the_full_softmax(tiny_loaded, with_bias):
    from tam_engine.inference.capture.candidates import candidates_from_states

    tok = tiny_loaded("qwen2_vl").adapter.tokenizer
    gen = torch.Generator().manual_seed(0)
    states = torch.randn(7, 16, generator=gen)
    weight = torch.randn(5000, 16, generator=gen) * 3
    bias = torch.randn(5000, generator=gen) if with_bias else None
    c = candidates_from_states(states, weight, bias, 4, tok, max_block_elems=7 * 1024)
    full = torch.nn.functional.linear(states, weight, bias)
    vals, ids = torch.topk(full, 4, dim=1)
    np.testing.assert_array_equal(c.ids, ids.numpy())
    np.testing.assert_allclose(c.logits, vals.numpy(), rtol=1e-6, atol=1e-5)
    np.testing.assert_allclose(c.probs, torch.softmax(full, 1).gather(1, ids).numpy(),
                               rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("vocab", [7, 128 * 40, 128 * 40 + 57, 151_936])
def test_piecewise_topk_equals_torch_topk(vocab):
    from tam_engine.inference.capture.candidates import _topk_exact

    gen = torch.Generator().manual_seed(vocab)
    x = torch.randn(3, vocab, generator=gen)
    x[1, -1] = 50.0  # a winner in the short tail
    x[2, :5] = 40.0 + torch.arange(5.0)  # several winners in one piece
    vals, ids = _topk_exact(x, 5)
    ref_v, ref_i = torch.topk(x, min(5, vocab), dim=1)
    torch.testing.assert_close(vals, ref_v)
    np.testing.assert_array_equal(ids.numpy(), ref_i.numpy())


def test_exp2_log_sum_exp_matches_float64():
    from tam_engine.inference.capture.candidates import _log_sum_exp

    gen = torch.Generator().manual_seed(1)
    x = torch.randn(4, 151_936, generator=gen) * torch.tensor([[1.0], [5.0], [20.0], [0.01]])
    ref = torch.logsumexp(x.double(), dim=1, keepdim=True)
    z = _log_sum_exp(x, x.amax(dim=1, keepdim=True))  # overwrites x
    torch.testing.assert_close(z.double(), ref, rtol=1e-6, atol=1e-5)


@pytest.mark.parametrize("family", ["qwen2_vl", "llava"])
def test_candidates_recorded_per_step_equal_those_from_the_states(tiny_loaded, family, monkeypatch):
    """On CPU the candidates come from lm_head's own rows during generation; they must equal the
    post-hoc computation from the captured states, and the lm_head hook must be gone after."""
    import tam_engine.inference.capture.generate as gen

    loaded = tiny_loaded(family)
    settings = GenerationSettings(max_new_tokens=6, top_k=5)
    prepared = loaded.adapter.prepare([_image(2)], PROMPT, settings)
    calls = []
    real = gen.candidates_from_states
    monkeypatch.setattr(gen, "candidates_from_states", lambda *a, **k: calls.append(1) or real(*a, **k))
    ti = capture(loaded, prepared, settings, min_new_tokens=6)
    assert not calls, "CPU run fell back to the post-hoc scan"
    head = loaded.adapter.lm_head(loaded.model)
    assert len(head._forward_hooks) == 0
    post = real(ti.hidden[ti.input_len - 1:], head.weight, getattr(head, "bias", None), 5,
                loaded.adapter.tokenizer)
    np.testing.assert_array_equal(ti.candidates.ids, post.ids)
    np.testing.assert_allclose(ti.candidates.logits, post.logits, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(ti.candidates.probs, post.probs, rtol=1e-4, atol=1e-6)
    assert ti.candidates.texts == post.texts


def test_step_candidates_fall_back_when_lm_head_is_bypassed(tiny_loaded, monkeypatch):
    """A model whose forward does not call the lm_head module gives no per-step rows: the
    candidates then come from the states, and are still right."""
    from tam_engine.inference.capture.candidates import StepCandidates

    loaded = tiny_loaded("qwen2_vl")
    settings = GenerationSettings(max_new_tokens=4, top_k=3)
    prepared = loaded.adapter.prepare([_image(3)], PROMPT, settings)
    monkeypatch.setattr(StepCandidates, "_on_forward", lambda self, *a: None)
    ti = capture(loaded, prepared, settings, min_new_tokens=4)
    np.testing.assert_array_equal(ti.candidates.ids[:, 0], ti.ids[ti.input_len:])


@pytest.mark.parametrize("vocab", [300, 128 * 40, 128 * 40 + 57])
@pytest.mark.parametrize("rows_buffered", [64, 4])
def test_step_candidates_equal_the_post_hoc_scan(tiny_loaded, vocab, rows_buffered, monkeypatch):
    """Per-step pieces, tails and sums, finished in one batch, give the same top-k and
    probabilities as the batched scan over the states (whole-row, piece and tail paths), also
    when the rows are reduced in several chunks (a buffer of 4 rows for 6 steps)."""
    from tam_engine.inference.capture.candidates import StepCandidates, candidates_from_states

    monkeypatch.setattr(StepCandidates, "BUFFER_BYTES", rows_buffered * 4 * vocab)

    tok = tiny_loaded("qwen2_vl").adapter.tokenizer
    gen = torch.Generator().manual_seed(vocab)
    head = torch.nn.Linear(16, vocab)
    with torch.no_grad():
        head.weight.copy_(torch.randn(vocab, 16, generator=gen) * 3)
        head.bias[-1] = 40.0  # the tail holds a winner at every step
    states = torch.randn(6, 16, generator=gen)
    with StepCandidates(head, 4) as steps, torch.no_grad():
        head(states[:1].unsqueeze(0))  # a prefill-like call of one row
        for i in range(1, 6):
            head(states[i:i + 1].unsqueeze(0))
        got = steps.result(6, tok)
        assert steps.result(5, tok) is None  # a count that does not match: no answer
    assert len(head._forward_hooks) == 0
    want = candidates_from_states(states, head.weight, head.bias, 4, tok)
    np.testing.assert_array_equal(got.ids, want.ids)
    np.testing.assert_allclose(got.logits, want.logits, rtol=1e-6, atol=1e-5)
    np.testing.assert_allclose(got.probs, want.probs, rtol=1e-5, atol=1e-7)
    assert got.texts == want.texts


def test_candidates_source_can_be_chosen(tiny_loaded):
    loaded = tiny_loaded("qwen2_vl")
    settings = GenerationSettings(max_new_tokens=3, top_k=3)
    prepared = loaded.adapter.prepare([_image(4)], PROMPT, settings)
    a = capture(loaded, prepared, settings, min_new_tokens=3, candidates="steps")
    b = capture(loaded, prepared, settings, min_new_tokens=3, candidates="states")
    np.testing.assert_array_equal(a.candidates.ids, b.candidates.ids)
    np.testing.assert_allclose(a.candidates.probs, b.candidates.probs, rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="candidates"):
        capture(loaded, prepared, settings, candidates="logits")
