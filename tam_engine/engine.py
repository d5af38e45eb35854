"""The Token Activation Map engine (TAM-METHOD sections 2-6), batched over all tokens.

One product of the needed hidden states with the needed ``lm_head`` rows gives every score the
method uses; everything after it is small dense numpy work on a ``(tokens, vision)`` matrix.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tam_engine.capture_types import TamInputs
from tam_engine.explanation import Explanation, TamOptions, TokenMaps
from tam_engine.filters import rank_gaussian_filter
from tam_engine.media import MediaItem

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


def score_table(inputs: TamInputs) -> ScoreTable:
    """The one unavoidable product, done on the hidden states' device, returned as float64."""
    import torch

    rows, classes = needed_rows_and_classes(inputs)
    hidden = torch.as_tensor(inputs.hidden)
    weight = torch.as_tensor(inputs.lm_weight)
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
            b = torch.as_tensor(inputs.lm_bias).index_select(0, idx_cls.to(
                torch.as_tensor(inputs.lm_bias).device))
            s = s + b.to(device=device, dtype=torch.float32)
        s = torch.clamp_min(s, 0.0)
        act = s.cpu().numpy().astype(np.float64)[np.ix_(row_inverse, inverse)]
    nv = inputs.spans.n_vision
    np_ = inputs.spans.prompt_positions.size
    return ScoreTable(act=act, nv=nv, np_=np_, t=inputs.n_answer)


def _norm_text(s: str) -> str:
    return s.strip()


def _eci(raw: np.ndarray, ctx_maps: np.ndarray, rel: np.ndarray, eci_mask: np.ndarray
         ) -> tuple[np.ndarray, np.ndarray]:
    """Batched ECI. ``raw`` (N, V) maps; ``ctx_maps`` (C, V) raw context maps;
    ``rel`` (N, C) relevances; ``eci_mask`` (N, C) context entries left after same-text drop."""
    r = np.where(eci_mask, rel, 0.0)
    w = r / (r.sum(axis=1, keepdims=True) + _EPS)
    interf = w @ ctx_maps
    ii = np.einsum("nv,nv->n", interf, interf)
    mi = np.einsum("nv,nv->n", raw, interf)
    alpha = np.zeros(raw.shape[0])
    np.divide(mi, ii, out=alpha, where=ii > 0)
    # "ECI applies when the context left after step 1 is non-empty"; with an empty context the
    # interference is zero, alpha is 0, and the map stays raw, so one formula covers both.
    eci = np.maximum(raw - alpha[:, None] * interf, 0.0)
    return eci, alpha


def _joint_normalise(vis: np.ndarray, rel: np.ndarray, ctx: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Min-max vision scores with the context relevances together, row by row."""
    big = np.finfo(np.float64).max
    rel_lo = np.where(ctx, rel, big).min(axis=1)
    rel_hi = np.where(ctx, rel, -big).max(axis=1)
    if vis.shape[1]:
        lo = np.minimum(vis.min(axis=1), rel_lo)
        hi = np.maximum(vis.max(axis=1), rel_hi)
    else:
        lo, hi = rel_lo, rel_hi
    lo = np.where(np.isfinite(lo) & (lo < big), lo, 0.0)
    hi = np.where(np.isfinite(hi) & (hi > -big), hi, 0.0)
    span = hi - lo
    out = np.zeros_like(vis)
    ok = span > 0
    out[ok] = (vis[ok] - lo[ok, None]) / span[ok, None]
    return np.clip(out, 0.0, 1.0), lo, hi


def _filter_rows(norm: np.ndarray, inputs: TamInputs, options: TamOptions) -> np.ndarray:
    if not options.filter or norm.shape[1] == 0:
        return norm.copy()
    out = np.empty_like(norm)
    off = 0
    for g in inputs.spans.grids:
        block = norm[:, off:off + g.size].reshape(norm.shape[0], g.t, g.h, g.w)
        out[:, off:off + g.size] = rank_gaussian_filter(block, options.kernel_size).reshape(
            norm.shape[0], g.size)
        off += g.size
    return np.clip(out, 0.0, 1.0)


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return (np.clip(x, 0.0, 1.0) * 255.0).astype(np.uint8)


def explain(inputs: TamInputs, options: TamOptions | None = None,
            media: list[MediaItem] | None = None, meta: dict | None = None) -> Explanation:
    """Explain every answer token (and every prompt token) of one generation."""
    options = options or TamOptions()
    table = score_table(inputs)
    return explain_from_scores(inputs, table, options, media=media, meta=meta)


def explain_from_scores(inputs: TamInputs, table: ScoreTable, options: TamOptions,
                        media: list[MediaItem] | None = None, meta: dict | None = None
                        ) -> Explanation:
    L, T = inputs.input_len, inputs.n_answer
    nv, np_ = table.nv, table.np_
    act = table.act
    vis_rows = act[:nv]
    prm_rows = act[nv:nv + np_]
    ans_rows = act[nv + np_:]
    prm_pos = inputs.spans.prompt_positions
    texts = inputs.token_texts
    ans_texts = [texts[L + k] for k in range(T)]
    prm_texts = [texts[p] for p in prm_pos]
    col_keys = np.array([_norm_text(t) for t in prm_texts + ans_texts], dtype=object)
    C = np_ + T

    raw_a = vis_rows[:, :T].T.copy()                               # (T, V)
    raw_p = vis_rows[:, T:T + np_].T.copy()                        # (Np, V)
    ctx_maps = np.concatenate([raw_p, raw_a], axis=0)               # (C, V), raw maps

    # Answer tokens: relevance of class c_k at the prompt positions and at the positions that
    # predicted answer tokens j < k.
    rel_a = np.zeros((T, C))
    rel_a[:, :np_] = prm_rows[:, :T].T
    rel_a[:, np_:] = ans_rows[:, :T].T                              # [k, j] = a_k(L+j-1)
    ctx_a = np.zeros((T, C), dtype=bool)
    ctx_a[:, :np_] = True
    ctx_a[:, np_:] = np.tri(T, T, -1, dtype=bool)                  # j < k
    own_a = np.array([_norm_text(t) for t in ans_texts], dtype=object)
    same_a = col_keys[None, :] == own_a[:, None]
    answer = _explain_set("answer", raw_a, ctx_maps, rel_a, ctx_a, ctx_a & ~same_a,
                          inputs.ids[L:L + T], np.arange(L, L + T), ans_texts, inputs, options)

    prompt = None
    if options.explain_prompt:
        rel_p = np.zeros((np_, C))
        rel_p[:, :np_] = prm_rows[:, T:T + np_].T                   # [j, i] = a_j(pos_i)
        norm_ctx = np.zeros((np_, C), dtype=bool)
        norm_ctx[:, :np_] = True                                   # all prompt tokens
        eci_ctx = np.zeros((np_, C), dtype=bool)
        eci_ctx[:, :np_] = np.tri(np_, np_, -1, dtype=bool)       # prompt tokens before j
        own_p = np.array([_norm_text(t) for t in prm_texts], dtype=object)
        same_p = col_keys[None, :] == own_p[:, None]
        prompt = _explain_set("prompt", raw_p, ctx_maps, rel_p, norm_ctx, eci_ctx & ~same_p,
                              inputs.ids[prm_pos], prm_pos, prm_texts, inputs, options)

    grids = list(inputs.spans.grids)
    return Explanation(ids=inputs.ids.copy(), input_len=L, token_texts=list(texts), grids=grids,
                       prompt_positions=prm_pos.copy(), answer=answer, prompt=prompt,
                       candidates=inputs.candidates, options=options, media=list(media or []),
                       meta=dict(meta or {}))


def _explain_set(kind, raw, ctx_maps, rel, norm_ctx, eci_ctx, ids, positions, texts,
                 inputs: TamInputs, options: TamOptions) -> TokenMaps:
    if options.eci:
        eci, alpha = _eci(raw, ctx_maps, rel, eci_ctx)
    else:
        eci, alpha = raw.copy(), np.zeros(raw.shape[0])
    norm, lo, hi = _joint_normalise(eci, rel, norm_ctx)
    filtered = _filter_rows(norm, inputs, options)
    return TokenMaps(
        kind=kind,
        token_ids=np.asarray(ids, np.int64),
        positions=np.asarray(positions, np.int64),
        texts=list(texts),
        raw=raw.astype(np.float32),
        eci=eci.astype(np.float32),
        filtered=filtered.astype(np.float32),
        maps=_to_uint8(filtered),
        alpha=alpha.astype(np.float32),
        relevance=rel.astype(np.float32),
        context=norm_ctx,
        norm_lo=lo.astype(np.float32),
        norm_hi=hi.astype(np.float32),
    )
