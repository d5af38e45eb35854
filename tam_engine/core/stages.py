"""Everything after the product, for a block of tokens at a time (TAM-METHOD sections 2-6).

A :class:`StageSource` holds what one set of explained tokens (the answer, or the prompt) needs
to produce any stage of any of its tokens: the vision scores of every explained class (the raw
maps are its rows), each token's ECI weights per class and the text part of its normalisation.
The engine computes every block once (:func:`compute_blocks`, several blocks at a time on its
own threads), keeping only the uint8 maps and the per-token scalars, so memory is bounded by a
block, not by the answer. The raw, ECI and filtered float stages are produced again on demand
(:meth:`StageSource.chunk`) by the very same computation on the very same block, so a stage
asked for later is bit-identical to one computed eagerly.
"""

from __future__ import annotations

import os
import queue
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
from threadpoolctl import threadpool_limits

from tam_engine.core.filters import rank_gaussian_filter
from tam_engine.core.spans import VisionGrid, grid_slices

#: Tokens per block: one block's float64 work array is 16 MB at 128 slots of 18 x 18, the
#: interference product still runs at full BLAS speed, and the engine's threads finish close
#: together (the last block is the most one waits for the other). Measured at that size with
#: two threads: 48 is 5 % faster than 32 (BLAS packs the scores once per block) and 64 is 40 %
#: slower (two blocks' work arrays no longer share the cache).
CHUNK_TOKENS = 48
# The filter is most of the post-product time; a block of at least this many cells is filtered
# on one thread per core (up to 4: beyond, memory bandwidth is the limit).
_THREAD_CELLS = 1 << 20


def _engine_threads() -> int:
    """Threads of the engine's own: a positive integer in TAM_ENGINE_THREADS (as
    OMP_NUM_THREADS for OpenMP; anything else is ignored), else one per core up to 4."""
    value = os.environ.get("TAM_ENGINE_THREADS", "").strip()
    return int(value) if value.isdigit() and int(value) > 0 else min(4, os.cpu_count() or 1)


_FILTER_THREADS = _engine_threads()
# The engine's pass over all blocks runs this many blocks at once, each whole on one thread:
# no stage waits for another's threads, and BLAS's own threads (which spin between calls) are
# not competing with them.
_BLOCK_THREADS = _FILTER_THREADS
# Bytes of float64 per row group after the interference product (fits a core's L2 cache).
_ROW_GROUP_BYTES = 1 << 18


@dataclass
class Chunk:
    """The stages of tokens ``start .. start + n - 1`` of a set."""

    start: int
    raw: np.ndarray        # (n, V) float32
    eci: np.ndarray | None  # (n, V) float32; None when the engine did not ask for it
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
    def _vision64_copy(self) -> np.ndarray:
        if self._vision64 is None:
            # Kept while the engine walks the blocks; the float32 scores stay the only copy
            # afterwards (release()).
            rows, cols = self.vision.shape
            v64 = np.empty((rows, cols), np.float64)
            in_column_blocks(cols, lambda a, b: np.copyto(v64[:, a:b], self.vision[:, a:b]))
            self._vision64 = v64
        return self._vision64

    def _compute(self, c: int, vision64: np.ndarray | None = None,
                 threads: int = _FILTER_THREADS, bufs: _Buffers | None = None,
                 float_stages: bool = True) -> Chunk:
        """Block ``c``. With ``bufs`` its arrays live in those reused buffers (valid until the
        buffers' next block: the engine's pass), else in new arrays (the lazy reader's cache).
        Without ``float_stages`` the block's ``eci`` is left out (the engine's pass over a long
        answer keeps only the maps)."""
        s0 = c * self.chunk_tokens
        s1 = min(len(self), s0 + self.chunk_tokens)
        n, v = s1 - s0, self.vision.shape[1]
        b = bufs or _Buffers(n, v)
        raw32 = np.take(self.vision, self.raw_class[s0:s1], axis=0, out=b.get("raw32", n, v))
        # ``norm`` first holds the interference, then ECI's result, then its normalisation.
        norm = b.get("norm", n, v, np.float64)
        if self.eci:
            v64 = self._vision64_copy() if vision64 is None else vision64
            w = self.weights[s0:s1]
            # Only the classes up to the block's last one with a weight take part.
            used = np.flatnonzero(w.any(axis=0))
            k = int(used[-1]) + 1 if used.size else 0
            np.matmul(w[:, :k], v64[:k], out=norm)
        eci32 = b.get("eci32", n, v) if float_stages else None
        alpha, lo, hi = np.zeros(n), np.zeros(n), np.zeros(n)
        # Everything after the product works on a few rows at a time, so that the rows stay
        # in cache from one step to the next (each step alone on a whole block would stream
        # it from memory again).
        group = max(1, _ROW_GROUP_BYTES // (8 * max(v, 1)))
        raw = b.get("raw64", min(group, n), v, np.float64)
        for r0 in range(0, n, group):
            r = slice(r0, min(n, r0 + group))
            m, e = raw[:r.stop - r0], norm[r]
            np.copyto(m, raw32[r])
            if self.eci:
                alpha[r] = _eci(m, e)
            else:
                np.copyto(e, m)
            if eci32 is not None:
                np.copyto(eci32[r], e)
            lo[r], hi[r] = _joint_normalise(e, self.rel_lo[s0 + r0:s0 + r.stop],
                                            self.rel_hi[s0 + r0:s0 + r.stop])
        filtered = _filter_rows(norm, self.grids, self.filter, self.kernel_size, threads,
                                out=b.get("filtered", n, v))
        return Chunk(start=s0, raw=raw32, eci=eci32, filtered=filtered,
                     maps=to_uint8(filtered, scratch=norm), alpha=alpha, lo=lo, hi=hi)


def in_column_blocks(n_cols: int, fn: Callable[[int, int], object], block: int = 2048) -> None:
    """``fn(a, b)`` for column ranges ``[a, b)`` covering ``n_cols``, on the engine's threads:
    for copies of the large score arrays (a fresh 100 MB array is page-faulted in and
    written about twice as fast by two threads)."""
    starts = range(0, n_cols, block)
    workers = min(_FILTER_THREADS, len(starts))
    if workers <= 1:
        for a in starts:
            fn(a, min(a + block, n_cols))
        return
    with ThreadPoolExecutor(workers) as pool:
        for f in [pool.submit(fn, a, min(a + block, n_cols)) for a in starts]:
            f.result()


def compute_blocks(jobs: list[tuple[StageSource, Callable[[Chunk], None], bool]]) -> None:
    """Every block of every source once, for the engine (nothing cached): ``take`` receives
    each block of its source, on the thread that computed it, in no particular order, with
    its ``eci`` stage when the job's flag asks for the float stages.

    Several blocks run at once, each whole on one thread with single-threaded BLAS (BLAS's own
    threads spin between calls and would compete with them). A block's numbers do not depend
    on the thread that computes it, so they equal :meth:`StageSource.chunk`'s."""
    tasks = [(src, take, keep, c) for src, take, keep in jobs for c in range(src.n_chunks)]
    workers = min(_BLOCK_THREADS, len(tasks))
    if workers <= 1:
        for src, take, keep, c in tasks:
            take(src._compute(c, float_stages=keep))
    else:
        # One set of reused buffers per thread, sized for the largest block.
        rows = max(src.chunk_tokens for src, _, _ in jobs)
        cols = max(src.vision.shape[1] for src, _, _ in jobs)
        free: queue.SimpleQueue[_Buffers] = queue.SimpleQueue()
        for _ in range(workers):
            free.put(_Buffers(rows, cols))
        # The answer and the prompt share one array of scores: one float64 copy for both.
        v64: dict[int, np.ndarray] = {}
        for src, _, _ in jobs:
            if id(src.vision) not in v64:
                v64[id(src.vision)] = src._vision64_copy()
            src._vision64 = v64[id(src.vision)]

        def one(src: StageSource, take: Callable[[Chunk], None], keep: bool, c: int) -> None:
            bufs = free.get()
            try:
                take(src._compute(c, v64[id(src.vision)], threads=1, bufs=bufs,
                                  float_stages=keep))
            finally:
                free.put(bufs)

        with _single_threaded_blas(), ThreadPoolExecutor(workers) as pool:
            for f in [pool.submit(one, *task) for task in tasks]:
                f.result()
    for src, _, _ in jobs:
        src.release()


_blas_lock = threading.Lock()
_blas_users = 0
_blas_limit: threadpool_limits | None = None


@contextmanager
def _single_threaded_blas() -> Iterator[None]:
    """BLAS on one thread while any engine pass runs (the setting is process-wide): the first
    pass to start sets it, the last to finish restores what was there before, so two passes
    at once (two explanations in two threads) cannot leave BLAS on one thread for good."""
    global _blas_users, _blas_limit
    with _blas_lock:
        if _blas_users == 0:
            _blas_limit = threadpool_limits(1, user_api="blas")
        _blas_users += 1
    try:
        yield
    finally:
        with _blas_lock:
            _blas_users -= 1
            if _blas_users == 0 and _blas_limit is not None:
                _blas_limit.restore_original_limits()
                _blas_limit = None


class _Buffers:
    """Work arrays of one block, reused from block to block by one engine thread: new arrays
    of tens of MB per block would each be page-faulted in again (measured: a sixth of the
    engine's CPU time at 128 slots x 1,024 tokens)."""

    def __init__(self, rows: int, cols: int) -> None:
        self.rows, self.cols = rows, cols
        self._arrays: dict[str, np.ndarray] = {}

    def get(self, name: str, n: int, cols: int, dtype: type = np.float32) -> np.ndarray:
        """An ``(n, cols)`` array in the buffer ``name``."""
        arr = self._arrays.get(name)
        if arr is None:
            arr = self._arrays[name] = np.empty(self.rows * self.cols, dtype)
        return arr[:n * cols].reshape(n, cols)



def _eci(raw: np.ndarray, interf: np.ndarray) -> np.ndarray:
    """Section 4 for some rows, in place: ``interf`` holds ``I = w @ maps`` (the weights of
    classes that occur several times in the context summed per class, so the product runs
    over distinct classes only) and becomes ``max(0, m - alpha I)``,
    ``alpha = <m, I> / <I, I>``, which is returned."""
    ii = np.einsum("nv,nv->n", interf, interf)
    mi = np.einsum("nv,nv->n", raw, interf)
    alpha = np.zeros(raw.shape[0])
    np.divide(mi, ii, out=alpha, where=ii > 0)
    # With an empty context (or all-zero relevances) I = 0 and alpha = 0: the map stays raw,
    # which is the method's "ECI applies when the context is non-empty".
    np.multiply(interf, alpha[:, None], out=interf)
    np.subtract(raw, interf, out=interf)
    np.maximum(interf, 0.0, out=interf)
    return alpha


def relevance_bounds(rel: np.ndarray, ctx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise min and max of the relevances inside the context (+inf/-inf without one)."""
    lo = np.where(ctx, rel, np.inf).min(axis=1, initial=np.inf)
    hi = np.where(ctx, rel, -np.inf).max(axis=1, initial=-np.inf)
    return lo, hi


def _joint_normalise(vis: np.ndarray, rel_lo: np.ndarray, rel_hi: np.ndarray
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Min-max the vision scores together with the context relevances, row by row (section 5),
    in place; returns the rows' ``lo`` and ``hi``. A row whose max equals its min becomes all
    zeros."""
    if vis.shape[1]:
        lo = np.minimum(vis.min(axis=1), rel_lo)
        hi = np.maximum(vis.max(axis=1), rel_hi)
    else:
        lo, hi = rel_lo, rel_hi
    lo = np.where(np.isfinite(lo), lo, 0.0)
    hi = np.where(np.isfinite(hi), hi, 0.0)
    span = hi - lo
    flat = span <= 0
    np.subtract(vis, lo[:, None], out=vis)
    # (x - lo) / (hi - lo) stays in [0, 1] exactly (IEEE division is correctly rounded). Flat
    # rows divide by 1 and are zeroed (a division masked with ``where=`` is much slower).
    np.divide(vis, np.where(flat, 1.0, span)[:, None], out=vis)
    vis[flat] = 0.0
    return lo, hi


def _filter_rows(norm: np.ndarray, grids: list[VisionGrid], on: bool, kernel_size: int,
                 threads: int = _FILTER_THREADS, out: np.ndarray | None = None) -> np.ndarray:
    """Rank Gaussian filter of every 2-D map (each image, each video slot), as float32.

    Large blocks are split by rows over threads (numpy releases the GIL inside its loops, and
    each map is filtered on its own, so the result does not depend on the split)."""
    if out is None:
        out = np.empty(norm.shape, dtype=np.float32)
    if not on or norm.shape[1] == 0:
        np.copyto(out, norm)
        return out
    slices = grid_slices(grids)

    def rows(r0: int, r1: int) -> None:
        for g, s in zip(grids, slices):
            block = norm[r0:r1, s].reshape(r1 - r0, g.t, g.h, g.w)
            dest = out[r0:r1, s]
            # float32 keeps ~1e-7 relative error on a [0, 1] scale and halves the memory
            # traffic.
            if dest.flags.c_contiguous:   # one grid: straight into the output
                rank_gaussian_filter(block, kernel_size, dtype=np.float32,
                                     out=dest.reshape(block.shape))
            else:
                dest[...] = rank_gaussian_filter(
                    block, kernel_size, dtype=np.float32).reshape(r1 - r0, g.size)

    n = norm.shape[0]
    workers = min(threads, n) if norm.size >= _THREAD_CELLS else 1
    if workers <= 1:
        rows(0, n)
        return out
    bounds = np.linspace(0, n, workers + 1).astype(int)
    with ThreadPoolExecutor(workers) as pool:
        for f in [pool.submit(rows, int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]:
            f.result()
    return out


def to_uint8(x: np.ndarray, scratch: np.ndarray | None = None) -> np.ndarray:
    """``floor(255 * x)`` for ``x`` in [0, 1] (a cast truncates, i.e. floors non-negatives).
    The product is taken in float64 (in ``scratch`` when given), where it is exact for a
    float32 ``x``."""
    return np.multiply(x, 255.0, dtype=np.float64, out=scratch).astype(np.uint8)
