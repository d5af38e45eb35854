"""The geometry oracle's shared pieces: bright-square media for every matrix case, and the check
that a grid's cells saw the square where their ``cell_box`` says they did.

API (stable; the family test modules rely on exactly this):

``SQUARE = (0.55, 0.15, 0.85, 0.45)``
    The bright square, ``(x0, y0, x1, y1)`` as fractions of the frame (off-centre, so a flip,
    a transpose or a stretched map is caught).
``CASE_SIZES: dict[str, list[tuple[int, int]]]``
    ``(height, width)`` of each image of each case ("video": the frame size).
``VIDEO_FRAMES = 8``
    Frames in the "video" case.
``bright_square(h, w, square=SQUARE) -> np.ndarray``
    ``(h, w, 3)`` uint8, black except a white rectangle at ``square``.
``snapped_square(h, w, square=SQUARE) -> Box``
    The rectangle :func:`bright_square` really draws (snapped to whole pixels).
``case_media(case, sizes=None) -> list[MediaItem]``
    The media of ``case`` (one item; two for "two"), each black except the bright square;
    ``sizes`` overrides :data:`CASE_SIZES` for a family that needs other sizes.
``unnormalize(pixel_values, mean, std) -> np.ndarray``
    ``(..., C, H, W)`` normalised pixels -> ``(..., H, W)`` brightness in [0, 1].
``block_means(plane, h, w) -> np.ndarray``
    ``(..., H, W)`` plane -> ``(..., h, w)`` mean over each of ``h x w`` equal blocks.
``per_grid(grids, values) -> list[np.ndarray]``
    A flat ``(n_vision,)`` vector -> one ``(t, h, w)`` array per grid (sequence order).
``overlap_fraction(grid, square=SQUARE) -> np.ndarray``
    ``(h, w)``: the fraction of each cell's ``cell_box`` inside ``square`` (the prediction).
``assert_grid_sees_square(grid, cell_brightness, square=SQUARE, tol=0.35)``
    ``cell_brightness`` is ``(t, h, w)`` or ``(h, w)`` in [0, 1]: the brightness of the pixels
    each cell really saw (from the processor's own ``pixel_values``). Asserts, for every
    temporal slot, that the brightest cell's ``cell_box`` overlaps the square (when the grid
    saw any of it) and that every cell's brightness is within ``tol`` of its predicted
    overlap. Raises ``AssertionError`` naming the grid, the slot and the worst cell.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from tam_engine.core.media import MediaItem
from tam_engine.core.spans import Box, VisionGrid, grid_slices

SQUARE: Box = (0.55, 0.15, 0.85, 0.45)
VIDEO_FRAMES = 8
CASE_SIZES: dict[str, list[tuple[int, int]]] = {
    "square": [(128, 128)],
    "wide": [(60, 180)],
    "tall": [(180, 60)],
    "two": [(64, 64), (96, 160)],
    "large": [(600, 900)],
    "video": [(48, 80)],  # non-square frames, so crops and padding show up
}


def bright_square(h: int, w: int, square: Box = SQUARE) -> np.ndarray:
    x0, y0, x1, y1 = square
    img = np.zeros((h, w, 3), dtype=np.uint8)
    img[round(y0 * h):round(y1 * h), round(x0 * w):round(x1 * w)] = 255
    return img


def snapped_square(h: int, w: int, square: Box = SQUARE) -> Box:
    x0, y0, x1, y1 = square
    return (round(x0 * w) / w, round(y0 * h) / h, round(x1 * w) / w, round(y1 * h) / h)


def case_media(case: str, sizes: Sequence[tuple[int, int]] | None = None) -> list[MediaItem]:
    if case not in CASE_SIZES:
        raise ValueError(f"unknown case {case!r}; known: {', '.join(CASE_SIZES)}")
    sizes = list(sizes) if sizes is not None else CASE_SIZES[case]
    if case == "video":
        h, w = sizes[0]
        n = VIDEO_FRAMES
        frames = np.stack([bright_square(h, w)] * n)
        return [MediaItem(kind="video", path="square.mp4", frames=frames,
                          frame_slot=np.arange(n, dtype=np.int64),
                          timestamps=np.arange(n, dtype=np.float64), fps=1.0)]
    return [MediaItem(kind="image", path=f"{case}{i + 1}.png", frames=bright_square(h, w)[None])
            for i, (h, w) in enumerate(sizes)]


def unnormalize(pixel_values, mean, std) -> np.ndarray:
    a = pixel_values.float().numpy() if hasattr(pixel_values, "float") else \
        np.asarray(pixel_values, dtype=np.float32)
    mean = np.asarray(mean, dtype=np.float32).reshape(-1, 1, 1)
    std = np.asarray(std, dtype=np.float32).reshape(-1, 1, 1)
    return (a * std + mean).mean(axis=-3)


def block_means(plane: np.ndarray, h: int, w: int) -> np.ndarray:
    plane = np.asarray(plane, dtype=np.float64)
    H, W = plane.shape[-2:]
    if H % h or W % w:
        raise ValueError(f"a {H}x{W} plane does not split into {h}x{w} equal blocks")
    lead = plane.shape[:-2]
    return plane.reshape(*lead, h, H // h, w, W // w).mean(axis=(-3, -1))


def per_grid(grids: Sequence[VisionGrid], values: np.ndarray) -> list[np.ndarray]:
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    if values.size != sum(g.size for g in grids):
        raise ValueError(f"{values.size} values for {sum(g.size for g in grids)} vision tokens")
    return [values[s].reshape(g.t, g.h, g.w) for g, s in zip(grids, grid_slices(grids))]


def overlap_fraction(grid: VisionGrid, square: Box = SQUARE) -> np.ndarray:
    sx0, sy0, sx1, sy1 = square
    out = np.zeros((grid.h, grid.w))
    for r in range(grid.h):
        for c in range(grid.w):
            x0, y0, x1, y1 = grid.cell_box(r, c)
            ox = max(0.0, min(x1, sx1) - max(x0, sx0)) / (x1 - x0)
            oy = max(0.0, min(y1, sy1) - max(y0, sy0)) / (y1 - y0)
            out[r, c] = ox * oy
    return out


def assert_grid_sees_square(grid: VisionGrid, cell_brightness: np.ndarray,
                            square: Box = SQUARE, tol: float = 0.35) -> None:
    bright = np.asarray(cell_brightness, dtype=np.float64)
    if bright.ndim == 2:
        bright = bright[None]
    if bright.shape[1:] != (grid.h, grid.w):
        raise AssertionError(f"brightness {bright.shape} does not fit grid "
                             f"{grid.t}x{grid.h}x{grid.w}")
    pred = overlap_fraction(grid, square)
    where = f"grid of media {grid.media_index + 1} ({grid.role}, box {grid.box})"
    for t, plane in enumerate(bright):
        r, c = np.unravel_index(int(np.argmax(plane)), plane.shape)
        if pred.max() > 0 and pred[r, c] == 0:
            raise AssertionError(f"{where}, slot {t}: the brightest cell ({r}, {c}) with box "
                                 f"{grid.cell_box(int(r), int(c))} misses the square {square}")
        err = np.abs(plane - pred)
        if err.max() > tol:
            wr, wc = np.unravel_index(int(np.argmax(err)), err.shape)
            raise AssertionError(
                f"{where}, slot {t}: cell ({wr}, {wc}) saw brightness {plane[wr, wc]:.2f} but "
                f"its box {grid.cell_box(int(wr), int(wc))} predicts {pred[wr, wc]:.2f} of the "
                f"square {square} (tolerance {tol})")
