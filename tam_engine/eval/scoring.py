"""Score one explanation against one item's masks, word by word (TAM-METHOD section 8).

- Nouns: each run of words naming a category with a mask in this item gets Obj-IoU, pixel
  precision and recall from its best token (highest IoU); consecutive runs of the same
  category are merged, keeping the best. Nouns naming a category absent from the item are
  counted, not scored (there is no mask to compare with).
- Pointing game: every token of a scored noun gets a hit when its map's maximum falls inside
  the noun's mask or within ``tolerance`` pixels of it
  (:func:`~tam_engine.eval.metrics.pointing_hit`, ties broken at random, seeded by the item);
  an entry lists its tokens' hits in ``point_hits``.
- Function words: Func-IoU is the fraction of the map at or below the caption's foreground
  threshold (the mean Otsu threshold of its noun tokens); a word of several tokens takes its
  best token. A caption without a scored noun has no threshold, so its function words are not
  scored.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

import numpy as np

from tam_engine.core.explanation import Explanation
from tam_engine.core.words import Word, group_words
from tam_engine.eval.chance import SEED, chance_maps
from tam_engine.eval.metrics import (
    POINTING_TOLERANCE,
    function_score,
    object_score,
    pointing_hit,
)
from tam_engine.eval.words import function_class


def _mask_frame_indices(expl: Explanation, n_mask: int, mask_fps: float | None) -> np.ndarray:
    """Which ground-truth frame each displayed frame of media 0 shows."""
    if not expl.media:
        return np.arange(n_mask)
    m = expl.media[0]
    if mask_fps and m.timestamps.size == m.n_frames and m.n_frames > 1:
        idx = np.rint(m.timestamps * float(mask_fps)).astype(np.int64)
    else:
        idx = np.arange(m.n_frames)
    return np.clip(idx, 0, n_mask - 1)


class _ResizedMaps:
    """Answer-token maps resized to the mask size, computed once per token and cached."""

    def __init__(self, expl: Explanation, shape: tuple[int, ...], mask_fps: float | None):
        self.expl = expl
        self.shape = shape
        self.video = len(shape) == 3
        self.n_frames = expl.media[0].n_frames if expl.media else (shape[0] if self.video else 1)
        self.frame_idx = (_mask_frame_indices(expl, shape[0], mask_fps) if self.video
                          else np.zeros(1, np.int64))
        self._cache: dict[int, np.ndarray] = {}

    def __call__(self, k: int) -> np.ndarray:
        if k not in self._cache:
            # The map where the grids looked (0 where they saw nothing), at the mask's size.
            wh = (int(self.shape[-1]), int(self.shape[-2]))
            frames = [self.expl.placed_map(k, 0, f, size=wh).values
                      for f in range(self.n_frames)]
            self._cache[k] = np.stack(frames) if self.video else frames[0]
        return self._cache[k]

    def gt(self, mask: np.ndarray) -> np.ndarray:
        return mask[self.frame_idx] if self.video else mask


def score_explanation(expl: Explanation, item, masks: dict[str, np.ndarray] | None = None,
                      chance: str | None = None,
                      tolerance: float = POINTING_TOLERANCE) -> dict:
    """Per-word scores of one explanation of ``item`` (an :class:`EvalItem`).

    With ``chance`` (one of :data:`~tam_engine.eval.chance.CHANCE_LINES`), the same words are
    scored the same way with the explanation's maps replaced by that chance line's.
    ``tolerance``: the pointing game's, in mask pixels.
    """
    masks = item.masks() if masks is None else masks
    words = group_words(expl.answer.texts)
    matches = item.vocabulary.match(words)
    noun_words = {i for m in matches for i in range(m.start, m.end)}
    out: dict = {"obj": [], "func": [], "absent_nouns": [], "threshold": None}
    if not masks:
        out["absent_nouns"] = [_text(words, m.start, m.end) for m in matches]
        return out
    shape = next(iter(masks.values())).shape
    maps: _ResizedMaps | Callable = _ResizedMaps(expl, shape, item.mask_fps)
    score_object: Callable = object_score
    if chance is not None:
        maps, scorer = chance_maps(chance, shape, str(item.id))
        score_object = scorer or object_score

    # Ties of a map's maximum are broken by this generator: the same draws on every run.
    rng = np.random.default_rng([SEED, zlib.crc32(str(item.id).encode("utf-8")),
                                 zlib.crc32((chance or "").encode("utf-8"))])
    entries: list[dict] = []
    thresholds: list[float] = []
    for m in matches:
        if m.category not in masks:
            out["absent_nouns"].append(_text(words, m.start, m.end))
            continue
        gt = maps.gt(masks[m.category])  # type: ignore[union-attr]
        best = None
        hits: list[bool] = []
        for k in _tokens(words, m.start, m.end):
            s = score_object(maps(k), gt)
            thresholds.append(s["threshold"])
            hits.append(pointing_hit(maps(k), gt, tolerance, rng))
            if best is None or s["iou"] > best["iou"]:
                best = {**s, "token": k}
        if best is None:
            continue
        entries.append({"text": _text(words, m.start, m.end), "category": m.category,
                        "words": [m.start, m.end], **best, "point_hits": hits})
    out["obj"] = _merge_consecutive(entries)
    if not thresholds:
        return out
    thr = float(np.mean(thresholds))
    out["threshold"] = thr
    for i, w in enumerate(words):
        if i in noun_words:
            continue
        cls = function_class(words, i)
        if cls is None:
            continue
        best_f, best_k = -1.0, -1
        for k in w.tokens:
            f = function_score(maps(k), thr)
            if f > best_f:
                best_f, best_k = f, k
        out["func"].append({"text": w.text, "class": cls, "word": i, "func_iou": best_f,
                            "token": best_k})
    return out


def _tokens(words: list[Word], start: int, end: int) -> list[int]:
    return [k for w in words[start:end] for k in w.tokens]


def _text(words: list[Word], start: int, end: int) -> str:
    return " ".join(w.text for w in words[start:end])


def _merge_consecutive(entries: list[dict]) -> list[dict]:
    """Adjacent noun runs of one category ("man" "player") become one entry, best kept."""
    merged: list[dict] = []
    for e in entries:
        last = merged[-1] if merged else None
        if last is not None and last["category"] == e["category"] and last["words"][1] == \
                e["words"][0]:
            keep = e if e["iou"] > last["iou"] else last
            merged[-1] = {**keep, "text": f"{last['text']} {e['text']}",
                          "words": [last["words"][0], e["words"][1]],
                          "point_hits": last["point_hits"] + e["point_hits"]}
        else:
            merged.append(e)
    return merged

