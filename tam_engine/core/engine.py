"""The Token Activation Map engine (TAM-METHOD sections 2-6), batched over all tokens.

One product of the needed hidden states with the needed ``lm_head`` rows gives every score the
method uses; everything after it is small dense numpy work on a ``(tokens, vision)`` matrix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tam_engine.core.explanation import Explanation, TamOptions
from tam_engine.core.filters import rank_gaussian_filter
from tam_engine.core.inputs import TamInputs
from tam_engine.core.media import MediaItem
from tam_engine.core.token_maps import TokenMaps

_EPS = 1e-8


@dataclass
class ScoreTable:
    """Clipped logits ``a(p) = max(0, s_c(p))`` of every explained class at every needed row.

    Rows: vision positions (``nv``), prompt positions (``np_``), answer-predicting positions
    ``L-1 .. L+T-2`` (``t``). Columns: answer classes (``t``) then prompt classes (``np_``).
    """

    act: np.ndarray
    nv: int
    np_: int
    t: int


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


def score_table(inputs: TamInputs) -> ScoreTable:
    """The one unavoidable product, done on the hidden states' device, returned as float64."""
    import torch

    rows, classes = needed_rows_and_classes(inputs)
    hidden = torch.as_tensor(inputs.hidden)
    weight = _rows_of(inputs.lm_weight)
    device = hidden.device
    uniq, inverse = np.unique(classes, return_inverse=True)
    # Positions can repeat (the last input position may also be a vision or prompt position):
    # compute each once, so one (position, class) pair always has one bit-identical score.
    urows, row_inverse = np.unique(rows, return_inverse=True)
    with torch.no_grad():
        idx_rows = torch.as_tensor(urows, device=device)
        idx_cls = torch.as_tensor(uniq, device=weight.device)
        h = hidden.index_select(0, idx_rows).float()
        w = weight.index_select(0, idx_cls).to(device=device, dtype=torch.float32)
        s = h @ w.T
        if inputs.lm_bias is not None:
            bias = _rows_of(inputs.lm_bias)
            s += bias.index_select(0, idx_cls.to(bias.device)).to(device=device,
                                                                  dtype=torch.float32)
        s.clamp_min_(0.0)
        act = s.cpu().numpy().astype(np.float64)[np.ix_(row_inverse, inverse)]
    nv = inputs.spans.n_vision
    np_ = inputs.spans.prompt_positions.size
    return ScoreTable(act=act, nv=nv, np_=np_, t=inputs.n_answer)


def _text_codes(texts: list[str]) -> np.ndarray:
    """One integer per text, equal exactly when the whitespace-stripped texts are equal."""
    codes: dict[str, int] = {}
    return np.array([codes.setdefault(t.strip(), len(codes)) for t in texts], dtype=np.int64)


def _interference(w: np.ndarray, ctx_maps: np.ndarray, ncols: np.ndarray) -> np.ndarray:
    """``w @ ctx_maps`` for a ``w`` whose row ``n`` is zero beyond column ``ncols[n]``
    (non-decreasing): done in row blocks that skip the all-zero columns, which roughly halves
    the answer-to-answer part (token ``k`` only looks at answer tokens ``j < k``).

    Two blocks: they already save a quarter of that part, and measured on 2 cores, more blocks
    gain under 10% with one BLAS thread while each extra call costs a thread wake-up that is
    expensive when the cores are shared."""
    n = w.shape[0]
    out = np.zeros((n, ctx_maps.shape[1]))
    block = max(64, -(-n // 2))
    for b0 in range(0, n, block):
        b1 = min(n, b0 + block)
        c = int(ncols[b1 - 1])
        if c:
            np.matmul(w[b0:b1, :c], ctx_maps[:c], out=out[b0:b1])
    return out


def _eci(raw: np.ndarray, ctx_maps: np.ndarray, r: np.ndarray, ncols: np.ndarray
         ) -> tuple[np.ndarray, np.ndarray]:
    """Batched ECI (section 4). ``raw`` (N, V) maps; ``ctx_maps`` (C, V) raw context maps;
    ``r`` (N, C) relevances of the context entries left after the same-text drop (0 elsewhere).
    """
    w = r / (r.sum(axis=1, keepdims=True) + _EPS)
    interf = _interference(w, ctx_maps, ncols)
    ii = np.einsum("nv,nv->n", interf, interf)
    mi = np.einsum("nv,nv->n", raw, interf)
    alpha = np.zeros(raw.shape[0])
    np.divide(mi, ii, out=alpha, where=ii > 0)
    # With an empty context (or all-zero relevances) I = 0 and alpha = 0: the map stays raw,
    # which is the method's "ECI applies when the context is non-empty".
    eci = interf
    np.multiply(interf, alpha[:, None], out=eci)
    np.subtract(raw, eci, out=eci)
    np.maximum(eci, 0.0, out=eci)
    return eci, alpha


def _joint_normalise(vis: np.ndarray, rel: np.ndarray, ctx: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Min-max the vision scores together with the context relevances, row by row (section 5).
    A row whose max equals its min becomes all zeros."""
    rel_lo = np.where(ctx, rel, np.inf).min(axis=1, initial=np.inf)
    rel_hi = np.where(ctx, rel, -np.inf).max(axis=1, initial=-np.inf)
    if vis.shape[1]:
        lo = np.minimum(vis.min(axis=1), rel_lo)
        hi = np.maximum(vis.max(axis=1), rel_hi)
    else:
        lo, hi = rel_lo, rel_hi
    lo = np.where(np.isfinite(lo), lo, 0.0)
    hi = np.where(np.isfinite(hi), hi, 0.0)
    span = hi - lo
    out = np.subtract(vis, lo[:, None])
    # (x - lo) / (hi - lo) stays in [0, 1] exactly (IEEE division is correctly rounded).
    np.divide(out, span[:, None], out=out, where=span[:, None] > 0)
    out[span <= 0] = 0.0
    return out, lo, hi


def _filter_rows(norm: np.ndarray, inputs: TamInputs, options: TamOptions) -> np.ndarray:
    """Rank Gaussian filter of every 2-D map (each image, each video slot), as float32."""
    if not options.filter or norm.shape[1] == 0:
        return norm.astype(np.float32)
    out = np.empty(norm.shape, dtype=np.float32)
    for g, s in zip(inputs.spans.grids, inputs.spans.grid_slices):
        block = norm[:, s].reshape(norm.shape[0], g.t, g.h, g.w)
        # float32 keeps ~1e-7 relative error on a [0, 1] scale and halves the memory traffic.
        out[:, s] = rank_gaussian_filter(
            block, options.kernel_size, dtype=np.float32).reshape(norm.shape[0], g.size)
    return out


def _to_uint8(x: np.ndarray) -> np.ndarray:
    """``floor(255 * x)`` for ``x`` in [0, 1] (a cast truncates, i.e. floors non-negatives).
    The product is taken in float64, where it is exact for a float32 ``x``."""
    return np.multiply(x, 255.0, dtype=np.float64).astype(np.uint8)


def explain(inputs: TamInputs, options: TamOptions | None = None,
            media: list[MediaItem] | None = None, meta: dict | None = None) -> Explanation:
    """Explain every answer token (and every prompt token) of one generation."""
    options = options or TamOptions()
    table = score_table(inputs)
    return explain_from_scores(inputs, table, options, media=media, meta=meta)


def explain_from_scores(inputs: TamInputs, table: ScoreTable, options: TamOptions,
                        media: list[MediaItem] | None = None, meta: dict | None = None
                        ) -> Explanation:
    """Everything after the product: raw maps, ECI, joint normalisation, filter (sections 2-6).

    Context columns (``C = n_prompt + n_answer``) are the prompt tokens then the answer tokens.
    """
    L, T = inputs.input_len, inputs.n_answer
    nv, np_ = table.nv, table.np_
    act = table.act
    vis_rows = act[:nv]                      # (V, T + Np): columns answer classes, prompt classes
    prm_rows = act[nv:nv + np_]              # (Np, T + Np)
    ans_rows = act[nv + np_:]                # (T, T + Np): rows L-1 .. L+T-2
    prm_pos = inputs.spans.prompt_positions
    texts = inputs.token_texts
    ans_texts = [texts[L + k] for k in range(T)]
    prm_texts = [texts[p] for p in prm_pos]
    keys = _text_codes(prm_texts + ans_texts)
    C = np_ + T

    # Raw maps of every context entry (section 2), in context column order.
    ctx_maps = np.empty((C, nv))
    ctx_maps[:np_] = vis_rows[:, T:].T
    ctx_maps[np_:] = vis_rows[:, :T].T

    # Answer token k: relevance of its class at the prompt positions and at the positions that
    # predicted answer tokens j < k (section 3); zero outside its context.
    rel_a = np.zeros((T, C))
    rel_a[:, :np_] = prm_rows[:, :T].T
    rel_a[:, np_:] = np.tril(ans_rows[:, :T].T, -1)                # [k, j] = a_k(L+j-1), j < k
    ctx_a = np.zeros((T, C), dtype=bool)
    ctx_a[:, :np_] = True
    ctx_a[:, np_:] = np.tri(T, T, -1, dtype=bool)
    same_a = keys[None, :] == keys[np_:, None]
    answer = _explain_set(
        "answer", ctx_maps[np_:], ctx_maps, rel_a, ctx_a, np.where(same_a, 0.0, rel_a),
        np_ + np.arange(T), inputs.ids[L:L + T], np.arange(L, L + T), ans_texts, inputs, options)

    prompt = None
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
        prompt = _explain_set("prompt", ctx_maps[:np_], ctx_maps, rel_p, norm_ctx, eci_r,
                              np.arange(np_), inputs.ids[prm_pos], prm_pos, prm_texts, inputs,
                              options)

    grids = list(inputs.spans.grids)
    return Explanation(ids=inputs.ids.copy(), input_len=L, token_texts=list(texts), grids=grids,
                       prompt_positions=prm_pos.copy(), answer=answer, prompt=prompt,
                       candidates=inputs.candidates, options=options, media=list(media or []),
                       meta=dict(meta or {}), is_special=inputs.is_special.copy())


def _explain_set(kind, raw, ctx_maps, rel, norm_ctx, eci_r, ncols, ids, positions, texts,
                 inputs: TamInputs, options: TamOptions) -> TokenMaps:
    """ECI, joint normalisation and filter of one set of tokens.

    ``rel`` (N, C) relevances, ``norm_ctx`` the columns normalised with the vision scores,
    ``eci_r`` the relevances of the ECI context (0 outside it), ``ncols[n]`` how many leading
    context columns row ``n`` can use.
    """
    if options.eci:
        eci, alpha = _eci(raw, ctx_maps, eci_r, ncols)
    else:
        eci, alpha = raw, np.zeros(raw.shape[0])
    norm, lo, hi = _joint_normalise(eci, rel, norm_ctx)
    filtered = _filter_rows(norm, inputs, options)
    return TokenMaps(
        kind=kind,
        token_ids=np.asarray(ids, np.int64),
        positions=np.asarray(positions, np.int64),
        texts=list(texts),
        raw=raw.astype(np.float32),
        eci=eci.astype(np.float32),
        filtered=filtered,
        maps=_to_uint8(filtered),
        alpha=alpha.astype(np.float32),
        relevance=rel.astype(np.float32),
        context=norm_ctx,
        norm_lo=lo.astype(np.float32),
        norm_hi=hi.astype(np.float32),
    )
