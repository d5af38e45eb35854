"""Everything after the product, for a block of tokens at a time (TAM-METHOD sections 2-6).

A :class:`StageSource` holds what one set of explained tokens (the answer, or the prompt) needs
to produce any stage of any of its tokens: the vision scores of every explained class (the raw
maps are its rows), each token's ECI weights per class and the text part of its normalisation.
The engine runs :meth:`StageSource.chunk` over the tokens, block by block, keeping only the
uint8 maps and the per-token scalars, so memory is bounded by a block, not by the answer. The
raw, ECI and filtered float stages are produced again on demand by the very same call on the
very same block, so a stage asked for later is bit-identical to one computed eagerly.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from tam_engine.core.filters import rank_gaussian_filter
from tam_engine.core.spans import VisionGrid, grid_slices

#: Tokens per block. 64 keeps one block's float64 work arrays near 20 MB each at 128 slots of
#: 18 x 18 while the interference product still runs at full BLAS speed.
CHUNK_TOKENS = 64
# The filter is most of the post-product time; a block of at least this many cells is filtered
# on one thread per core (up to 4: beyond, memory bandwidth is the limit).
_THREAD_CELLS = 1 << 20
_FILTER_THREADS = max(1, min(4, os.cpu_count() or 1))


@dataclass
class Chunk:
    """The stages of tokens ``start .. start + n - 1`` of a set."""

    start: int
    raw: np.ndarray        # (n, V) float32
    eci: np.ndarray        # (n, V) float32
    filtered: np.ndarray   # (n, V) float32
    maps: np.ndarray       # (n, V) uint8
    alpha: np.ndarray      # (n,) float64
    lo: np.ndarray         # (n,) float64
    hi: np.ndarray         # (n,) float64


@dataclass
class StageSource:
    """What one set of tokens needs to produce its stages (see the module docstring).

    ``vision`` is ``(U, V)`` float32: row ``u`` is the clipped logit of the ``u``-th distinct
    explained class at every vision position (exactly the engine's float32 product, so nothing
    is lost). ``raw_class[n]`` is token ``n``'s row in it; ``weights`` ``(N, U)`` float64 holds
    token ``n``'s normalised ECI weights summed per class (the interference is
    ``weights[n] @ vision``); ``rel_lo``/``rel_hi`` the min/max of its context relevances
    (+inf/-inf without context).
    """

    vision: np.ndarray
    raw_class: np.ndarray
    weights: np.ndarray
    rel_lo: np.ndarray
    rel_hi: np.ndarray
    grids: list[VisionGrid]
    eci: bool
    filter: bool
    kernel_size: int
    chunk_tokens: int = CHUNK_TOKENS
    _cache: OrderedDict = field(default_factory=OrderedDict, repr=False, compare=False)
    _vision64: np.ndarray | None = field(default=None, repr=False, compare=False)

    def __len__(self) -> int:
        return int(self.raw_class.size)

    @property
    def n_chunks(self) -> int:
        return -(-len(self) // self.chunk_tokens) if len(self) else 0

    def chunk(self, c: int) -> Chunk:
        """Block ``c`` (tokens ``c * chunk_tokens`` on), computed or taken from a small cache."""
        if c in self._cache:
            self._cache.move_to_end(c)
            return self._cache[c]
        out = self._compute(c)
        self._cache[c] = out
        while len(self._cache) > 2:  # a lazy reader walks tokens in order; two blocks suffice
            self._cache.popitem(last=False)
        return out

    def release(self) -> None:
        """Drop cached blocks and the float64 copy of the scores (the engine calls it when done)."""
        self._cache.clear()
        self._vision64 = None

    def rows(self, stage: str, idx: np.ndarray) -> np.ndarray:
        """Rows ``idx`` of a float stage (``raw``, ``eci`` or ``filtered``), as float32."""
        idx = np.asarray(idx, np.int64).reshape(-1)
        out = np.empty((idx.size, self.vision.shape[1]), np.float32)
        for c in np.unique(idx // self.chunk_tokens):
            ch = self.chunk(int(c))
            sel = np.flatnonzero(idx // self.chunk_tokens == c)
            out[sel] = getattr(ch, stage)[idx[sel] - ch.start]
        self._vision64 = None  # 8 bytes per score: not worth keeping between requests
        return out

    def stage(self, stage: str) -> np.ndarray:
        """A whole float stage ``(N, V)`` float32, block by block (without filling the cache)."""
        out = np.empty((len(self), self.vision.shape[1]), np.float32)
        for c in range(self.n_chunks):
            ch = self._cache.get(c) or self._compute(c)
            out[ch.start:ch.start + ch.raw.shape[0]] = getattr(ch, stage)
        self._vision64 = None
        return out

    # ------------------------------------------------------------------ one block
    def _compute(self, c: int) -> Chunk:
        s0 = c * self.chunk_tokens
        s1 = min(len(self), s0 + self.chunk_tokens)
        raw32 = self.vision[self.raw_class[s0:s1]]
        raw = raw32.astype(np.float64)
        if self.eci:
            eci, alpha = self._eci(raw, self.weights[s0:s1])
        else:
            eci, alpha = raw, np.zeros(s1 - s0)
        norm, lo, hi = _joint_normalise(eci, self.rel_lo[s0:s1], self.rel_hi[s0:s1])
        filtered = _filter_rows(norm, self.grids, self.filter, self.kernel_size)
        return Chunk(start=s0, raw=raw32, eci=eci.astype(np.float32), filtered=filtered,
                     maps=to_uint8(filtered), alpha=alpha, lo=lo, hi=hi)

    def _eci(self, raw: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Section 4 for a block: ``I = w @ maps``, ``alpha = <m, I> / <I, I>``,
        ``max(0, m - alpha I)``. Weights of classes that occur several times in the context
        were summed per class, so the product runs over distinct classes only."""
        if self._vision64 is None:
            # Kept while the engine walks the blocks; the float32 scores stay the only copy
            # afterwards (release()).
            self._vision64 = self.vision.astype(np.float64)
        interf = w @ self._vision64
        ii = np.einsum("nv,nv->n", interf, interf)
        mi = np.einsum("nv,nv->n", raw, interf)
        alpha = np.zeros(raw.shape[0])
        np.divide(mi, ii, out=alpha, where=ii > 0)
        # With an empty context (or all-zero relevances) I = 0 and alpha = 0: the map stays
        # raw, which is the method's "ECI applies when the context is non-empty".
        eci = interf
        np.multiply(interf, alpha[:, None], out=eci)
        np.subtract(raw, eci, out=eci)
        np.maximum(eci, 0.0, out=eci)
        return eci, alpha


def relevance_bounds(rel: np.ndarray, ctx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise min and max of the relevances inside the context (+inf/-inf without one)."""
    lo = np.where(ctx, rel, np.inf).min(axis=1, initial=np.inf)
    hi = np.where(ctx, rel, -np.inf).max(axis=1, initial=-np.inf)
    return lo, hi


def _joint_normalise(vis: np.ndarray, rel_lo: np.ndarray, rel_hi: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Min-max the vision scores together with the context relevances, row by row (section 5).
    A row whose max equals its min becomes all zeros."""
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


def _filter_rows(norm: np.ndarray, grids: list[VisionGrid], on: bool, kernel_size: int
                 ) -> np.ndarray:
    """Rank Gaussian filter of every 2-D map (each image, each video slot), as float32.

    Large blocks are split by rows over threads (numpy releases the GIL inside its loops, and
    each map is filtered on its own, so the result does not depend on the split)."""
    if not on or norm.shape[1] == 0:
        return norm.astype(np.float32)
    out = np.empty(norm.shape, dtype=np.float32)
    slices = grid_slices(grids)

    def rows(r0: int, r1: int) -> None:
        for g, s in zip(grids, slices):
            block = norm[r0:r1, s].reshape(r1 - r0, g.t, g.h, g.w)
            # float32 keeps ~1e-7 relative error on a [0, 1] scale and halves the memory
            # traffic.
            out[r0:r1, s] = rank_gaussian_filter(
                block, kernel_size, dtype=np.float32).reshape(r1 - r0, g.size)

    n = norm.shape[0]
    workers = min(_FILTER_THREADS, n) if norm.size >= _THREAD_CELLS else 1
    if workers <= 1:
        rows(0, n)
        return out
    bounds = np.linspace(0, n, workers + 1).astype(int)
    with ThreadPoolExecutor(workers) as pool:
        for f in [pool.submit(rows, int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]:
            f.result()
    return out


def to_uint8(x: np.ndarray) -> np.ndarray:
    """``floor(255 * x)`` for ``x`` in [0, 1] (a cast truncates, i.e. floors non-negatives).
    The product is taken in float64, where it is exact for a float32 ``x``."""
    return np.multiply(x, 255.0, dtype=np.float64).astype(np.uint8)
