"""Greedy generation that keeps only what TAM needs.

One forward hook on the decoder's final norm records the last-layer hidden states (exactly what
``lm_head`` consumes) for the prefill and every step; a stopping criterion streams tokens and
checks for cancellation between steps. Nothing else is kept: no per-layer states, no
full-vocabulary logits. The top-k candidates of each step are taken where they are cheapest:

- on a CPU, from the logits row the model computes at each step anyway (a second hook, on
  ``lm_head``, keeps its top-k and log-sum-exp: two passes over the row, no second product);
- on a GPU, afterwards, from the recorded states and ``lm_head`` in a few batched products
  (one large product is nearly free there, while small per-step kernels add launch latency).
"""

from __future__ import annotations

import contextlib
import gc
import time
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np

from tam_engine.core.errors import Cancelled, ModelMemoryError
from tam_engine.core.inputs import Candidates, TamInputs
from tam_engine.inference.adapters.base import GenerationSettings, Prepared

if TYPE_CHECKING:
    from tam_engine.inference.loading import LoadedModel

__all__ = ["FinalHiddenHook", "GenerationSettings", "IncrementalDetokenizer", "StepCandidates",
           "capture", "candidates_from_states", "token_texts"]

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
    # The piecewise search saves CPU time; on a GPU one topk kernel beats its handful of launches.
    topk = _topk_exact if h.device.type == "cpu" else partial(torch.topk, dim=1)

    def scan(start: int) -> tuple[Any, Any, Any]:
        b = None if bias is None else bias[start:start + block]
        row = F.linear(h, weight[start:start + block], b).float()
        vals, idx = topk(row, min(k, row.shape[1]))
        return vals, idx + start, _log_sum_exp(row, vals[:, :1])

    with torch.no_grad():
        best_v, best_i, log_z = scan(0)
        for start in range(block, vocab, block):
            vals, idx, z = scan(start)
            cand_v, cand_i = torch.cat([best_v, vals], 1), torch.cat([best_i, idx], 1)
            best_v, pick = torch.topk(cand_v, k, dim=1)
            best_i = cand_i.gather(1, pick)
            log_z = torch.logaddexp(log_z, z)
    return _decode_candidates(best_i, best_v, log_z, tokenizer)


_LOG2E = 1.4426950408889634
_ROW = 128  # top-k search: the vocabulary row is cut into pieces of this length


def _topk_exact(x: Any, k: int) -> tuple[Any, Any]:
    """``torch.topk(x, k, dim=1)`` for a wide ``(n, V)`` float tensor, about 10x faster on CPU.

    The row is cut into pieces of ``_ROW``; a piece holding one of the k largest values must be
    among the k pieces with the largest maxima (else k larger values would exist), so only those
    k pieces (and the short tail) are searched. Ties may be ordered differently from ``topk``.
    """
    import torch

    n, V = int(x.shape[0]), int(x.shape[1])
    pieces = V // _ROW
    if pieces <= 4 * k:
        return torch.topk(x, k, dim=1)
    main = x[:, :pieces * _ROW].reshape(n, pieces, _ROW)
    _, rows = torch.topk(main.amax(dim=2), k, dim=1)  # (n, k)
    kept = main.gather(1, rows[:, :, None].expand(n, k, _ROW))
    tail = x[:, pieces * _ROW:] if pieces * _ROW < V else None
    return _topk_of_pieces(kept, rows, tail, pieces * _ROW, k)


def _topk_of_pieces(kept: Any, rows: Any, tail: Any, tail_start: int, k: int
                    ) -> tuple[Any, Any]:
    """Top-k of each row from its kept pieces ``(n, k, _ROW)`` with their piece numbers
    ``(n, k)``, plus the short ``tail`` ``(n, t)`` starting at ``tail_start`` (or ``None``)."""
    import torch

    n = int(kept.shape[0])
    offsets = torch.arange(_ROW, device=kept.device)
    idx = (rows[:, :, None] * _ROW + offsets).reshape(n, -1)
    vals = kept.reshape(n, -1)
    if tail is not None:
        tail_idx = torch.arange(tail_start, tail_start + tail.shape[1], device=kept.device)
        idx = torch.cat([idx, tail_idx.expand(n, -1)], 1)
        vals = torch.cat([vals, tail], 1)
    best, pick = torch.topk(vals, min(k, int(vals.shape[1])), dim=1)
    return best, idx.gather(1, pick)


def _log_sum_exp(x: Any, top: Any) -> Any:
    """``logsumexp(x, dim=1)`` given each row's maximum ``top`` (n, 1), for float32 ``x``.

    Written with ``exp2``, which torch evaluates about 4x faster than ``exp`` on CPU at the same
    float32 accuracy; the scaled exponent costs a relative error of about 1e-7 per term.
    """
    return _exp_sum(x, top).log_().add_(top)


def _exp_sum(x: Any, top: Any, out: Any = None) -> Any:
    """Sum over the last dimension of ``exp(x - top)``, as ``2 ** ((x - top) * log2 e)``
    (``out``: an optional buffer shaped like ``x`` to compute in)."""
    import torch

    return torch.sub(x, top, out=out).mul_(_LOG2E).exp2_().sum(dim=-1, keepdim=True)


def _decode_candidates(ids: Any, logits: Any, log_z: Any, tokenizer: Any) -> Candidates:
    import torch

    ids_np = ids.cpu().numpy().astype(np.int64)
    decode = _decoder(tokenizer)
    uniq = {int(i): decode([int(i)]) for i in np.unique(ids_np)}
    return Candidates(ids=ids_np, logits=logits.float().cpu().numpy(),
                      probs=torch.exp(logits.float() - log_z.float()).cpu().numpy(),
                      texts=[[uniq[int(i)] for i in row] for row in ids_np])


class StepCandidates:
    """Forward hook on ``lm_head``: keeps, for the last logits row of every call (one call per
    generated token), what its top-k and log-sum-exp need, and nothing else.

    The row is the model's own logits before any logits processor, so the candidates are exactly
    what the model scored. Per step it keeps the k pieces of the row (see :func:`_topk_exact`)
    that can hold the top k, the row's maximum and its sum of exponentials; :meth:`result`
    finishes the top-k of all steps in one batched call. The per-step work is a dozen small
    operations on a row that is still in cache (an extra product or a full sort would cost more).
    Use as a context manager; :meth:`result` returns ``None`` when the module did not run once
    per expected step (a model that bypasses ``lm_head``), and the caller then computes the
    candidates from the states instead.
    """

    def __init__(self, module: Any, k: int) -> None:
        self.k = max(1, int(k))
        self._buf: Any = None
        self._reset()
        self._handle = module.register_forward_hook(self._on_forward)

    def _reset(self) -> None:
        self.pieces: list[Any] = []  # (k, _ROW) pieces, or the whole row for a tiny vocabulary
        self.rows: list[Any] = []  # the pieces' indices
        self.tails: list[Any] = []  # the last V % _ROW logits
        self.maxes: list[Any] = []
        self.sums: list[Any] = []  # sum of 2^((x - max) log2 e) = sum of exp(x - max)

    def _on_forward(self, module: Any, args: Any, output: Any) -> None:
        import torch

        logits = output[0] if isinstance(output, tuple) else output
        with torch.no_grad():
            row = logits.detach()[0, -1]  # (V,), the row that picks the next token
            if row.dtype != torch.float32:
                row = row.float()
            V = int(row.shape[0])
            n_pieces = V // _ROW
            if n_pieces <= 4 * self.k:  # tiny vocabulary: keep the row itself
                self.pieces.append(row.clone())
                top = row.max()
            else:
                body = row[:n_pieces * _ROW].view(n_pieces, _ROW)
                best, rows = torch.topk(body.amax(dim=1), self.k)
                self.pieces.append(body.index_select(0, rows))
                self.rows.append(rows)
                self._tail_start = n_pieces * _ROW
                if self._tail_start < V:
                    self.tails.append(row[self._tail_start:].clone())
                top = best[0]
            if self._buf is None or self._buf.shape != row.shape or self._buf.device != row.device:
                self._buf = torch.empty_like(row)
            self.maxes.append(top)
            self.sums.append(_exp_sum(row, top, out=self._buf))  # shape (1,)

    def result(self, n_steps: int, tokenizer: Any) -> Candidates | None:
        import torch

        if len(self.maxes) != n_steps or n_steps == 0:
            return None
        kept = torch.stack(self.pieces)
        if self.rows:
            tail = torch.stack(self.tails) if self.tails else None
            best, ids = _topk_of_pieces(kept, torch.stack(self.rows), tail, self._tail_start,
                                        self.k)
        else:  # whole rows were kept
            best, ids = torch.topk(kept, min(self.k, int(kept.shape[1])), dim=1)
        log_z = torch.cat(self.sums).log_().add_(torch.stack(self.maxes))[:, None]
        return _decode_candidates(ids, best, log_z, tokenizer)

    def release(self) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None
        self._reset()
        self._buf = None

    def __enter__(self) -> StepCandidates:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


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


def _per_step_candidates(device: Any) -> bool:
    """Record candidates during generation (CPU) or compute them afterwards (GPU)?"""
    return getattr(device, "type", str(device)) == "cpu"


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
            *, min_new_tokens: int = 0, candidates: str = "auto") -> TamInputs:
    """Generate greedily and return the :class:`TamInputs` of the run.

    ``on_token(step, text)`` is called as each token is generated; ``should_stop()`` is checked
    between steps and a ``True`` raises :class:`~tam_engine.core.errors.Cancelled` after releasing
    everything recorded. The model stays usable after a cancel or a failure.

    ``candidates`` picks where the top-k candidates come from: ``"steps"`` (the logits rows of
    the generation, hooked on ``lm_head``), ``"states"`` (afterwards, from the recorded states)
    or ``"auto"`` (steps on a CPU, states on a GPU; the cheaper way on each, see the module
    notes). All give the same candidates.
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
    hidden = step_cands = None
    head = adapter.lm_head(model)
    k = max(1, int(settings.top_k))
    if candidates not in ("auto", "steps", "states"):
        raise ValueError(f"candidates must be 'auto', 'steps' or 'states', not {candidates!r}")
    per_step = candidates == "steps" or (
        candidates == "auto" and _per_step_candidates(loaded.device))
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
    bias = getattr(head, "bias", None)
    candidates = step_cands or candidates_from_states(hidden[L - 1:], head.weight, bias, k,
                                                      tokenizer)
    return TamInputs(
        ids=seq, input_len=L, hidden=hidden, lm_weight=head.weight, lm_bias=bias,
        spans=prepared.spans, token_texts=token_texts(tokenizer, seq), candidates=candidates,
        meta={"generate_seconds": gen_seconds, "n_generated": int(T)},
        is_special=np.isin(seq, tokenizer.all_special_ids),
    )
