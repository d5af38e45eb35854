"""The Token Activation Map engine (TAM-METHOD sections 2-6), batched over blocks of tokens.

One product of the needed hidden states with the needed ``lm_head`` rows gives every score the
method uses; everything after it is dense numpy work on ``(tokens, vision)`` blocks
(:mod:`tam_engine.core.stages`), so memory is bounded by a block, not by the answer's length.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tam_engine.core.explanation import Explanation, TamOptions
from tam_engine.core.inputs import TamInputs
from tam_engine.core.media import MediaItem
from tam_engine.core.stages import (
    CHUNK_TOKENS,
    Chunk,
    StageSource,
    compute_blocks,
    in_column_blocks,
    relevance_bounds,
)
from tam_engine.core.token_maps import FLOAT_STAGES, KEEP_STAGE_BYTES, TokenMaps

_EPS = 1e-8


@dataclass
class ScoreTable:
    """Clipped logits ``a(p) = max(0, s_c(p))`` of every explained class at every needed row.

    Stored compactly: ``scores`` is ``(distinct rows, distinct classes)`` float32, exactly the
    product's output; ``row_index``/``class_index`` map each needed row and class to it.
    Rows: vision positions (``nv``), prompt positions (``np_``), answer-predicting positions
    ``L-1 .. L+T-2`` (``t``). Columns: answer classes (``t``) then prompt classes (``np_``).
    """

    scores: np.ndarray
    row_index: np.ndarray
    class_index: np.ndarray
    nv: int
    np_: int
    t: int

    @property
    def act(self) -> np.ndarray:
        """The full ``(rows, columns)`` table as float64 (large for long videos: the engine
        itself only reads the blocks it needs)."""
        return self.scores[np.ix_(self.row_index, self.class_index)].astype(np.float64)

    def block(self, r0: int, r1: int) -> np.ndarray:
        """Rows ``r0 .. r1 - 1`` of :attr:`act`, float64."""
        return self.scores[np.ix_(self.row_index[r0:r1], self.class_index)].astype(np.float64)

    def vision_by_class(self, order: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(distinct classes, nv)`` float32 vision scores whose row ``i`` is class
        ``order[i]`` (a permutation of the distinct classes), and each column's row in it."""
        rank = np.empty_like(order)
        rank[order] = np.arange(order.size)
        vis = self.row_index[:self.nv]
        out = np.empty((order.size, vis.size), np.float32)
        consecutive = vis.size > 0 and bool(np.all(np.diff(vis) == 1))

        def columns(a: int, b: int) -> None:
            rows = (self.scores[vis[0] + a:vis[0] + b] if consecutive
                    else self.scores[vis[a:b]])
            out[:, a:b] = rows[:, order].T

        in_column_blocks(vis.size, columns)
        return out, rank[self.class_index]


def needed_rows_and_classes(inputs: TamInputs) -> tuple[np.ndarray, np.ndarray]:
    """Positions whose hidden states are needed, and classes whose lm_head rows are needed.

    Prompt classes are always needed: their raw maps are the context ECI subtracts.
    """
    L, T = inputs.input_len, inputs.n_answer
    vis = inputs.spans.vision_positions
    prm = inputs.spans.prompt_positions
    ans_rows = np.arange(L - 1, L + T - 1, dtype=np.int64)
    rows = np.concatenate([vis, prm, ans_rows])
    classes = np.concatenate([inputs.ids[L:L + T], inputs.ids[prm]])
    return rows, classes


def _rows_of(param: Any) -> Any:
    """A tensor, or an object that reads rows with ``index_select`` itself (an offloaded
    ``lm_head`` weight, read from disk without loading it whole)."""
    import torch

    return param if hasattr(param, "index_select") else torch.as_tensor(param)


#: Hidden rows multiplied at a time: bounds the gathered copy (8,192 x 1,536 float32 = 48 MiB).
_PRODUCT_ROWS = 8192


def score_table(inputs: TamInputs) -> ScoreTable:
    """The one unavoidable product, done on the hidden states' device in blocks of rows."""
    import torch

    rows, classes = needed_rows_and_classes(inputs)
    hidden = torch.as_tensor(inputs.hidden)
    weight = _rows_of(inputs.lm_weight)
    device = hidden.device
    uniq, inverse = np.unique(classes, return_inverse=True)
    # Positions can repeat (the last input position may also be a vision or prompt position):
    # compute each once, so one (position, class) pair always has one bit-identical score.
    urows, row_inverse = np.unique(rows, return_inverse=True)
    scores = np.empty((urows.size, uniq.size), np.float32)
    with torch.no_grad():
        idx_cls = torch.as_tensor(uniq, device=weight.device)
        w = weight.index_select(0, idx_cls).to(device=device, dtype=torch.float32)
        bias = None
        if inputs.lm_bias is not None:
            b = _rows_of(inputs.lm_bias)
            bias = b.index_select(0, idx_cls.to(b.device)).to(device=device, dtype=torch.float32)
        for r0 in range(0, urows.size, _PRODUCT_ROWS):
            block = urows[r0:r0 + _PRODUCT_ROWS]
            if block[-1] - block[0] == block.size - 1:
                # Consecutive positions (a vision block): multiply the rows in place, no copy.
                h = hidden[int(block[0]):int(block[-1]) + 1]
            else:
                h = hidden.index_select(0, torch.as_tensor(block, device=device))
            if device.type == "cpu":
                # Straight into the table (no new block of memory to fault in and copy).
                s = torch.matmul(h.float(), w.T,
                                 out=torch.from_numpy(scores[r0:r0 + block.size]))
            else:
                s = h.float() @ w.T
            if bias is not None:
                s += bias
            s.clamp_min_(0.0)
            if device.type != "cpu":
                scores[r0:r0 + s.shape[0]] = s.cpu().numpy()
    nv = inputs.spans.n_vision
    np_ = inputs.spans.prompt_positions.size
    return ScoreTable(scores=scores, row_index=row_inverse.reshape(-1),
                      class_index=inverse.reshape(-1), nv=nv, np_=np_, t=inputs.n_answer)


def _text_codes(texts: list[str]) -> np.ndarray:
    """One integer per text, equal exactly when the whitespace-stripped texts are equal."""
    codes: dict[str, int] = {}
    return np.array([codes.setdefault(t.strip(), len(codes)) for t in texts], dtype=np.int64)


def explain(inputs: TamInputs, options: TamOptions | None = None,
            media: list[MediaItem] | None = None, meta: dict | None = None) -> Explanation:
    """Explain every answer token (and every prompt token) of one generation."""
    options = options or TamOptions()
    table = score_table(inputs)
    return explain_from_scores(inputs, table, options, media=media, meta=meta)


def explain_from_scores(inputs: TamInputs, table: ScoreTable, options: TamOptions,
                        media: list[MediaItem] | None = None, meta: dict | None = None,
                        chunk_tokens: int | None = CHUNK_TOKENS) -> Explanation:
    """Everything after the product: raw maps, ECI, joint normalisation, filter (sections 2-6),
    ``chunk_tokens`` tokens at a time (None: all at once). Only the uint8 maps and per-token
    scalars are kept; the float stages are produced again on demand (:mod:`core.stages`).

    Context columns (``C = n_prompt + n_answer``) are the prompt tokens then the answer tokens.
    """
    L, T = inputs.input_len, inputs.n_answer
    nv, np_ = table.nv, table.np_
    # Classes in the order they enter the context (prompt tokens, then answer tokens): a block's
    # interference then only involves the first rows of ``vision`` (its later classes have zero
    # weight, see StageSource). Each context column's class is a row of ``vision``.
    ctx_cols = np.concatenate([table.class_index[T:], table.class_index[:T]])
    first = np.unique(ctx_cols, return_index=True)[1]
    order = ctx_cols[np.sort(first)]
    order = np.concatenate([order, np.setdiff1d(np.arange(table.scores.shape[1]), order)])
    vision, col_class = table.vision_by_class(order)  # (U, V); column c's map: vision[col[c]]
    prm_rows = table.block(nv, nv + np_)          # (Np, T + Np): columns answer, prompt classes
    ans_rows = table.block(nv + np_, nv + np_ + T)  # (T, T + Np): rows L-1 .. L+T-2
    prm_pos = inputs.spans.prompt_positions
    texts = inputs.token_texts
    ans_texts = [texts[L + k] for k in range(T)]
    prm_texts = [texts[p] for p in prm_pos]
    keys = _text_codes(prm_texts + ans_texts)
    C = np_ + T
    # Each context column's class (prompt tokens then answer tokens), as rows of ``vision``.
    ctx_class = np.concatenate([col_class[T:], col_class[:T]]).astype(np.int64)
    chunk = chunk_tokens or max(T, np_, 1)

    # Answer token k: relevance of its class at the prompt positions and at the positions that
    # predicted answer tokens j < k (section 3); zero outside its context.
    rel_a = np.zeros((T, C))
    rel_a[:, :np_] = prm_rows[:, :T].T
    rel_a[:, np_:] = np.tril(ans_rows[:, :T].T, -1)                # [k, j] = a_k(L+j-1), j < k
    ctx_a = np.zeros((T, C), dtype=bool)
    ctx_a[:, :np_] = True
    ctx_a[:, np_:] = np.tri(T, T, -1, dtype=bool)
    same_a = keys[None, :] == keys[np_:, None]
    sets = [_SetRun(
        "answer", vision, col_class[:T], ctx_class, rel_a, ctx_a,
        np.where(same_a, 0.0, rel_a), inputs.ids[L:L + T], np.arange(L, L + T), ans_texts,
        inputs, options, chunk)]

    if options.explain_prompt:
        # Prompt token j: its own class over the prefill; ECI against the prompt tokens before
        # it; the text part of its normalisation is its relevance at every prompt position.
        rel_p = np.zeros((np_, C))
        rel_p[:, :np_] = prm_rows[:, T:T + np_].T                   # [j, i] = a_j(pos_i)
        norm_ctx = np.zeros((np_, C), dtype=bool)
        norm_ctx[:, :np_] = True
        keep = np.tri(np_, np_, -1, dtype=bool) & (keys[None, :np_] != keys[:np_, None])
        eci_r = np.zeros((np_, C))
        eci_r[:, :np_] = np.where(keep, rel_p[:, :np_], 0.0)
        sets.append(_SetRun("prompt", vision, col_class[T:], ctx_class, rel_p, norm_ctx, eci_r,
                            inputs.ids[prm_pos], prm_pos, prm_texts, inputs, options, chunk))
    compute_blocks([(run.source, run.take, bool(run.stages)) for run in sets])
    answer = sets[0].result()
    prompt = sets[1].result() if len(sets) > 1 else None

    grids = list(inputs.spans.grids)
    return Explanation(ids=inputs.ids.copy(), input_len=L, token_texts=list(texts), grids=grids,
                       prompt_positions=prm_pos.copy(), answer=answer, prompt=prompt,
                       candidates=inputs.candidates, options=options, media=list(media or []),
                       meta=dict(meta or {}), is_special=inputs.is_special.copy())


def class_weights(eci_r: np.ndarray, ctx_class: np.ndarray, n_classes: int) -> np.ndarray:
    """Normalised ECI weights ``w_i = r_i / (sum r + eps)`` (section 4) summed per class:
    ``sum_i w_i m_i`` only depends on them, as every context entry of one class has that
    class's raw map."""
    w = eci_r / (eci_r.sum(axis=1, keepdims=True) + _EPS)
    out = np.zeros((w.shape[0], n_classes))
    for u in np.unique(ctx_class):
        cols = ctx_class == u
        out[:, u] = w[:, cols].sum(axis=1) if cols.sum() > 1 else w[:, cols][:, 0]
    return out


class _SetRun:
    """ECI, joint normalisation and filter of one set of tokens (the answer, or the prompt):
    its stage source, and the outputs its blocks are written into.

    ``rel`` (N, C) relevances, ``norm_ctx`` the columns normalised with the vision scores,
    ``eci_r`` the relevances of the ECI context (0 outside it).
    """

    def __init__(self, kind, vision, raw_class, ctx_class, rel, norm_ctx, eci_r, ids, positions,
                 texts, inputs: TamInputs, options: TamOptions, chunk: int) -> None:
        n = len(texts)
        rel_lo, rel_hi = relevance_bounds(rel, norm_ctx)
        self.source = StageSource(
            vision=vision, raw_class=np.asarray(raw_class, np.int64),
            weights=class_weights(eci_r, ctx_class, vision.shape[0]), rel_lo=rel_lo,
            rel_hi=rel_hi, grids=list(inputs.spans.grids), eci=options.eci,
            filter=options.filter, kernel_size=options.kernel_size, chunk_tokens=max(1, chunk))
        self.kind, self.ids, self.positions, self.texts = kind, ids, positions, list(texts)
        self.rel, self.norm_ctx = rel, norm_ctx
        self.maps = np.empty((n, vision.shape[1]), np.uint8)
        self.alpha, self.lo, self.hi = np.zeros(n), np.zeros(n), np.zeros(n)
        # A short explanation keeps the float stages it computes anyway (what saving it in
        # formats 1-2 and the exports read); a long one keeps only the maps and derives them
        # on demand.
        keep = self.maps.size * 4 <= KEEP_STAGE_BYTES
        self.stages = ({name: np.empty(self.maps.shape, np.float32) for name in FLOAT_STAGES}
                       if keep else {})

    def take(self, ch: Chunk) -> None:
        """Store one computed block (called from the engine's threads; blocks are disjoint)."""
        s = slice(ch.start, ch.start + ch.maps.shape[0])
        self.maps[s], self.alpha[s], self.lo[s], self.hi[s] = ch.maps, ch.alpha, ch.lo, ch.hi
        for name, arr in self.stages.items():
            arr[s] = getattr(ch, name)

    def result(self) -> TokenMaps:
        return TokenMaps(
            kind=self.kind,
            token_ids=np.asarray(self.ids, np.int64),
            positions=np.asarray(self.positions, np.int64),
            texts=self.texts,
            maps=self.maps,
            alpha=self.alpha.astype(np.float32),
            relevance=self.rel.astype(np.float32),
            context=self.norm_ctx,
            norm_lo=self.lo.astype(np.float32),
            norm_hi=self.hi.astype(np.float32),
            source=self.source,
            **self.stages,
        )
