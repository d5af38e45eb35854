"""The paper's metrics as pure numpy functions (TAM-METHOD section 8).

Maps are uint8 ``[0, 255]`` arrays as the engine produces them; ground-truth masks are boolean.
A map and a mask may be 2-D ``(H, W)`` (an image) or 3-D ``(n, H, W)`` (the frames of a video,
thresholded and scored as one volume).

Caption metrics: :func:`rouge_l` is the usual LCS F-measure; :func:`meteor` is METEOR with
exact word matching only (no stemming and no WordNet synonyms, which need data downloads) and
the standard fragmentation penalty, so it reads somewhat lower than METEOR 1.5 on paraphrases.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np


# --------------------------------------------------------------------------- maps
def otsu_threshold(values: np.ndarray) -> float:
    """Otsu's threshold of uint8 data: foreground is ``values > threshold``.

    Maximises the between-class variance over the 256 levels. A constant input returns its
    value (so its foreground is empty), never NaN.
    """
    v = np.asarray(values)
    if v.size == 0:
        return 0.0
    v = np.clip(np.rint(v), 0, 255).astype(np.int64).ravel()
    hist = np.bincount(v, minlength=256).astype(np.float64)
    p = hist / hist.sum()
    levels = np.arange(256, dtype=np.float64)
    w0 = np.cumsum(p)                       # weight of the class "<= t"
    m0 = np.cumsum(p * levels)
    mt = m0[-1]
    w1 = 1.0 - w0
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (mt * w0 - m0) ** 2 / (w0 * w1)
    between[~np.isfinite(between)] = -1.0
    between[(w0 <= 0) | (w1 <= 1e-12)] = -1.0
    if between.max() < 0:
        return float(v[0])
    # The first maximum, as scikit-image's threshold_otsu: on ties (empty levels between two
    # modes, or two splits equally good) the lowest threshold wins.
    top = between.max()
    return float(np.flatnonzero(between >= top - 1e-12 * top)[0])


def resize_map(map_u8: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Resize an ``(h, w)`` (or ``(n, h, w)``) uint8 map bilinearly to ``(H, W)``."""
    import cv2

    m = np.asarray(map_u8)
    H, W = int(shape[0]), int(shape[1])
    if m.ndim == 3:
        return np.stack([resize_map(f, (H, W)) for f in m])
    if m.shape == (H, W):
        return m.astype(np.uint8, copy=False)
    return cv2.resize(m.astype(np.uint8), (W, H), interpolation=cv2.INTER_LINEAR)


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two boolean arrays (0 when both are empty)."""
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    union = np.count_nonzero(a | b)
    return float(np.count_nonzero(a & b) / union) if union else 0.0


def precision_recall(pred: np.ndarray, gt: np.ndarray) -> tuple[float, float]:
    """Pixel precision and recall of a predicted foreground (0 where undefined)."""
    pred, gt = np.asarray(pred, bool), np.asarray(gt, bool)
    tp = np.count_nonzero(pred & gt)
    n_pred, n_gt = np.count_nonzero(pred), np.count_nonzero(gt)
    return (float(tp / n_pred) if n_pred else 0.0, float(tp / n_gt) if n_gt else 0.0)


def object_score(map_at_mask: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    """Obj-IoU of one token: Otsu foreground of its map (already at mask size) vs the mask."""
    thr = otsu_threshold(map_at_mask)
    fg = np.asarray(map_at_mask) > thr
    p, r = precision_recall(fg, mask)
    return {"iou": iou(fg, mask), "precision": p, "recall": r, "threshold": thr}


def function_score(map_at_mask: np.ndarray, threshold: float) -> float:
    """Func-IoU of one token: the fraction of pixels at or below the foreground threshold."""
    m = np.asarray(map_at_mask)
    return float(np.count_nonzero(m <= threshold) / m.size) if m.size else 1.0


#: The pointing game's tolerance in pixels of the mask (Zhang et al., "Top-down neural
#: attention by excitation backprop", 2016, and the benchmarks that followed: 15 pixels).
POINTING_TOLERANCE = 15.0


def map_peak(map_at_mask: np.ndarray, rng: np.random.Generator | None = None
             ) -> tuple[int, ...]:
    """Index of the map's maximum (``(y, x)``, or ``(frame, y, x)`` for a video). Ties (a
    saturated plateau, a constant map) are broken uniformly at random with ``rng`` (the first
    in reading order without one): a map that does not point is scored as pointing at random,
    never at a corner it did not choose."""
    m = np.asarray(map_at_mask)
    flat = m.reshape(-1)
    tied = np.flatnonzero(flat == flat.max())
    pick = tied[int(rng.integers(tied.size))] if rng is not None and tied.size > 1 else tied[0]
    return tuple(int(i) for i in np.unravel_index(int(pick), m.shape))


def pointing_hit(map_at_mask: np.ndarray, mask: np.ndarray,
                 tolerance: float = POINTING_TOLERANCE,
                 rng: np.random.Generator | None = None) -> bool:
    """The pointing game: does the map's maximum (:func:`map_peak`) fall inside the mask, or
    within ``tolerance`` pixels (Euclidean) of it? A video's maximum is checked against the
    mask of its own frame."""
    mask = np.asarray(mask, bool)
    if np.shape(map_at_mask) != mask.shape:
        raise ValueError(f"map {np.shape(map_at_mask)} and mask {mask.shape} differ in shape")
    *frame, y, x = map_peak(map_at_mask, rng)
    plane = mask[tuple(frame)] if frame else mask
    r = int(np.floor(max(tolerance, 0.0)))
    y0, x0 = max(y - r, 0), max(x - r, 0)
    window = plane[y0:y + r + 1, x0:x + r + 1]
    if not window.any():
        return False
    dy = np.arange(y0, y0 + window.shape[0])[:, None] - y
    dx = np.arange(x0, x0 + window.shape[1])[None, :] - x
    return bool((window & (dy * dy + dx * dx <= tolerance * tolerance)).any())


def f1_iou(obj_iou: float, func_iou: float) -> float:
    """Harmonic mean of the dataset means of Obj-IoU and Func-IoU (0 when both are 0)."""
    s = obj_iou + func_iou
    return float(2.0 * obj_iou * func_iou / s) if s > 0 else 0.0


# --------------------------------------------------------------------------- captions
_WORD_RE = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def caption_words(text: str) -> list[str]:
    """Lower-case word tokens of a caption, punctuation dropped."""
    return _WORD_RE.findall(text.lower().replace("\u2019", "'"))


def _lcs(a: Sequence[str], b: Sequence[str]) -> int:
    if not a or not b:
        return 0
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


def rouge_l(hypothesis: str, references: Sequence[str] | str, beta: float = 1.2) -> float:
    """ROUGE-L F-measure, with the COCO caption convention for several references.

    Precision ``LCS/|hyp|`` and recall ``LCS/|ref|`` are each maximised over the references,
    then combined as ``(1 + beta^2) P R / (R + beta^2 P)`` with ``beta = 1.2``.
    """
    refs = [references] if isinstance(references, str) else list(references)
    hyp = caption_words(hypothesis)
    if not hyp or not refs:
        return 0.0
    precs: list[float] = []
    recs: list[float] = []
    for ref in refs:
        ref_words = caption_words(ref)
        if not ref_words:
            continue
        lcs = _lcs(hyp, ref_words)
        precs.append(lcs / len(hyp))
        recs.append(lcs / len(ref_words))
    if not precs:
        return 0.0
    p, r = max(precs), max(recs)
    if p == 0 or r == 0:
        return 0.0
    return float((1 + beta ** 2) * p * r / (r + beta ** 2 * p))


def _align_exact(hyp: Sequence[str], ref: Sequence[str]) -> list[tuple[int, int]]:
    """Maximum exact unigram alignment with few chunks.

    Each hypothesis word, in order, takes the free reference occurrence right after the
    previous match when there is one (the chunk goes on), else the free occurrence that starts
    the longest run of further matches, else the first. Full METEOR searches all alignments
    for the fewest chunks; this greedy rule finds the same on ordinary captions, and the
    number of matches is always the maximum.
    """
    free: dict[str, list[int]] = {}
    for j, w in enumerate(ref):
        free.setdefault(w, []).append(j)
    taken = [False] * len(ref)

    def run_length(i: int, j: int) -> int:
        n = 0
        while i + n < len(hyp) and j + n < len(ref) and not taken[j + n] \
                and hyp[i + n] == ref[j + n]:
            n += 1
        return n

    pairs: list[tuple[int, int]] = []
    last = -2
    for i, w in enumerate(hyp):
        slots = free.get(w)
        if not slots:
            continue
        if last + 1 in slots:
            j = last + 1
        else:
            j = max(slots, key=lambda s: (run_length(i, s), -s))
        slots.remove(j)
        taken[j] = True
        pairs.append((i, j))
        last = j
    return pairs


def _chunks(pairs: list[tuple[int, int]]) -> int:
    if not pairs:
        return 0
    n = 1
    for (i0, j0), (i1, j1) in zip(pairs, pairs[1:]):
        if not (i1 == i0 + 1 and j1 == j0 + 1):
            n += 1
    return n


def meteor(hypothesis: str, references: Sequence[str] | str, alpha: float = 0.9,
           beta: float = 3.0, gamma: float = 0.5) -> float:
    """Exact-match METEOR (best over references).

    ``Fmean = P R / (alpha P + (1 - alpha) R)`` over matched unigrams, times
    ``1 - gamma (chunks / matches)^beta`` (the fragmentation penalty). Parameters are NLTK's
    defaults. No stemming or synonym stages: see the module docstring.
    """
    refs = [references] if isinstance(references, str) else list(references)
    hyp = caption_words(hypothesis)
    best = 0.0
    for ref_text in refs:
        ref = caption_words(ref_text)
        if not hyp or not ref:
            continue
        pairs = _align_exact(hyp, ref)
        m = len(pairs)
        if m == 0:
            continue
        p, r = m / len(hyp), m / len(ref)
        fmean = p * r / (alpha * p + (1 - alpha) * r)
        penalty = gamma * (_chunks(pairs) / m) ** beta
        best = max(best, fmean * (1 - penalty))
    return float(best)
