"""The rank Gaussian filter (TAM-METHOD section 6), vectorised and batched.

For every cell, the ``k x k`` window (numpy ``mode="reflect"`` borders) is sorted into
``v_0 <= ... <= v_{n-1}``; with ``mu`` and ``sd`` its mean and population standard deviation and
``sigma = sd / mu``, the output is ``sum_r g_r v_r / sum_r g_r`` with
``g_r = exp(-x_r^2 / (2 sigma^2))``, ``x_r = r - (n-1)/2``; ``mu <= 0`` gives 0 and a flat window
(``sigma = 0``) its median.

Speed: the 3 x 3 case (the one TAM uses) sorts with comparator networks on whole arrays (each
horizontal triple sorted once, then a 16-comparator merge per window), chunk by chunk so the
working set stays in cache; the general case falls back to ``np.sort``. Both compute the weights without dividing by ``sigma``:
``x^2 / (2 sigma^2) = x^2 t`` with ``t = mu^2 / (2 var)``, capped at ``_CUT`` so that a flat window
(``t = inf``) needs no special case and no weight is ever denormal.
"""

from __future__ import annotations

import numpy as np

# exp(-_CUT) ~ 9e-27: a weight this small changes no float32/float64 result; capping there
# also keeps every weight a normal number (denormals are slow) and avoids inf * 0.
_CUT = 60.0
# Bytes per working array per chunk. Alone on one thread 128 KiB was best (the ~12 arrays of
# a chunk stay in L2); with the engine's two threads 512 KiB is 10 % faster, as each ufunc
# call then holds the GIL less often per cell (a third of the thread switches).
_CHUNK_BYTES = 524_288
# Merges three sorted triples (cells 0-2, 3-5, 6-8) into one sorted run of nine: 16
# comparators (found by a search over the 64 0-1 inputs made of sorted triples); tests check
# it with the 0-1 principle.
MERGE3x3 = ((0, 6), (1, 7), (2, 8), (2, 5), (1, 4), (3, 6), (4, 7), (0, 3), (5, 8), (2, 6),
            (1, 3), (5, 7), (2, 3), (3, 4), (4, 6), (5, 6))


def rank_weights(kernel_size: int) -> np.ndarray:
    """Rank offsets ``x_r = r - (n-1)/2`` for a ``k x k`` window, ``n = k*k``."""
    n = kernel_size * kernel_size
    return np.arange(n, dtype=np.float64) - (n - 1) / 2.0


def rank_gaussian_filter(maps: np.ndarray, kernel_size: int = 3, dtype=np.float64,
                         out: np.ndarray | None = None) -> np.ndarray:
    """Denoise 2-D maps with the rank Gaussian filter.

    Parameters
    ----------
    maps
        ``(..., h, w)`` array; every trailing 2-D slice is filtered on its own.
    kernel_size
        Odd window size ``k``.
    dtype
        Working and output precision, ``float64`` (default) or ``float32`` (faster;
        relative error ~1e-6, ample for maps on a [0, 1] scale; values must stay below
        ~1e18 so that squared deviations fit in float32).
    out
        Optional C-contiguous array of ``dtype`` and the shape of ``maps`` to write into.

    Returns
    -------
    numpy.ndarray
        Array of ``dtype`` with the shape of ``maps``. Windows with mean <= 0 give 0; flat
        windows give their median; the result never holds NaN or inf for finite input.
    """
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError("kernel_size must be a positive odd number")
    dtype = np.dtype(dtype)
    if dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError("dtype must be float32 or float64")
    x = np.asarray(maps)
    if x.ndim < 2:
        raise ValueError("maps must have at least two dimensions (h, w)")
    h, w = x.shape[-2:]
    flat = x.reshape((-1, h, w))
    if out is None:
        dest = np.empty(flat.shape, dtype=dtype)
    elif out.dtype != dtype or out.shape != x.shape or not out.flags.c_contiguous:
        raise ValueError("out must be a C-contiguous array of dtype with the maps' shape")
    else:
        dest = out.reshape(flat.shape)
    if flat.size == 0:
        return dest.reshape(x.shape)
    if kernel_size == 1:
        # A 1-cell window: mean = median = the value itself, or 0 where it is <= 0.
        np.maximum(flat, 0, out=dest)
        return dest.reshape(x.shape)
    step = max(1, _CHUNK_BYTES // (dtype.itemsize * h * w))
    if kernel_size != 3:
        step = max(1, step // (kernel_size * kernel_size // 9))
    for start in range(0, flat.shape[0], step):
        padded = _reflect_pad(flat[start:start + step], kernel_size // 2, dtype)
        if kernel_size == 3:
            _filter3(padded, dest[start:start + step])
        else:
            _filter_sorted(padded, kernel_size, dest[start:start + step])
    return dest.reshape(x.shape)


def _reflect_pad(x: np.ndarray, r: int, dtype: np.dtype) -> np.ndarray:
    """numpy ``mode="reflect"`` padding of the last two axes (the edge is not repeated)."""
    n, h, w = x.shape
    if r != 1 or h < 2 or w < 2:
        return np.pad(x.astype(dtype, copy=False), [(0, 0), (r, r), (r, r)], mode="reflect")
    # The common 3 x 3 case by hand: np.pad's generality costs more than the filter's copies.
    p = np.empty((n, h + 2, w + 2), dtype)
    p[:, 1:-1, 1:-1] = x
    p[:, 0, 1:-1] = x[:, 1]
    p[:, -1, 1:-1] = x[:, -2]
    p[:, :, 0] = p[:, :, 2]
    p[:, :, -1] = p[:, :, -3]
    return p


def _weight_exponent(mu: np.ndarray, var: np.ndarray) -> np.ndarray:
    """``t = 1 / (2 sigma^2) = mu^2 / (2 var)``, capped at ``_CUT`` (flat windows: ``_CUT``)."""
    mu2 = mu * mu
    two_var = var + var
    below = two_var * _CUT > mu2
    # The quotient is kept only where it is below the cap; elsewhere (a flat window's 0 / 0, or
    # an overflow) it is replaced. Dividing everywhere and selecting is twice as fast as a
    # division masked with ``where=``.
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        q = np.divide(mu2, two_var)
    return np.where(below, q, mu.dtype.type(_CUT))


def _sort_windows(padded: np.ndarray, n: int, h: int, w: int
                  ) -> tuple[list[np.ndarray], np.ndarray]:
    """The nine values of every 3 x 3 window of reflect-padded ``(n, h+2, w+2)`` maps, sorted
    (``v[0] <= ... <= v[8]`` cell by cell; comparisons only, so exact), and a free buffer.

    Every horizontal triple is sorted once (3 comparators) and shared by the windows above,
    on and below it; each window then merges its three sorted rows (``MERGE3x3``, 16
    comparators) instead of sorting nine values from scratch (25)."""
    dt = padded.dtype
    # The three horizontal neighbours of every padded cell, as contiguous arrays.
    r = [np.empty((n, h + 2, w), dt) for _ in range(3)]
    for dx in range(3):
        np.copyto(r[dx], padded[:, :, dx:dx + w])
    t = np.empty((n, h + 2, w), dt)
    for i, j in ((0, 1), (1, 2), (0, 1)):   # sort each triple: r0 <= r1 <= r2
        np.minimum(r[i], r[j], out=t)
        np.maximum(r[i], r[j], out=r[j])
        r[i], t = t, r[i]
    # Window cell 3 * dy + k is rank k of the triple on the window's row dy.
    src = [r[i % 3][:, i // 3:i // 3 + h] for i in range(9)]
    v = [np.empty((n, h, w), dt) for _ in range(9)]
    scratch = np.empty((n, h, w), dt)
    fresh = [True] * 9
    for i, j in MERGE3x3:
        a = src[i] if fresh[i] else v[i]
        b = src[j] if fresh[j] else v[j]
        if fresh[i]:
            np.minimum(a, b, out=v[i])
        else:
            np.minimum(a, b, out=scratch)
        np.maximum(a, b, out=v[j])
        if not fresh[i]:
            v[i], scratch = scratch, v[i]
        fresh[i] = fresh[j] = False
    return v, scratch


def _filter3(padded: np.ndarray, out: np.ndarray) -> None:
    """3 x 3 rank Gaussian filter of reflect-padded ``(n, h+2, w+2)`` maps into ``out``."""
    n, h, w = out.shape
    v, scratch = _sort_windows(padded, n, h, w)

    mu = v[0] + v[1]
    for i in range(2, 9):
        mu += v[i]
    mu /= 9
    # Every step below is the same float32 operation, in the same order, as the plain
    # formula; only buffers are reused, and sums start from their first term instead of from
    # 0 (0 + x = x exactly).
    var = np.subtract(v[0], mu)
    var *= var
    for i in range(1, 9):
        np.subtract(v[i], mu, out=scratch)
        scratch *= scratch
        var += scratch
    var /= 9
    t = _weight_exponent(mu, var)

    # Rank offsets -4..4: the weight of offset +-m is exp(-m^2 t); the centre's is 1. The
    # sums start from offset 1's term: num = v4 + w1 (v3 + v5), den = 1 + 2 w1, ...; each
    # offset's buffers are free once it is added, so offset 1's cells 3 and 5 hold the sums.
    g = var  # reuse as the weight buffer
    num, den = v[3], v[5]
    for m in (1, 2, 3, 4):
        np.multiply(t, -m * m, out=g)
        np.maximum(g, -_CUT, out=g)
        np.exp(g, out=g)
        np.add(v[4 - m], v[4 + m], out=scratch)
        scratch *= g
        g += g
        if m == 1:
            np.add(v[4], scratch, out=num)
            np.add(g, 1.0, out=den)
        else:
            num += scratch
            den += g
    np.divide(num, den, out=out)
    out[mu <= 0] = 0.0


def _filter_sorted(padded: np.ndarray, k: int, out: np.ndarray) -> None:
    """Any odd ``k``: gather the windows, ``np.sort`` them, weight the ranks."""
    n, h, w = out.shape
    win = np.lib.stride_tricks.sliding_window_view(padded, (k, k), axis=(1, 2))
    v = np.sort(win.reshape(n, h, w, k * k), axis=-1)
    mu = v.mean(axis=-1)
    var = np.square(v - mu[..., None]).mean(axis=-1)
    t = _weight_exponent(mu, var)
    xr2 = rank_weights(k).astype(out.dtype) ** 2
    g = np.exp(-np.minimum(t[..., None] * xr2, _CUT))
    np.divide(np.einsum("...r,...r->...", g, v), g.sum(axis=-1), out=out)
    out[mu <= 0] = 0.0
