"""The top-k next-token candidates of every answer step, by one of two paths.

- ``"steps"``: during generation, from the logits row the model computes at each step anyway
  (:class:`StepCandidates`, a hook on ``lm_head`` that buffers a few rows and reduces them in
  batches to their top-k and log-sum-exp: no second product);
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
    what the model scored. Per step the hook only copies the row into a small buffer of
    ``chunk`` rows (about 8 MB); each full buffer is reduced at once to its rows' top-k and
    log-sum-exp by the same batched functions as :func:`candidates_from_states`. One copy per
    step and one batched reduction per chunk cost far less than a dozen small operations on
    every row (their fixed cost, not the arithmetic, dominated), and no second product over the
    vocabulary is needed. Use as a context manager; :meth:`result` returns ``None`` when the
    module did not run once per expected step (a model that bypasses ``lm_head``), and the
    caller then computes the candidates from the states instead.
    """

    #: Bytes the row buffer may take: 13 rows of a 151,936-entry vocabulary.
    BUFFER_BYTES = 8 << 20

    def __init__(self, module: Any, k: int) -> None:
        self.k = max(1, int(k))
        self._buf: Any = None
        self._reset()
        self._handle = module.register_forward_hook(self._on_forward)

    def _reset(self) -> None:
        self._filled = 0  # rows of the buffer waiting to be reduced
        self.steps = 0
        self.values: list[Any] = []  # (chunk, k) per reduced chunk
        self.ids: list[Any] = []
        self.log_z: list[Any] = []  # (chunk, 1)

    def _on_forward(self, module: Any, args: Any, output: Any) -> None:
        import torch

        logits = output[0] if isinstance(output, tuple) else output
        row = logits.detach()[0, -1]  # (V,), the row that picks the next token
        buf = self._buf
        if buf is None or buf.shape[1] != row.shape[0] or buf.device != row.device:
            self._flush()
            chunk = max(1, min(64, self.BUFFER_BYTES // (4 * int(row.shape[0]))))
            buf = self._buf = torch.empty((chunk, int(row.shape[0])), dtype=torch.float32,
                                          device=row.device)
        buf[self._filled].copy_(row)  # casts bf16/fp16 rows to float32 on the way
        self._filled += 1
        self.steps += 1
        if self._filled == buf.shape[0]:
            self._flush()

    def _flush(self) -> None:
        """Reduce the buffered rows to their top-k and log-sum-exp."""
        import torch

        if not self._filled:
            return
        rows = self._buf[:self._filled]
        with torch.no_grad():
            topk = _topk_exact if rows.device.type == "cpu" else partial(torch.topk, dim=1)
            vals, idx = topk(rows, min(self.k, int(rows.shape[1])))
            self.values.append(vals)
            self.ids.append(idx)
            self.log_z.append(_log_sum_exp(rows, vals[:, :1]))
        self._filled = 0

    def result(self, n_steps: int, tokenizer: Any) -> Candidates | None:
        import torch

        self._flush()
        if self.steps != n_steps or n_steps == 0:
            return None
        return _decode_candidates(torch.cat(self.ids), torch.cat(self.values),
                                  torch.cat(self.log_z), tokenizer)

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
    """``logsumexp(x, dim=1)`` given each row's maximum ``top`` (n, 1), for float32 ``x``,
    computed in place: ``x`` is overwritten (both callers are done with it).

    Written with ``exp2``, which torch evaluates about 4x faster than ``exp`` on CPU at the same
    float32 accuracy; the scaled exponent costs a relative error of about 1e-7 per term.
    """
    return x.sub_(top).mul_(_LOG2E).exp2_().sum(dim=1, keepdim=True).log_().add_(top)


def _decode_candidates(ids: Any, logits: Any, log_z: Any, tokenizer: Any) -> Candidates:
    import torch

    ids_np = ids.cpu().numpy().astype(np.int64)
    decode = fast_decoder(tokenizer)
    uniq = {int(i): decode([int(i)]) for i in np.unique(ids_np)}
    return Candidates(ids=ids_np, logits=logits.float().cpu().numpy(),
                      probs=torch.exp(logits.float() - log_z.float()).cpu().numpy(),
                      texts=[[uniq[int(i)] for i in row] for row in ids_np])
