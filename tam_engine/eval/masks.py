"""COCO segmentations to boolean masks, without pycocotools.

COCO stores an object's segmentation as polygons (``[[x1, y1, x2, y2, ...], ...]``), as an
uncompressed run-length encoding (``{"counts": [int, ...], "size": [h, w]}``) or as a
compressed one (``counts`` a string). Runs alternate background/foreground starting with
background and walk the image in column-major (Fortran) order. The compressed form stores the
runs as signed, delta-coded (from the run two back) 5-bit groups offset by 48 into printable
ASCII, 0x20 meaning "more groups follow" and 0x10 the sign of the last group.
"""

from __future__ import annotations

import numpy as np


def decode_counts(s: str | bytes) -> list[int]:
    """Run lengths of a compressed COCO RLE string."""
    data = s.encode("ascii") if isinstance(s, str) else bytes(s)
    counts: list[int] = []
    p = 0
    while p < len(data):
        x, k, more = 0, 0, True
        while more:
            c = data[p] - 48
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and (c & 0x10):
                x |= -1 << (5 * k)
        if len(counts) > 2:
            x += counts[-2]
        counts.append(x)
    return counts


def encode_counts(counts: list[int]) -> str:
    """Compressed COCO RLE string of run lengths (the inverse of :func:`decode_counts`)."""
    out = bytearray()
    for i, c in enumerate(counts):
        x = int(c) - (int(counts[i - 2]) if i > 2 else 0)
        more = True
        while more:
            b = x & 0x1F
            x >>= 5
            # Stop once the remaining bits are pure sign extension of this group.
            more = (x != -1) if (b & 0x10) else (x != 0)
            if more:
                b |= 0x20
            out.append(b + 48)
    return out.decode("ascii")


def rle_to_mask(rle: dict) -> np.ndarray:
    """Decode an uncompressed or compressed RLE dict to an ``(h, w)`` bool mask."""
    h, w = (int(v) for v in rle["size"])
    counts = rle["counts"]
    runs = decode_counts(counts) if isinstance(counts, (str, bytes)) else [int(c) for c in counts]
    flat = np.zeros(h * w, dtype=bool)
    pos, val = 0, False
    for n in runs:
        if val:
            flat[pos:pos + n] = True
        pos += n
        val = not val
    if pos != h * w:
        raise ValueError(f"RLE covers {pos} pixels, the {h}x{w} mask has {h * w}")
    return flat.reshape((w, h)).T


def mask_to_rle(mask: np.ndarray, compressed: bool = True) -> dict:
    """Encode an ``(h, w)`` bool mask as a COCO RLE dict."""
    m = np.asarray(mask, bool)
    flat = m.T.reshape(-1)
    change = np.flatnonzero(np.diff(flat.astype(np.int8))) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    runs = np.diff(bounds).tolist()
    if flat.size and flat[0]:
        runs = [0, *runs]
    counts: str | list[int] = encode_counts(runs) if compressed else runs
    return {"size": [int(m.shape[0]), int(m.shape[1])], "counts": counts}


def polygons_to_mask(polygons: list[list[float]], height: int, width: int) -> np.ndarray:
    """Rasterise COCO polygons (each ``[x1, y1, x2, y2, ...]``) to an ``(h, w)`` bool mask.

    A pixel belongs to a polygon when its centre ``(x + 0.5, y + 0.5)`` is inside (even-odd
    rule), so a rectangle from (2, 2) to (7, 5) covers 5 x 3 pixels, its area, as COCO's own
    rasteriser gives (OpenCV's fillPoly would add the boundary row and column). Several polygons
    of one object are united.
    """
    mask = np.zeros((height, width), dtype=bool)
    xc = np.arange(width) + 0.5
    for poly in polygons:
        pts = np.asarray(poly, dtype=np.float64).reshape(-1, 2)
        if len(pts) < 3:
            continue
        x0, y0 = pts[:, 0], pts[:, 1]
        x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
        lo = max(int(np.floor(min(y0.min(), y1.min()))), 0)
        hi = min(int(np.ceil(max(y0.max(), y1.max()))), height)
        for y in range(lo, hi):
            yc = y + 0.5
            # Half-open in y, so a vertex on the scan line is counted once.
            cross = (y0 <= yc) != (y1 <= yc)
            if not cross.any():
                continue
            xa, ya, xb, yb = x0[cross], y0[cross], x1[cross], y1[cross]
            xi = np.sort(xa + (yc - ya) * (xb - xa) / (yb - ya))
            mask[y] |= (np.searchsorted(xi, xc) % 2).astype(bool)
    return mask


def segmentation_to_mask(seg, height: int, width: int) -> np.ndarray:
    """Any COCO segmentation (polygons, RLE dict, or a list of RLE dicts) to a bool mask."""
    if isinstance(seg, dict):
        m = rle_to_mask(seg)
    elif isinstance(seg, list) and seg and isinstance(seg[0], dict):
        m = np.zeros((height, width), bool)
        for r in seg:
            m |= rle_to_mask(r)
    elif isinstance(seg, list):
        m = polygons_to_mask(seg, height, width)
    else:
        raise ValueError(f"unknown segmentation of type {type(seg).__name__}")
    if m.shape != (height, width):
        raise ValueError(f"segmentation is {m.shape}, the image is {(height, width)}")
    return m
