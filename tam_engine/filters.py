"""The rank Gaussian filter (TAM-METHOD section 6), vectorised and batched."""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

# A window whose coefficient of variation is below this is treated as flat: the Gaussian over
# ranks is then exactly the median (exp(-x^2 / 2 sigma^2) underflows to 0 off-centre anyway).
_SIGMA_FLOOR = 1e-150
# Elements processed per chunk (windows x kernel cells), to bound peak memory.
_CHUNK_ELEMS = 4_000_000


def rank_weights(kernel_size: int) -> np.ndarray:
    """Rank offsets ``x_r = r - (n-1)/2`` for a ``k x k`` window, ``n = k*k``."""
    n = kernel_size * kernel_size
    return np.arange(n, dtype=np.float64) - (n - 1) / 2.0


def rank_gaussian_filter(maps: np.ndarray, kernel_size: int = 3) -> np.ndarray:
    """Denoise 2-D maps with the rank Gaussian filter.

    Parameters
    ----------
    maps
        ``(..., h, w)`` array; every trailing 2-D slice is filtered on its own.
    kernel_size
        Odd window size ``k``.

    Returns
    -------
    numpy.ndarray
        float64 array of the same shape. Windows with mean <= 0 give 0; flat windows give
        their median; the result never holds NaN or inf for finite input.
    """
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError("kernel_size must be a positive odd number")
    x = np.asarray(maps, dtype=np.float64)
    if x.ndim < 2:
        raise ValueError("maps must have at least two dimensions (h, w)")
    lead, (h, w) = x.shape[:-2], x.shape[-2:]
    flat = x.reshape((-1, h, w))
    out = np.empty_like(flat)
    if flat.size == 0:
        return out.reshape(x.shape)
    per_map = h * w * kernel_size * kernel_size
    step = max(1, _CHUNK_ELEMS // max(per_map, 1))
    for start in range(0, flat.shape[0], step):
        out[start:start + step] = _filter_chunk(flat[start:start + step], kernel_size)
    return out.reshape(lead + (h, w))


def _filter_chunk(x: np.ndarray, k: int) -> np.ndarray:
    r = k // 2
    n = k * k
    if r == 0:
        return np.maximum(x, 0.0)
    padded = _reflect_pad(x, r)
    win = sliding_window_view(padded, (k, k), axis=(1, 2)).reshape(x.shape + (n,))
    v = np.sort(win, axis=-1)
    mu = v.mean(axis=-1)
    sd = v.std(axis=-1)
    positive = mu > 0
    sigma = np.zeros_like(mu)
    np.divide(sd, mu, out=sigma, where=positive)
    spread = sigma > _SIGMA_FLOOR
    # 1 / (2 sigma^2), only where the window has spread; elsewhere the weights are the median's.
    inv = np.zeros_like(sigma)
    np.divide(0.5, sigma * sigma, out=inv, where=spread)
    xr2 = rank_weights(k) ** 2
    centre = n // 2
    g = np.exp(-xr2[None, None, None, :] * inv[..., None])
    # Flat windows: exp(0) = 1 for every rank above; the limit is the one-hot median instead.
    g[~spread] = 0.0
    g[..., centre][~spread] = 1.0
    num = np.einsum("...r,...r->...", g, v)
    den = g.sum(axis=-1)
    out = num / den
    out[~positive] = 0.0
    return out


def _reflect_pad(x: np.ndarray, r: int) -> np.ndarray:
    """numpy ``mode="reflect"`` padding of the last two axes (the edge is not repeated)."""
    return np.pad(x, [(0, 0), (r, r), (r, r)], mode="reflect")
