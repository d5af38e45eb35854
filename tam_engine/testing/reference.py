"""A plain, loop-by-loop Token Activation Map, written from ``TAM-METHOD.md`` alone.

This is the yardstick the fast engine (``tam_engine.core.engine``) is checked against. It shares no
code with the engine: only the input containers (``TamInputs``, ``VisionGrid``) are read. Every
step is an explicit Python loop over tokens, context entries and cells; the only vectorised
operation is the dot product of one hidden state with one ``lm_head`` row, done in float64.

The project's choices where the method leaves room (README "Method notes"):

- ECI's same-text exclusion compares token texts with surrounding whitespace stripped;
- joint normalisation uses ALL context relevances, before the same-text drop;
- a prompt token's raw map comes from its own id over the prefill positions, its ECI context
  is the prompt tokens before it, and the text part of its normalisation is the relevances at
  ALL prompt positions;
- the uint8 map is ``floor(255 * filtered)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

EPS = 1e-8


@dataclass
class RefTokens:
    """Reference outputs for one set of explained tokens (answer or prompt).

    Shapes mirror ``tam_engine.core.token_maps.TokenMaps``: vision arrays ``(N, n_vision)``,
    ``relevance``/``context`` ``(N, n_prompt + n_answer)``; ``relevance`` is only meaningful
    where ``context`` is True (it is 0 elsewhere).
    """

    token_ids: np.ndarray
    positions: np.ndarray
    raw: np.ndarray
    eci: np.ndarray
    filtered: np.ndarray
    maps: np.ndarray
    alpha: np.ndarray
    relevance: np.ndarray
    context: np.ndarray
    norm_lo: np.ndarray
    norm_hi: np.ndarray


@dataclass
class RefExplanation:
    answer: RefTokens
    prompt: RefTokens | None


def _as_float64(x) -> np.ndarray | None:
    if x is None:
        return None
    if hasattr(x, "detach"):  # a torch tensor
        x = x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=np.float64)


class _Scores:
    """Clipped logits ``a_c(p) = max(0, H[p] . W[c] + b[c])``, one dot product per pair."""

    def __init__(self, hidden, weight, bias) -> None:
        h, w = _as_float64(hidden), _as_float64(weight)
        if h is None or w is None:
            raise ValueError("the reference needs hidden states and lm_head weights")
        self.h, self.w = h, w
        self.b = _as_float64(bias)
        self._memo: dict[tuple[int, int], float] = {}

    def __call__(self, p: int, c: int) -> float:
        key = (p, c)
        got = self._memo.get(key)
        if got is None:
            s = float(np.dot(self.h[p], self.w[c]))
            if self.b is not None:
                s += float(self.b[c])
            got = s if s > 0.0 else 0.0
            self._memo[key] = got
        return got


# --------------------------------------------------------------------------- the filter
def reflect_index(i: int, n: int) -> int:
    """Index into an axis of length ``n`` for padded index ``i``, reflecting without repeating
    the edge (numpy ``mode="reflect"``, which keeps reflecting when the pad exceeds ``n - 1``)."""
    if n == 1:
        return 0
    period = 2 * (n - 1)
    i = i % period
    return i if i < n else period - i


def rank_gaussian_cell(values: list[float]) -> float:
    """Section 6 for one window: sort, then a Gaussian over ranks with sigma = sd / mean."""
    v = sorted(values)
    n = len(v)
    mu = sum(v) / n
    if mu <= 0.0:
        return 0.0
    sd = math.sqrt(sum((x - mu) * (x - mu) for x in v) / n)
    sigma = sd / mu
    if sigma == 0.0:
        return v[n // 2]  # the limit sigma -> 0: the median (n = k*k is odd)
    weights = []
    for r in range(n):
        z = abs(r - (n - 1) / 2.0) / sigma
        # exp(-z^2/2) is exactly 0.0 in float64 beyond z ~ 38.6; skip the overflow of z^2.
        weights.append(0.0 if z > 60.0 else math.exp(-z * z / 2.0))
    total = sum(weights)
    return sum(g * x for g, x in zip(weights, v)) / total


def rank_gaussian_map(m: list[list[float]], k: int) -> list[list[float]]:
    """Filter one ``h x w`` map (lists of rows)."""
    h, w = len(m), len(m[0])
    r = k // 2
    out = []
    for y in range(h):
        row = []
        for x in range(w):
            window = []
            for dy in range(-r, r + 1):
                for dx in range(-r, r + 1):
                    window.append(m[reflect_index(y + dy, h)][reflect_index(x + dx, w)])
            row.append(rank_gaussian_cell(window))
        out.append(row)
    return out


# --------------------------------------------------------------------------- one token
def _explain_one(raw: list[float], ctx_maps: list[list[float]], ctx_rel: list[float],
                 ctx_same: list[bool], norm_rel: list[float], grids, eci_on: bool,
                 filter_on: bool, k: int) -> tuple[list[float], float, list[float], float, float]:
    """ECI, joint normalisation and filter of one raw map.

    ``ctx_*`` are the ECI candidates in context order; ``norm_rel`` are the text relevances
    normalised together with the vision scores. Returns eci, alpha, filtered, lo, hi.
    """
    nv = len(raw)
    eci = list(raw)
    alpha = 0.0
    kept = [i for i in range(len(ctx_maps)) if not ctx_same[i]]
    if eci_on and kept:
        total = 0.0
        for i in kept:
            total += ctx_rel[i]
        interf = [0.0] * nv
        for i in kept:
            wi = ctx_rel[i] / (total + EPS)
            for v in range(nv):
                interf[v] += wi * ctx_maps[i][v]
        mi = 0.0
        ii = 0.0
        for v in range(nv):
            mi += raw[v] * interf[v]
            ii += interf[v] * interf[v]
        alpha = mi / ii if ii > 0.0 else 0.0
        eci = [max(0.0, raw[v] - alpha * interf[v]) for v in range(nv)]

    values = eci + list(norm_rel)
    lo = min(values) if values else 0.0
    hi = max(values) if values else 0.0
    if hi > lo:
        norm = [(x - lo) / (hi - lo) for x in eci]
    else:
        norm = [0.0] * nv

    if not filter_on:
        return eci, alpha, norm, lo, hi
    filtered: list[float] = []
    off = 0
    for g in grids:
        for t in range(g.t):
            base = off + t * g.h * g.w
            m = [[norm[base + y * g.w + x] for x in range(g.w)] for y in range(g.h)]
            for row in rank_gaussian_map(m, k):
                filtered.extend(row)
        off += g.size
    return eci, alpha, filtered, lo, hi


def _pack(ids, positions, nv, C, raws, rows, rels, ctxs) -> RefTokens:
    n = len(ids)

    def arr(values, width):
        return np.array(values, dtype=np.float64).reshape(n, width)

    filtered = arr([r[2] for r in rows], nv)
    maps = np.zeros(filtered.shape, dtype=np.uint8)
    for a in range(filtered.shape[0]):
        for b in range(filtered.shape[1]):
            maps[a, b] = min(255, max(0, math.floor(255.0 * filtered[a, b])))
    width = C
    return RefTokens(
        token_ids=np.array(ids, dtype=np.int64), positions=np.array(positions, dtype=np.int64),
        raw=arr(raws, nv), eci=arr([r[0] for r in rows], nv), filtered=filtered, maps=maps,
        alpha=np.array([r[1] for r in rows], dtype=np.float64),
        relevance=arr(rels, width), context=np.array(ctxs, dtype=bool).reshape(n, width),
        norm_lo=np.array([r[3] for r in rows], dtype=np.float64),
        norm_hi=np.array([r[4] for r in rows], dtype=np.float64),
    )


def reference_explain(inputs, eci: bool = True, filter: bool = True, kernel_size: int = 3,
                      explain_prompt: bool = True, answer_limit: int | None = None
                      ) -> RefExplanation:
    """Explain every answer token (and every prompt token) the slow, obvious way.

    ``inputs`` is a ``tam_engine.core.inputs.TamInputs``. ``answer_limit`` explains only the
    first answer tokens (for timing the reference on a subset); the context is unchanged.
    """
    ids = [int(i) for i in np.asarray(inputs.ids).reshape(-1)]
    L = int(inputs.input_len)
    T = len(ids) - L
    score = _Scores(inputs.hidden, inputs.lm_weight, inputs.lm_bias)
    grids = list(inputs.spans.grids)
    vis_pos = [int(p) for g in grids for p in g.positions]
    prm_pos = [int(p) for p in inputs.spans.prompt_positions]
    np_ = len(prm_pos)
    C = np_ + T
    key = [s.strip() for s in inputs.token_texts]

    def vision_map(c: int) -> list[float]:
        return [score(p, c) for p in vis_pos]

    prompt_maps = [vision_map(ids[p]) for p in prm_pos]
    answer_maps = [vision_map(ids[L + j]) for j in range(T)]

    # Answer token k: class ids[L+k], context = prompt tokens then answer tokens 0..k-1.
    n_ans = T if answer_limit is None else min(T, answer_limit)
    rows, rels, ctxs = [], [], []
    for k in range(n_ans):
        c = ids[L + k]
        own = key[L + k]
        maps, rel, same = [], [], []
        rel_row = [0.0] * C
        ctx_row = [False] * C
        for i, p in enumerate(prm_pos):
            r = score(p, c)
            maps.append(prompt_maps[i])
            rel.append(r)
            same.append(key[p] == own)
            rel_row[i] = r
            ctx_row[i] = True
        for j in range(k):
            r = score(L + j - 1, c)
            maps.append(answer_maps[j])
            rel.append(r)
            same.append(key[L + j] == own)
            rel_row[np_ + j] = r
            ctx_row[np_ + j] = True
        rows.append(_explain_one(answer_maps[k], maps, rel, same, rel, grids, eci, filter,
                                 kernel_size))
        rels.append(rel_row)
        ctxs.append(ctx_row)
    answer = _pack([ids[L + k] for k in range(n_ans)], [L + k for k in range(n_ans)],
                   len(vis_pos), C, answer_maps[:n_ans], rows, rels, ctxs)

    prompt = None
    if explain_prompt:
        rows, rels, ctxs = [], [], []
        for j, pj in enumerate(prm_pos):
            c = ids[pj]
            own = key[pj]
            all_rel = [score(p, c) for p in prm_pos]
            before = list(range(j))
            rows.append(_explain_one(
                prompt_maps[j], [prompt_maps[i] for i in before], [all_rel[i] for i in before],
                [key[prm_pos[i]] == own for i in before], all_rel, grids, eci, filter,
                kernel_size))
            rels.append(all_rel + [0.0] * T)
            ctxs.append([True] * np_ + [False] * T)
        prompt = _pack([ids[p] for p in prm_pos], prm_pos, len(vis_pos), C, prompt_maps, rows,
                       rels, ctxs)
    return RefExplanation(answer=answer, prompt=prompt)
