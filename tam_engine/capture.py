"""Greedy generation that keeps only what TAM needs.

One forward hook on the decoder's final norm records the last-layer hidden states (exactly what
``lm_head`` consumes) for the prefill and every step; a stopping criterion streams tokens and
checks for cancellation between steps. The top-k candidates of each step come afterwards from
the recorded states and ``lm_head`` in a few batched products, so the generation loop itself
does no extra work. Nothing else is kept: no per-layer states, no full-vocabulary logits.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from tam_engine.adapters.base import GenerationSettings, Prepared
from tam_engine.capture_types import Candidates, TamInputs
from tam_engine.errors import Cancelled, ModelMemoryError

if TYPE_CHECKING:
    from tam_engine.loading import LoadedModel

__all__ = ["FinalHiddenHook", "GenerationSettings", "IncrementalDetokenizer", "capture",
           "candidates_from_states", "token_texts"]

OnToken = Callable[[int, str], None]
ShouldStop = Callable[[], bool]


class FinalHiddenHook:
    """Records every output of one module (the decoder's final norm) during generation.

    Use as a context manager, or call :meth:`release`; either way the hook is removed and the
    recorded tensors are dropped unless taken with :meth:`take`.
    """

    def __init__(self, module: Any) -> None:
        self.module = module
        self.chunks: list[Any] = []
        self._handle = module.register_forward_hook(self._on_forward)

    def _on_forward(self, module: Any, args: Any, output: Any) -> None:
        out = output[0] if isinstance(output, tuple) else output
        # Batch of one: (1, n, d) -> (n, d). detach: generation runs without grad anyway.
        self.chunks.append(out.detach()[0])

    def take(self) -> Any:
        """All recorded states concatenated along the sequence, ``(n_total, d)``."""
        import torch

        if not self.chunks:
            raise RuntimeError("the hooked module never ran")
        out = torch.cat(self.chunks, dim=0)
        self.chunks = []
        return out

    def release(self) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None
        self.chunks = []

    def __enter__(self) -> FinalHiddenHook:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class IncrementalDetokenizer:
    """Turns ids into per-token texts that concatenate back to the decoded sequence.

    Each token's text is the difference between decoding a short window with and without it, so
    a leading-space marker or a byte-level piece is decoded in context. A token that ends inside
    a multi-byte character gives ``""`` and the character goes to the token that completes it.
    """

    def __init__(self, tokenizer: Any, ids: list[int] | None = None) -> None:
        self.tokenizer = tokenizer
        self.ids: list[int] = list(ids or [])
        self.prefix = self.read = len(self.ids)
        if self.ids:
            # Keep a little context so the first new token decodes as it would mid-sequence.
            self.prefix = max(0, len(self.ids) - 4)

    def _decode(self, ids: list[int]) -> str:
        return _decoder(self.tokenizer)(ids)

    def push(self, token: int, final: bool = False) -> str:
        self.ids.append(int(token))
        before = self._decode(self.ids[self.prefix:self.read])
        after = self._decode(self.ids[self.prefix:])
        if after.endswith("\ufffd") and not final:
            return ""
        if not after.startswith(before):
            # Decoding is not prefix-stable here (rare normalisations): emit from the common part.
            common = 0
            while common < min(len(before), len(after)) and before[common] == after[common]:
                common += 1
            before = before[:common]
        self.prefix, self.read = self.read, len(self.ids)
        return after[len(before):]


def _decoder(tokenizer: Any) -> Callable[[list[int]], str]:
    """The fastest faithful ``decode`` (special tokens kept, no space clean-up): the Rust backend
    of a fast tokenizer when it has no Python-side decoding tweaks, else ``tokenizer.decode``."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None and not getattr(tokenizer, "clean_up_tokenization_spaces", False):
        return lambda ids: backend.decode(ids, skip_special_tokens=False)
    return lambda ids: tokenizer.decode(ids, skip_special_tokens=False,
                                        clean_up_tokenization_spaces=False)


def token_texts(tokenizer: Any, ids: np.ndarray | list[int]) -> list[str]:
    """Per-token texts of ``ids`` that concatenate to ``tokenizer.decode(ids)``."""
    det = IncrementalDetokenizer(tokenizer)
    seq = [int(i) for i in ids]
    return [det.push(t, final=(k == len(seq) - 1)) for k, t in enumerate(seq)]


def candidates_from_states(states: Any, weight: Any, bias: Any, k: int, tokenizer: Any,
                           max_block_elems: int = 1 << 20) -> Candidates:
    """Top-k candidates of each answer step from its predicting hidden state.

    ``lm_head`` of the captured states is exactly the model's logits (the tests check this), so
    the candidates are computed after generation, with no work added to the generation loop.
    The vocabulary is walked in blocks against all steps at once, keeping a running top-k and a
    running log-sum-exp: ``lm_head`` is read once and no full-vocabulary row is ever held
    (at most ``max_block_elems`` logits at a time). The probabilities are the full-vocabulary
    softmax.
    """
    import torch
    import torch.nn.functional as F

    n_steps, vocab = int(states.shape[0]), int(weight.shape[0])
    k = max(1, min(int(k), vocab))
    block = max(1024, min(vocab, max_block_elems // max(n_steps, 1)))
    h = states.to(device=weight.device, dtype=weight.dtype)

    def scan(start: int) -> tuple[Any, Any, Any]:
        b = None if bias is None else bias[start:start + block]
        row = F.linear(h, weight[start:start + block], b).float()
        vals, idx = torch.topk(row, min(k, row.shape[1]), dim=1)
        # log-sum-exp of the block, shifted by its maximum (the first top-k value), in place
        top = vals[:, :1]
        z = row.sub_(top).exp_().sum(dim=1, keepdim=True).log_().add_(top)
        return vals, idx + start, z

    with torch.no_grad():
        best_v, best_i, log_z = scan(0)
        for start in range(block, vocab, block):
            vals, idx, z = scan(start)
            cand_v, cand_i = torch.cat([best_v, vals], 1), torch.cat([best_i, idx], 1)
            best_v, pick = torch.topk(cand_v, k, dim=1)
            best_i = cand_i.gather(1, pick)
            log_z = torch.logaddexp(log_z, z)
    ids_np = best_i.cpu().numpy().astype(np.int64)
    decode = _decoder(tokenizer)
    uniq = {int(i): decode([int(i)]) for i in np.unique(ids_np)}
    return Candidates(ids=ids_np, logits=best_v.cpu().numpy(),
                      probs=torch.exp(best_v - log_z).cpu().numpy(),
                      texts=[[uniq[int(i)] for i in row] for row in ids_np])


class _StepWatch:
    """Stopping criterion: streams each new token and stops when the user asks."""

    def __init__(self, tokenizer: Any, prompt_ids: list[int], on_token: OnToken | None,
                 should_stop: ShouldStop | None) -> None:
        self.det = IncrementalDetokenizer(tokenizer, prompt_ids)
        self.on_token = on_token
        self.should_stop = should_stop
        self.step = 0
        self.cancelled = False
        self._answers: dict[tuple[Any, bool], Any] = {}

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        if self.on_token is not None:
            self.on_token(self.step, self.det.push(int(input_ids[0, -1])))
        self.step += 1
        if self.should_stop is not None and self.should_stop():
            self.cancelled = True
        key = (input_ids.device, self.cancelled)
        if key not in self._answers:  # generate only reads the answer: reuse it every step
            self._answers[key] = torch.full((input_ids.shape[0],), self.cancelled,
                                            dtype=torch.bool, device=input_ids.device)
        return self._answers[key]


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


def capture(loaded: LoadedModel, prepared: Prepared, settings: GenerationSettings | None = None,
            on_token: OnToken | None = None, should_stop: ShouldStop | None = None,
            *, min_new_tokens: int = 0) -> TamInputs:
    """Generate greedily and return the :class:`TamInputs` of the run.

    ``on_token(step, text)`` is called as each token is generated; ``should_stop()`` is checked
    between steps and a ``True`` raises :class:`~tam_engine.errors.Cancelled` after releasing
    everything recorded. The model stays usable after a cancel or a failure.
    """
    import torch
    from transformers import StoppingCriteriaList

    settings = settings or GenerationSettings()
    model, adapter = loaded.model, loaded.adapter
    tokenizer = adapter.tokenizer
    if should_stop is not None and should_stop():
        raise Cancelled()
    inputs = _to_device(prepared.model_inputs, loaded.device, loaded.dtype)
    prompt_ids = [int(i) for i in prepared.input_ids]
    watch = _StepWatch(tokenizer, prompt_ids, on_token, should_stop)
    # Without callbacks the criterion would only cost time: generate then runs unobserved.
    criteria = [watch] if (on_token is not None or should_stop is not None) else []
    hidden = None
    t0 = time.perf_counter()
    try:
        with FinalHiddenHook(adapter.final_norm(model)) as hook, torch.no_grad():
            out = model.generate(
                **inputs, generation_config=greedy_config(model, settings.max_new_tokens,
                                                          min_new_tokens),
                stopping_criteria=StoppingCriteriaList(criteria),
            )
            if watch.cancelled:
                raise Cancelled()
            hidden = hook.take()
    except Cancelled:
        del inputs, hidden
        free_memory(loaded.device)
        raise
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
    head = adapter.lm_head(model)
    bias = getattr(head, "bias", None)
    candidates = candidates_from_states(hidden[L - 1:], head.weight, bias,
                                        max(1, int(settings.top_k)), tokenizer)
    return TamInputs(
        ids=seq, input_len=L, hidden=hidden, lm_weight=head.weight, lm_bias=bias,
        spans=prepared.spans, token_texts=token_texts(tokenizer, seq), candidates=candidates,
        meta={"generate_seconds": gen_seconds, "n_generated": int(T)},
    )
