"""The top-k next-token candidates of every answer step, by one of two paths.

- ``"steps"``: during generation, from the logits row the model computes at each step anyway
  (:class:`StepCandidates`, a hook on ``lm_head`` that keeps the row's top-k pieces and its
  log-sum-exp: two passes over the row, no second product);
- ``"states"``: afterwards, from the recorded final-norm states and ``lm_head`` in a few batched
  products (:func:`candidates_from_states`).

Both give the same candidates; ``"auto"`` picks the cheaper one for the device (the benchmark
``benchmarks/bench_capture.py`` times both): per step on a CPU, where the row is still in cache
and a second product over the vocabulary would cost more; from the states on a GPU, where one
large product is nearly free while small per-step kernels add launch latency. The states path
is also the fallback when a model bypasses its ``lm_head`` module. On a CPU both use the
piecewise top-k (:func:`_topk_exact`) and the ``exp2`` log-sum-exp (:func:`_log_sum_exp`), each
several times faster there than torch's own.
"""

from __future__ import annotations

from functools import partial
from typing import Any, Literal

import numpy as np

from tam_engine.core.inputs import Candidates
from tam_engine.inference.capture.detokenise import fast_decoder

__all__ = ["CandidateSource", "StepCandidates", "candidates_from_states", "use_step_candidates"]

#: Where the candidates come from: ``"auto"`` picks the cheaper path for the device.
CandidateSource = Literal["auto", "steps", "states"]

_LOG2E = 1.4426950408889634
_ROW = 128  # top-k search: the vocabulary row is cut into pieces of this length


def use_step_candidates(source: str, device: Any) -> bool:
    """Record the candidates during generation (``True``) or compute them from the states?"""
    if source not in ("auto", "steps", "states"):
        raise ValueError(f"candidates must be 'auto', 'steps' or 'states', not {source!r}")
    return source == "steps" or (
        source == "auto" and getattr(device, "type", str(device)) == "cpu")


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
    decode = fast_decoder(tokenizer)
    uniq = {int(i): decode([int(i)]) for i in np.unique(ids_np)}
    return Candidates(ids=ids_np, logits=logits.float().cpu().numpy(),
                      probs=torch.exp(logits.float() - log_z.float()).cpu().numpy(),
                      texts=[[uniq[int(i)] for i in row] for row in ids_np])
