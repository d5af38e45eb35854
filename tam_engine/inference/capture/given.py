"""Teacher forcing: the :class:`TamInputs` of a *given* answer, from one forward pass.

The answer's ids are appended to the adapter's prepared prompt (which already ends with the
chat template's assistant prefix), followed by the model's end-of-turn token when asked, and
the whole sequence but its last token is run once through the model with the same final-norm
hook :func:`~tam_engine.inference.capture.generate.capture` uses. Nothing is generated. The
result has exactly the layout of a generated run (``L + T`` ids, ``L + T - 1`` states), so the
engine explains it unchanged; for the answer that greedy generation produced, the states are
those of the generated run (the tests check the explanations are equal).

The candidates are those of the generated path (what the model would have said instead at
each position); :func:`given_token_probs` adds the probability the model gave to each *given*
token, which may be far from the top when the answer is not the model's own.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from tam_engine.core.errors import Cancelled, ModelMemoryError, TamError
from tam_engine.core.inputs import Candidates, TamInputs
from tam_engine.core.limits import check_count
from tam_engine.inference.capture.candidates import candidates_from_states
from tam_engine.inference.capture.detokenise import token_texts
from tam_engine.inference.capture.exclusive import model_in_use
from tam_engine.inference.capture.generate import (
    _check_finite,
    _is_oom,
    _to_device,
    free_memory,
)
from tam_engine.inference.capture.head import head_parameter
from tam_engine.inference.capture.hooks import FinalHiddenHook, ShouldStop
from tam_engine.inference.settings import GenerationSettings

if TYPE_CHECKING:
    from tam_engine.inference.adapters.base import Prepared
    from tam_engine.inference.loading import LoadedModel

__all__ = ["GIVEN_META", "answer_ids", "capture_given", "end_of_turn_id", "forced_inputs",
           "given_token_probs"]

#: Key of :attr:`TamInputs.meta` / explanation ``meta`` holding the teacher-forcing record.
GIVEN_META = "given_answer"

# Inputs aligned with input_ids (1, L) that a longer sequence must extend, and the fill value.
_ALIGNED_FILL = {"attention_mask": 1, "mm_token_type_ids": 0, "token_type_ids": 0}


def end_of_turn_id(loaded: LoadedModel) -> int | None:
    """The token greedy generation ends an answer with: the first of the generation config's
    end-of-sequence ids (chat models list their end-of-turn marker first)."""
    eos = loaded.model.generation_config.eos_token_id
    if isinstance(eos, (list, tuple)):
        eos = eos[0] if eos else None
    return None if eos is None else int(eos)


def answer_ids(loaded: LoadedModel, answer: str | Sequence[int], end_of_turn: bool = True
               ) -> list[int]:
    """The ids of a given answer as the model would emit them after its assistant prefix:
    the text tokenised without special tokens (or ``answer`` itself when it is ids), then the
    end-of-turn token when ``end_of_turn`` (as a generated run that stopped by itself has)."""
    if isinstance(answer, str):
        check_count(len(answer), "answer_chars", "The given answer's length in characters")
        if not answer.strip():
            raise TamError("The given answer is empty.", "Give the answer text to explain.")
        ids = [int(i) for i in loaded.adapter.tokenizer(
            answer, add_special_tokens=False)["input_ids"]]
    else:
        ids = [int(i) for i in answer]
    if end_of_turn:
        eot = end_of_turn_id(loaded)
        if eot is None:
            raise TamError("The model declares no end-of-turn token to close the given answer.",
                           "Explain the answer without its end-of-turn token.")
        if not ids or ids[-1] != eot:
            ids.append(eot)
    if not ids:
        raise TamError("The given answer has no tokens.", "Give the answer text to explain.")
    return ids


def forced_inputs(prepared: Prepared, seq: np.ndarray, device: Any, dtype: Any
                  ) -> dict[str, Any]:
    """The prepared model inputs with ``input_ids`` replaced by the longer ``seq`` and every
    input aligned with it extended; anything else aligned with the prompt is refused, since
    extending it by guess could silently change what the model sees."""
    import torch

    base = prepared.model_inputs
    L = int(base["input_ids"].shape[1])
    extra = int(seq.size) - L
    out: dict[str, Any] = {}
    for key, value in base.items():
        if key == "input_ids":
            value = torch.as_tensor(seq[None, :], dtype=value.dtype)
        elif key in _ALIGNED_FILL and isinstance(value, torch.Tensor):
            pad = torch.full((value.shape[0], extra), _ALIGNED_FILL[key], dtype=value.dtype)
            value = torch.cat([value, pad], 1)
        elif (isinstance(value, torch.Tensor) and value.ndim == 2 and value.shape[0] == 1
              and value.shape[1] == L and extra):
            raise TamError(f"Cannot extend the model input {key!r} for a given answer.",
                           "This model family is not supported for explaining a given answer.")
        out[key] = value
    return _to_device(out, device, dtype)


def capture_given(loaded: LoadedModel, prepared: Prepared, answer: str | Sequence[int],
                  settings: GenerationSettings | None = None, *, end_of_turn: bool = True,
                  should_stop: ShouldStop | None = None) -> TamInputs:
    """The :class:`TamInputs` of ``answer`` (text, or ids) after ``prepared``'s prompt, from
    one forward pass. ``meta[GIVEN_META]`` records the text, the ids and the probability the
    model gave each given token (:func:`given_token_probs`)."""
    with model_in_use(loaded.model, should_stop):
        return _capture_given(loaded, prepared, answer, settings or GenerationSettings(),
                              end_of_turn, should_stop)


def _capture_given(loaded: LoadedModel, prepared: Prepared, answer: str | Sequence[int],
                   settings: GenerationSettings, end_of_turn: bool,
                   should_stop: ShouldStop | None) -> TamInputs:
    import torch

    model, adapter = loaded.model, loaded.adapter
    tokenizer = adapter.tokenizer
    if should_stop is not None and should_stop():
        raise Cancelled()
    prompt_ids = np.asarray(prepared.input_ids, dtype=np.int64).reshape(-1)
    new = np.asarray(answer_ids(loaded, answer, end_of_turn), dtype=np.int64)
    seq = np.concatenate([prompt_ids, new])
    L, T = int(prompt_ids.size), int(new.size)
    hidden = None
    t0 = time.perf_counter()
    try:
        # The last token predicts nothing that is explained: like generate, never fed through.
        inputs = forced_inputs(prepared, seq[:-1], loaded.device, loaded.dtype)
        with contextlib.ExitStack() as stack, torch.no_grad():
            hook = stack.enter_context(FinalHiddenHook(adapter.final_norm(model)))
            # Only the states are needed: the logits of one position, not of the sequence.
            model(**inputs, use_cache=False, logits_to_keep=1)
            hidden = hook.take()
    except (RuntimeError, MemoryError) as exc:
        del hidden
        free_memory(loaded.device)
        if _is_oom(exc) or isinstance(exc, MemoryError):
            raise ModelMemoryError(
                f"The given answer does not fit in the memory of {loaded.device}.",
                "Lower the image resolution (max pixels), use fewer video frames or a shorter "
                "answer, or load the model with another dtype or device.") from exc
        raise
    seconds = time.perf_counter() - t0
    if hidden.shape[0] != L + T - 1:
        raise RuntimeError(f"captured {hidden.shape[0]} hidden states, expected {L + T - 1}")
    _check_finite(hidden, loaded)
    head = adapter.lm_head(model)
    weight, bias = head_parameter(head, "weight"), head_parameter(head, "bias")
    k = max(1, int(settings.top_k))
    cands = candidates_from_states(hidden[L - 1:], weight, bias, k, tokenizer)
    probs = given_token_probs(hidden[L - 1:], weight, bias, new, cands)
    text = answer if isinstance(answer, str) else tokenizer.decode(list(new))
    return TamInputs(
        ids=seq, input_len=L, hidden=hidden, lm_weight=weight, lm_bias=bias,
        spans=prepared.spans, token_texts=token_texts(tokenizer, seq), candidates=cands,
        meta={"forward_seconds": seconds, "n_generated": 0,
              GIVEN_META: {"text": text, "ids": [int(i) for i in new],
                           "token_probs": [float(p) for p in probs],
                           "end_of_turn": bool(end_of_turn)}},
        is_special=np.isin(seq, tokenizer.all_special_ids),
    )


def given_token_probs(states: Any, weight: Any, bias: Any, ids: np.ndarray,
                      cands: Candidates) -> np.ndarray:
    """Probability (softmax over the whole vocabulary) of ``ids[t]`` at the state predicting it.

    Only the given tokens' rows of ``lm_head`` are read; the log-normaliser of each row is
    recovered from its top candidate (``p = exp(logit - log Z)``), which the candidates already
    computed over the full vocabulary.
    """
    import torch

    idx = torch.as_tensor(np.asarray(ids, dtype=np.int64))
    with torch.no_grad():
        rows = weight.index_select(0, idx.to(weight.device)).float()
        h = states.to(device=rows.device, dtype=torch.float32)
        logit = (h * rows).sum(dim=1)
        if bias is not None:
            logit = logit + bias.index_select(0, idx.to(bias.device)).to(logit.device).float()
    top_logit = torch.as_tensor(cands.logits[:, 0], dtype=torch.float64)
    log_z = top_logit - torch.log(torch.as_tensor(cands.probs[:, 0], dtype=torch.float64))
    return torch.exp(logit.double().cpu() - log_z).numpy()
