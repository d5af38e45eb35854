"""Faithfulness of token maps: deletion and insertion AUC, measured by teacher forcing.

For one answer token and one map, the vision cells of the image (the model's grid cells, each
covering its box of the original frame as the engine places maps: :meth:`VisionGrid.cell_box`)
are ordered from the most to the least activated (ties in a random order, seeded by the item,
the line and the token). In ``K`` steps the first ``round(j n / K)`` of the ``n`` cells are

- replaced by the baseline (**deletion**; starting from the image), or
- put back into the baseline (**insertion**; starting from the baseline),

and the model, fed the same answer (teacher forcing: one forward pass per image, nothing
generated), gives the token a probability at each step. The AUC is the area under that
probability against the fraction of cells changed (trapezoids over 0..1). A faithful map
makes the probability fall fast when its cells are deleted (low deletion AUC) and rise fast
when they are inserted (high insertion AUC). Following Petsiuk et al. (RISE, 2018), with one
baseline for both curves:

**Baseline**: the image's own per-channel mean colour. A flat image carries no shape, position
or colour contrast; a blurred copy (RISE's insertion start) would keep the colour of a large
object, the very evidence a colour word needs.

The chance lines are the same curves for orders that know nothing of the image: ``uniform`` (a
random order), ``centre`` (the centre prior) and ``random`` (a smooth random map), with the
definitions of :mod:`tam_engine.eval.chance`, sampled at each cell's centre.

The measured tokens are those the Obj-IoU scores: every token of every noun with a mask. Only
images are measured (a video item records why it has no curves).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tam_engine.core.errors import TamError
from tam_engine.core.explanation import Explanation
from tam_engine.core.placement import box_pixels
from tam_engine.core.spans import VisionGrid
from tam_engine.core.words import group_words
from tam_engine.eval.chance import CHANCE_LINES, SEED, centre_map, random_smooth_map

__all__ = ["DEFAULT_BATCH", "DEFAULT_STEPS", "METRICS", "FaithfulnessError",
           "FaithfulnessSpec", "ProbFactory", "ProbFn", "auc", "cell_boxes", "cell_order",
           "faithfulness_record", "kept_masks", "parse_metrics", "step_counts",
           "summarize_faithfulness"]

#: The faithfulness metrics ``tam eval --faithfulness`` accepts.
METRICS = ("deletion", "insertion")
DEFAULT_STEPS = 10
DEFAULT_BATCH = 16
#: Side of the frame-sized chance maps the cell centres are sampled from.
_CHANCE_RES = 64

#: ``kept`` ``(n, H, W)`` bool (True: the original pixel, False: the baseline) -> ``(n, T)``
#: the probability of each answer token, the answer teacher-forced.
ProbFn = Callable[[np.ndarray], np.ndarray]
#: ``(item, explanation)`` -> the :data:`ProbFn` of that item's image and answer.
ProbFactory = Callable[[Any, Explanation], ProbFn]


class FaithfulnessError(TamError):
    """Faithfulness cannot be measured (or verified) for this model or run: ends the run
    instead of being recorded as one item's error."""


@dataclass(frozen=True)
class FaithfulnessSpec:
    """What to measure: ``metrics`` (a subset of :data:`METRICS`, in that order), ``steps``
    (K) and ``batch`` (perturbed images per forward pass)."""

    metrics: tuple[str, ...] = METRICS
    steps: int = DEFAULT_STEPS
    batch: int = DEFAULT_BATCH

    def __post_init__(self) -> None:
        if not self.metrics or any(m not in METRICS for m in self.metrics):
            raise ValueError(f"faithfulness metrics must be among {', '.join(METRICS)}")
        if self.steps < 1:
            raise ValueError("faithfulness steps must be at least 1")
        if self.batch < 1:
            raise ValueError("the faithfulness batch must be at least 1")

    def config(self) -> dict:
        """What makes two runs' faithfulness records comparable (the batch does not)."""
        return {"metrics": list(self.metrics), "steps": self.steps}


def parse_metrics(text: str) -> tuple[str, ...]:
    """``"deletion,insertion"`` -> ``("deletion", "insertion")`` (order as :data:`METRICS`)."""
    names = [t.strip().lower() for t in text.split(",") if t.strip()]
    bad = [n for n in names if n not in METRICS]
    if bad or not names:
        raise ValueError(f"unknown faithfulness metric {', '.join(bad) or repr(text)}: use "
                         f"{' or '.join(METRICS)}, comma-separated")
    return tuple(m for m in METRICS if m in names)


# --------------------------------------------------------------------------- geometry
def cell_boxes(grids: Sequence[VisionGrid], media_index: int, size: tuple[int, int]
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The vision cells of one image: ``(columns, boxes, centres)``.

    ``columns`` are the cells' indices in the explanation's vision vector, ``boxes`` ``(n, 4)``
    their pixel boxes ``x0, y0, x1, y1`` in a ``size = (W, H)`` frame (rounded as the engine
    places maps, clipped to the frame) and ``centres`` ``(n, 2)`` their box centres ``(x, y)``
    as fractions of the frame."""
    w, h = size
    cols, boxes, centres = [], [], []
    start = 0
    for g in grids:
        if g.media_index == media_index:
            if g.t != 1:
                raise ValueError("cell boxes are defined for images (one temporal slot)")
            for r in range(g.h):
                for c in range(g.w):
                    b = g.cell_box(r, c)
                    x0, y0, x1, y1 = box_pixels(b, size)
                    boxes.append((min(max(x0, 0), w), min(max(y0, 0), h),
                                  min(max(x1, 0), w), min(max(y1, 0), h)))
                    centres.append(((b[0] + b[2]) / 2, (b[1] + b[3]) / 2))
                    cols.append(start + r * g.w + c)
        start += g.size
    return (np.asarray(cols, np.int64), np.asarray(boxes, np.int64).reshape(-1, 4),
            np.asarray(centres, np.float64).reshape(-1, 2))


def cell_order(values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Cell indices from the most to the least activated; equal values in a random order."""
    v = np.asarray(values, np.float64).reshape(-1)
    perm = rng.permutation(v.size)
    return perm[np.argsort(-v[perm], kind="stable")]


def step_counts(n_cells: int, steps: int) -> np.ndarray:
    """How many cells are changed at each of the ``K + 1`` steps (0 to all); ``K`` is at most
    the number of cells."""
    k = max(1, min(int(steps), int(n_cells)))
    return np.rint(np.arange(k + 1) * n_cells / k).astype(np.int64)


def kept_masks(boxes: np.ndarray, order: np.ndarray, counts: np.ndarray,
               size: tuple[int, int], mode: str) -> np.ndarray:
    """``(len(counts), H, W)`` bool: the pixels that keep the original image at each step
    (deletion: all but the first ``counts[j]`` cells of ``order``; insertion: only those)."""
    if mode not in METRICS:
        raise ValueError(f"mode must be one of {', '.join(METRICS)}")
    w, h = size
    changed = np.zeros((h, w), bool)
    out = np.empty((len(counts), h, w), bool)
    done = 0
    for j, c in enumerate(counts):
        for i in order[done:int(c)]:
            x0, y0, x1, y1 = boxes[i]
            changed[y0:y1, x0:x1] = True
        done = max(done, int(c))
        out[j] = ~changed if mode == "deletion" else changed
    return out


def auc(fractions: np.ndarray, probs: np.ndarray) -> float:
    """Area under ``probs`` against ``fractions`` (0..1), by trapezoids."""
    return float(np.trapezoid(np.asarray(probs, np.float64), np.asarray(fractions, np.float64)))


# --------------------------------------------------------------------------- one item
def _rng(item_id: str, line: str, k: int) -> np.random.Generator:
    return np.random.default_rng([SEED, zlib.crc32(item_id.encode("utf-8")),
                                  zlib.crc32(line.encode("utf-8")), int(k)])


def _chance_values(kind: str, centres: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    if kind == "uniform":
        return np.zeros(len(centres))           # all tied: the order is the random tie-break
    r = _CHANCE_RES
    m = centre_map(r, r) if kind == "centre" else random_smooth_map(r, r, rng)
    ix = np.clip((centres * r).astype(np.int64), 0, r - 1)
    return m[ix[:, 1], ix[:, 0]].astype(np.float64)


def object_tokens(expl: Explanation, obj_entries: Sequence[dict]) -> list[tuple[int, str]]:
    """``(answer token, category)`` for every token of the scored nouns (score entries)."""
    words = group_words(expl.answer.texts)
    return [(k, e["category"]) for e in obj_entries
            for w in words[e["words"][0]:e["words"][1]] for k in w.tokens]


def faithfulness_record(item: Any, expls: Sequence[Explanation], variant_names: Sequence[str],
                        obj_entries: Sequence[dict], prob_factory: ProbFactory,
                        spec: FaithfulnessSpec) -> dict:
    """Deletion/insertion curves and AUCs of one item for every variant and chance line.

    ``expls`` are the item's explanations, one per variant (same answer, same grids);
    ``obj_entries`` the scored nouns (:func:`~tam_engine.eval.scoring.score_explanation`'s
    ``obj``). All perturbed images of the item are deduplicated and run in batches of
    ``spec.batch``.
    """
    expl = expls[0]
    if item.kind != "image" or not expl.media or expl.media[0].kind != "image":
        return {"skipped": "faithfulness is measured on images only"}
    size = expl.media[0].size
    cols, boxes, centres = cell_boxes(expl.grids, 0, size)
    tokens = object_tokens(expl, obj_entries)
    counts = step_counts(len(cols), spec.steps)
    fractions = counts / max(len(cols), 1)
    rec: dict = {"steps": int(len(counts) - 1), "fractions": [float(f) for f in fractions],
                 "tokens": [], "variants": {}, "chance": {}}
    if not tokens or not len(cols):
        return rec

    # Every image of every curve, each distinct one once; the original comes first.
    w, h = size
    index: dict[bytes, int] = {}
    stack: list[np.ndarray] = []

    def slot(kept: np.ndarray) -> int:
        key = np.packbits(kept).tobytes()
        if key not in index:
            index[key] = len(stack)
            stack.append(kept)
        return index[key]

    slot(np.ones((h, w), bool))
    plan: dict[tuple[str, str], list[dict[str, list[int]]]] = {}
    lines = [("variants", n, e) for n, e in zip(variant_names, expls)] + \
        [("chance", c, None) for c in CHANCE_LINES]
    for group, name, ex in lines:
        per_token = []
        for k, _cat in tokens:
            rng = _rng(str(item.id), f"{group}/{name}", k)
            values = (ex.vision_vector(k)[cols] if ex is not None
                      else _chance_values(name, centres, rng))
            order = cell_order(values, rng)
            per_token.append({m: [slot(x) for x in kept_masks(boxes, order, counts, size, m)]
                              for m in spec.metrics})
        plan[(group, name)] = per_token

    prob_fn = prob_factory(item, expl)
    kept = np.stack(stack)
    probs = np.concatenate([np.asarray(prob_fn(kept[i:i + spec.batch]), np.float64)
                            for i in range(0, len(kept), spec.batch)])
    if probs.shape != (len(kept), expl.n_answer):
        raise FaithfulnessError(
            f"The model gave {probs.shape} probabilities for {len(kept)} images of an answer "
            f"of {expl.n_answer} tokens.", "This is a bug; please report it.")
    rec["tokens"] = [{"token": int(k), "text": expl.answer.texts[k], "category": c,
                      "p": float(probs[0, k])} for k, c in tokens]
    for (group, name), per_token in plan.items():
        out: dict[str, dict[str, list]] = {}
        for m in spec.metrics:
            curves = [probs[t[m], k].tolist() for t, (k, _) in zip(per_token, tokens)]
            out[m] = {"auc": [auc(fractions, c) for c in curves], "curves": curves}
        rec[group][name] = out
    return rec


# --------------------------------------------------------------------------- summary
def summarize_faithfulness(records: Sequence[dict], spec_metrics: Sequence[str],
                           variant_names: Sequence[str]) -> dict | None:
    """Means over every measured token of every item: AUC and the mean curve, per line.

    ``None`` when some item has no faithfulness record (results resumed from a run without it):
    no figure is better than one over a subset of the items."""
    ok = [r for r in records if "error" not in r]
    if not ok or any("faithfulness" not in r for r in ok):
        return None
    recs = [r["faithfulness"] for r in ok if "skipped" not in r["faithfulness"]]
    out: dict = {"n_items": len(recs), "n_skipped": len(ok) - len(recs),
                 "n_tokens": sum(len(f["tokens"]) for f in recs),
                 "p_original": _mean([t["p"] for f in recs for t in f["tokens"]]),
                 "variants": {}, "chance": {}}
    steps = {f["steps"] for f in recs if f["tokens"]}
    for group, names in (("variants", variant_names), ("chance", CHANCE_LINES)):
        for name in names:
            line: dict = {}
            for m in spec_metrics:
                aucs = [a for f in recs if f["tokens"] for a in f[group][name][m]["auc"]]
                curves = [c for f in recs if f["tokens"] for c in f[group][name][m]["curves"]]
                line[m] = {"auc": _mean(aucs),
                           "curve": (np.mean(curves, axis=0).tolist()
                                     if curves and len(steps) == 1 else None)}
            out[group][name] = line
    return out


def _mean(xs: list[float]) -> float | None:
    return float(np.mean(xs)) if xs else None


def format_faithfulness(summary: dict, metrics: Sequence[str]) -> str:
    """Plain-text table: one row per variant and chance line, one column per metric."""
    head = f"{'faithfulness':<13}" + "".join(f" {m.capitalize() + ' AUC':>14}" for m in metrics)
    lines = [head, "-" * len(head)]

    def row(name: str, s: dict) -> str:
        return f"{name:<13}" + "".join(
            f" {'-' if s[m]['auc'] is None else format(100 * s[m]['auc'], '.2f'):>14}"
            for m in metrics)

    lines += [row(n, s) for n, s in summary["variants"].items()]
    lines.append("chance orders:")
    lines += [row(n, s) for n, s in summary["chance"].items()]
    p = summary["p_original"]
    lines.append(f"tokens: {summary['n_tokens']} of {summary['n_items']} image(s) "
                 f"(mean probability on the intact image: "
                 f"{'-' if p is None else format(100 * p, '.2f')}); "
                 "deletion: lower is more faithful, insertion: higher")
    return "\n".join(lines)
