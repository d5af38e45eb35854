"""A deterministic explain function for evaluation tests: real engine, made-up model states.

The "model" captions every item with its reference caption. Its hidden states are built so
that a vision cell covered by an object carries the lm_head rows of the words naming that
object: those words' maps light up on their objects, every other token's map is noise. The
engine (scores, ECI, normalisation, filter) is the real one, so the runner, the scoring and the
ablation switches are exercised end to end. Deterministic by item id.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence

import numpy as np

from tam_engine.core.engine import explain_from_scores, score_table
from tam_engine.core.explanation import Explanation, TamOptions
from tam_engine.core.inputs import TamInputs
from tam_engine.core.media import MediaItem
from tam_engine.core.spans import Spans, VisionGrid
from tam_engine.core.words import group_words

GRID = 8
DIM = 32
PROMPT = [" describe", " the", " image"]


def caption_tokens(caption: str) -> list[str]:
    """Word-ish tokens with leading spaces; words longer than 6 letters split in two tokens."""
    toks: list[str] = []
    for piece in re.findall(r" ?\w+|[^\w\s]", caption.strip()):
        body = piece.strip()
        if len(body) > 6:
            cut = len(piece) - len(body) + 3
            toks += [piece[:cut], piece[cut:]]
        else:
            toks.append(piece)
    return toks


def _cells(mask: np.ndarray) -> np.ndarray:
    import cv2

    cover = cv2.resize(mask.astype(np.float32), (GRID, GRID), interpolation=cv2.INTER_AREA)
    # A small object covers no cell by a third: it still owns the cell it covers most.
    return cover > min(0.3, 0.999 * cover.max()) if cover.max() > 0 else cover > 0


def fake_explain(item, options: Sequence[TamOptions]) -> list[Explanation]:
    rng = np.random.default_rng(zlib.crc32(item.id.encode()))
    masks = item.masks()
    caption = item.references[0] if item.references else "a picture."
    answer = caption_tokens(caption)
    first = next(iter(masks.values())) if masks else np.zeros((16, 16), bool)
    t = first.shape[0] if first.ndim == 3 else 1
    n_vis = t * GRID * GRID

    texts = ["<s>"] + ["<img>"] * n_vis + PROMPT + answer
    vocab: dict[str, int] = {"<s>": 0, "<img>": 1}
    ids = [vocab.setdefault(x.strip().lower(), len(vocab)) for x in texts]
    weight = rng.normal(size=(len(vocab), DIM)) / np.sqrt(DIM)
    L = 1 + n_vis + len(PROMPT)
    hidden = rng.normal(scale=0.1, size=(len(ids) - 1, DIM))

    words = group_words(answer)
    for m in item.vocabulary.match(words):
        if m.category not in masks:
            continue
        rows = sum(weight[ids[L + k]] for w in words[m.start:m.end] for k in w.tokens)
        mask = masks[m.category]
        frames = mask if mask.ndim == 3 else mask[None]
        for f in range(t):
            cells = np.flatnonzero(_cells(frames[f]).reshape(-1))
            hidden[1 + f * GRID * GRID + cells] += 3.0 * rows
    for k in range(len(answer)):                 # the step that predicted token k favours it
        hidden[L + k - 1] += 2.0 * weight[ids[L + k]]

    grid = VisionGrid(kind="video" if t > 1 else "image", media_index=0, t=t, h=GRID, w=GRID,
                      positions=np.arange(1, 1 + n_vis))
    spans = Spans(grids=(grid,), prompt_positions=np.arange(1 + n_vis, L))
    inputs = TamInputs(ids=np.array(ids), input_len=L, hidden=hidden.astype(np.float32),
                       lm_weight=weight.astype(np.float32), lm_bias=None, spans=spans,
                       token_texts=texts)
    H, W = first.shape[-2:]
    if t > 1:
        fps = float(item.mask_fps or 1.0)
        media = MediaItem(kind="video", path=item.media[0], frames=np.zeros((t, H, W, 3)),
                          frame_slot=np.arange(t), timestamps=np.arange(t) / fps, fps=fps)
    else:
        media = MediaItem(kind="image", path=item.media[0], frames=np.zeros((1, H, W, 3)))
    table = score_table(inputs)
    return [explain_from_scores(inputs, table, o, media=[media]) for o in options]


def fake_probs(item, expl: Explanation):
    """A probability function for the faithfulness metrics, known in closed form: a token of a
    word naming an object has the probability "fraction of that object's mask still showing";
    every other token has probability 1. ``(item, expl) -> kept (n, H, W) -> (n, T)``."""
    masks = item.masks()
    words = group_words(expl.answer.texts)
    owner: dict[int, np.ndarray] = {}
    for m in item.vocabulary.match(words):
        if m.category in masks and masks[m.category].ndim == 2:
            for w in words[m.start:m.end]:
                for k in w.tokens:
                    owner[k] = masks[m.category]

    def probs(kept: np.ndarray) -> np.ndarray:
        kept = np.asarray(kept, bool)
        out = np.ones((kept.shape[0], expl.n_answer))
        for k, mask in owner.items():
            out[:, k] = (kept & mask[None]).sum(axis=(1, 2)) / max(int(mask.sum()), 1)
        return out

    return probs
