"""Chance lines for ``tam eval``: the paper's metrics for maps that know nothing about the image.

Object-area bias makes IoU figures look better than they are: a large object is hit by almost
any map. Each caption's words are scored exactly as the method's (the same nouns, masks,
thresholding and Func-IoU, :func:`~tam_engine.eval.scoring.score_explanation`) with its maps
replaced by:

- ``uniform``: every pixel equally activated. Otsu's rule gives a constant map an empty
  foreground (IoU 0, a line that would flatter nothing); the uniform line instead counts the
  whole image as foreground, so its Obj-IoU is the object's area fraction, its recall 1, and
  its Func-IoU 0 (a function word lit everywhere);
- ``centre``: an isotropic Gaussian centred on the frame (sigma a quarter of each side), the
  photographer's bias;
- ``random``: smooth random maps (white noise blurred with a Gaussian of sigma an eighth of the
  shorter side), seeded by the item id and :data:`SEED`, a new one for every token.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

import numpy as np

from tam_engine.eval.metrics import iou, precision_recall

__all__ = ["CHANCE_LINES", "SEED", "centre_map", "chance_maps", "random_smooth_map",
           "uniform_score"]

#: Names of the chance lines, in the order they are printed.
CHANCE_LINES = ("uniform", "centre", "random")
#: Base seed of the random smooth maps (each item mixes in its id).
SEED = 20250630


def centre_map(h: int, w: int, sigma_frac: float = 0.25) -> np.ndarray:
    """uint8 ``(h, w)`` Gaussian centred on the frame, 255 at the centre."""
    y = (np.arange(h) + 0.5 - h / 2.0) / max(sigma_frac * h, 1e-6)
    x = (np.arange(w) + 0.5 - w / 2.0) / max(sigma_frac * w, 1e-6)
    g = np.exp(-0.5 * (y[:, None] ** 2 + x[None, :] ** 2))
    return np.rint(255.0 * g / g.max()).astype(np.uint8)


def random_smooth_map(h: int, w: int, rng: np.random.Generator,
                      sigma_frac: float = 0.125) -> np.ndarray:
    """uint8 ``(h, w)`` smooth random map: blurred white noise stretched to ``[0, 255]``."""
    import cv2

    noise = rng.standard_normal((h, w)).astype(np.float32)
    sigma = max(1.0, sigma_frac * min(h, w))
    m = cv2.GaussianBlur(noise, (0, 0), sigmaX=sigma, sigmaY=sigma,
                         borderType=cv2.BORDER_REFLECT)
    lo, hi = float(m.min()), float(m.max())
    return np.rint(255.0 * (m - lo) / (hi - lo if hi > lo else 1.0)).astype(np.uint8)


def uniform_score(map_at_mask: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """:func:`~tam_engine.eval.metrics.object_score` of a uniform map, its whole area taken as
    foreground (threshold -1, so Func-IoU, the fraction at or below it, is 0)."""
    fg = np.ones(np.shape(mask), dtype=bool)
    p, r = precision_recall(fg, mask)
    return {"iou": iou(fg, mask), "precision": p, "recall": r, "threshold": -1.0}


class _ChanceMaps:
    """The map provider :func:`score_explanation` reads (``maps(k)``, ``maps.gt``) for one
    chance line at one mask shape."""

    def __init__(self, kind: str, shape: tuple[int, ...], item_id: str, seed: int) -> None:
        self.kind = kind
        self.shape = tuple(int(s) for s in shape)
        self.rng = np.random.default_rng([seed, zlib.crc32(item_id.encode("utf-8"))])
        h, w = self.shape[-2], self.shape[-1]
        self._fixed = (np.full((h, w), 255, np.uint8) if kind == "uniform"
                       else centre_map(h, w) if kind == "centre" else None)

    def __call__(self, k: int) -> np.ndarray:
        h, w = self.shape[-2], self.shape[-1]
        m = self._fixed if self._fixed is not None else random_smooth_map(h, w, self.rng)
        return np.broadcast_to(m, self.shape) if len(self.shape) == 3 else m

    def gt(self, mask: np.ndarray) -> np.ndarray:
        return mask


def chance_maps(kind: str, shape: tuple[int, ...], item_id: str, seed: int = SEED
                ) -> tuple[Callable, Callable | None]:
    """``(maps, object_scorer)`` of one chance line for :func:`score_explanation`
    (``object_scorer`` ``None``: the method's own)."""
    if kind not in CHANCE_LINES:
        raise ValueError(f"unknown chance line {kind!r}")
    return _ChanceMaps(kind, shape, item_id, seed), (uniform_score if kind == "uniform"
                                                     else None)
