"""Greedy generation that keeps only what TAM needs.

One forward hook on the decoder's final norm records the last-layer hidden states (exactly what
``lm_head`` consumes) for the prefill and every step; a stopping criterion streams tokens and
checks for cancellation between steps. Nothing else is kept: no per-layer states, no
full-vocabulary logits. The top-k candidates of each step are taken where they are cheapest on
the device (see :mod:`tam_engine.inference.capture.candidates`).
"""

from __future__ import annotations

import contextlib
import gc
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from tam_engine.core.errors import Cancelled, ModelMemoryError, TamError
from tam_engine.core.inputs import TamInputs
from tam_engine.inference.capture.candidates import (
    CandidateSource,
    StepCandidates,
    candidates_from_states,
    use_step_candidates,
)
from tam_engine.inference.capture.detokenise import token_texts
from tam_engine.inference.capture.exclusive import model_in_use
from tam_engine.inference.capture.head import head_parameter
from tam_engine.inference.capture.hooks import (
    CallbackFailed,
    FinalHiddenHook,
    OnToken,
    ShouldStop,
    StepWatch,
)
from tam_engine.inference.settings import GenerationSettings

if TYPE_CHECKING:
    from tam_engine.inference.adapters.base import Prepared
    from tam_engine.inference.loading import LoadedModel

__all__ = ["capture", "free_memory", "greedy_config"]


def _to_device(inputs: dict[str, Any], device: Any, dtype: Any) -> dict[str, Any]:
    import torch

    out = {}
    for key, value in inputs.items():
        if isinstance(value, torch.Tensor):
            value = value.to(device=device, dtype=dtype if value.is_floating_point() else None)
        out[key] = value
    return out


def _is_oom(exc: BaseException) -> bool:
    import torch

    return isinstance(exc, torch.cuda.OutOfMemoryError) or (
        isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower())


def free_memory(device: Any) -> None:
    """Return cached blocks to the device after a cancel or a failure."""
    import torch

    gc.collect()
    if getattr(device, "type", str(device)) == "cuda" and torch.cuda.is_available():
        torch.cuda.empty_cache()
    elif getattr(device, "type", str(device)) == "mps" and hasattr(torch, "mps"):
        torch.mps.empty_cache()


def greedy_config(model: Any, max_new_tokens: int, min_new_tokens: int = 0) -> Any:
    """A plain greedy generation config (no repetition penalty or other logit changes), so the
    generated token is the argmax of the raw logits TAM explains."""
    from transformers import GenerationConfig

    base = model.generation_config
    eos = base.eos_token_id
    pad = base.pad_token_id if base.pad_token_id is not None else (
        eos[0] if isinstance(eos, list) else eos)
    return GenerationConfig(do_sample=False, num_beams=1, max_new_tokens=max_new_tokens,
                            min_new_tokens=min_new_tokens or None, eos_token_id=eos,
                            pad_token_id=pad, bos_token_id=base.bos_token_id, use_cache=True)


def _check_finite(hidden: Any, loaded: LoadedModel) -> None:
    """Refuse NaN or infinite hidden states: every map computed from them would be NaN (or
    silently zero after clipping), and a saved explanation would show nothing true."""
    import torch

    if not bool(torch.isfinite(hidden).all()):
        dtype = str(loaded.dtype).replace("torch.", "")
        raise TamError(
            f"The model produced NaN or infinite values ({dtype} on {loaded.device}): no map "
            "can be computed from them.",
            "Likely causes: broken weights (NaN in the weight files, or a model converted "
            "badly) or a dtype the model overflows in (float16: try bfloat16 or float32).")


def capture(loaded: LoadedModel, prepared: Prepared, settings: GenerationSettings | None = None,
            on_token: OnToken | None = None, should_stop: ShouldStop | None = None,
            *, min_new_tokens: int = 0, candidates: CandidateSource = "auto") -> TamInputs:
    """Generate greedily and return the :class:`TamInputs` of the run.

    ``on_token(step, text)`` is called as each token is generated; ``should_stop()`` is checked
    between steps and a ``True`` raises :class:`~tam_engine.core.errors.Cancelled` after releasing
    everything recorded. The model stays usable after a cancel or a failure.

    ``candidates`` picks where the top-k candidates come from: ``"steps"`` (the logits rows of
    the generation, hooked on ``lm_head``), ``"states"`` (afterwards, from the recorded states)
    or ``"auto"`` (steps on a CPU, states on a GPU; the cheaper way on each, see
    :mod:`~tam_engine.inference.capture.candidates`). All give the same candidates.
    """
    with model_in_use(loaded.model, should_stop):
        return _capture(loaded, prepared, settings or GenerationSettings(), on_token,
                        should_stop, min_new_tokens, candidates)


def _capture(loaded: LoadedModel, prepared: Prepared, settings: GenerationSettings,
             on_token: OnToken | None, should_stop: ShouldStop | None, min_new_tokens: int,
             candidates: CandidateSource) -> TamInputs:
    import torch
    from transformers import StoppingCriteriaList

    model, adapter = loaded.model, loaded.adapter
    tokenizer = adapter.tokenizer
    if should_stop is not None and should_stop():
        raise Cancelled()
    inputs = _to_device(prepared.model_inputs, loaded.device, loaded.dtype)
    prompt_ids = [int(i) for i in prepared.input_ids]
    watch = StepWatch(tokenizer, prompt_ids, on_token, should_stop)
    # Without callbacks the criterion would only cost time: generate then runs unobserved.
    criteria = [watch] if (on_token is not None or should_stop is not None) else []
    hidden = step_cands = None
    head = adapter.lm_head(model)
    k = max(1, int(settings.top_k))
    per_step = use_step_candidates(candidates, loaded.device)
    t0 = time.perf_counter()
    try:
        with contextlib.ExitStack() as stack, torch.no_grad():
            hook = stack.enter_context(FinalHiddenHook(adapter.final_norm(model)))
            steps = stack.enter_context(StepCandidates(head, k)) if per_step else None
            out = model.generate(
                **inputs, generation_config=greedy_config(model, settings.max_new_tokens,
                                                          min_new_tokens),
                stopping_criteria=StoppingCriteriaList(criteria),
            )
            if watch.cancelled:
                raise Cancelled()
            hidden = hook.take()
            n_new = int(out.shape[1]) - len(prompt_ids)
            step_cands = steps.result(n_new, tokenizer) if steps is not None else None
    except Cancelled:
        del inputs, hidden
        free_memory(loaded.device)
        raise
    except CallbackFailed as exc:
        del inputs, hidden
        free_memory(loaded.device)
        raise exc.original from None
    except (RuntimeError, MemoryError) as exc:
        del inputs, hidden
        free_memory(loaded.device)
        if _is_oom(exc) or isinstance(exc, MemoryError):
            raise ModelMemoryError(
                f"The run does not fit in the memory of {loaded.device}.",
                "Lower the image resolution (max pixels), use fewer video frames or fewer new "
                "tokens, or load the model with another dtype (bfloat16/float16) or device.",
            ) from exc
        raise
    gen_seconds = time.perf_counter() - t0
    seq = out[0].cpu().numpy().astype(np.int64)
    L = len(prompt_ids)
    T = seq.size - L
    if T < 1:
        raise RuntimeError("the model generated no token")
    if hidden.shape[0] != L + T - 1:
        raise RuntimeError(f"captured {hidden.shape[0]} hidden states, expected {L + T - 1}")
    _check_finite(hidden, loaded)
    # Offloaded (meta) parameters are read row by row from where accelerate keeps them.
    weight, bias = head_parameter(head, "weight"), head_parameter(head, "bias")
    cands = step_cands or candidates_from_states(hidden[L - 1:], weight, bias, k, tokenizer)
    return TamInputs(
        ids=seq, input_len=L, hidden=hidden, lm_weight=weight, lm_bias=bias,
        spans=prepared.spans, token_texts=token_texts(tokenizer, seq), candidates=cands,
        meta={"generate_seconds": gen_seconds, "n_generated": int(T)},
        is_special=np.isin(seq, tokenizer.all_special_ids),
    )
