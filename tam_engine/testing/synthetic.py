"""Synthetic inputs for the engine, and explanations made from them by the real engine.

No model is involved: hidden states and the lm_head are random, but every map, relevance and
candidate comes out of ``tam_engine.core.engine.explain`` exactly as it would after a capture.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tam_engine.core.engine import explain
from tam_engine.core.explanation import Explanation
from tam_engine.core.inputs import Candidates
from tam_engine.core.media import MediaItem

# Token texts chosen so that different ids share a stripped text (" dog" / "dog"), including
# non-Latin ones, which is what the same-text exclusion must handle.
TIE_WORDS = ("dog", " dog", "cat", " cat ", "the", " the", "a", " 猫", "猫", " 🐶", "🐶", "\n", ",")


def synthetic_inputs(rng: np.random.Generator, *, d: int = 8, vocab: int = 20,
                     grids: tuple[tuple[int, int, int], ...] = ((1, 4, 4),), n_prompt: int = 3,
                     n_answer: int = 4, n_pre: int = 1, n_post: int = 1,
                     prompt_first: bool = False, values: str = "dyadic", bias: bool = False,
                     flat_vision: bool = False, torch_tensors: bool = False):
    """Random but well-formed ``TamInputs``.

    ``grids`` are ``(t, h, w)`` per image/video (``t > 1``: a video). ``values``:
    ``"dyadic"`` (multiples of 1/4 in [-1, 1]: many ties), ``"fine"`` (Gaussian-like multiples
    of 1/64 in [-2, 2]), ``"gaussian"`` (ordinary floats), or ``"negative"`` (every logit < 0,
    so every score is 0). With ``"dyadic"``, ``"fine"`` and ``"negative"`` every float32 product
    and sum is exact (d <= 16), so both implementations see the very same scores whatever the
    order of summation. ``flat_vision`` makes all vision hidden states equal (flat maps).
    """
    from tam_engine.core.inputs import TamInputs
    from tam_engine.core.spans import Spans, VisionGrid

    sizes = [t * h * w for t, h, w in grids]
    nv = sum(sizes)
    L = n_pre + nv + n_prompt + n_post
    if prompt_first:
        prm = np.arange(n_pre, n_pre + n_prompt)
        vis0 = n_pre + n_prompt
    else:
        vis0 = n_pre
        prm = np.arange(n_pre + nv, n_pre + nv + n_prompt)
    vgrids, off = [], vis0
    for gi, (t, h, w) in enumerate(grids):
        vgrids.append(VisionGrid(kind="video" if t > 1 else "image", media_index=gi, t=t, h=h,
                                 w=w, positions=np.arange(off, off + t * h * w)))
        off += t * h * w
    n_rows = L + n_answer - 1
    ids = rng.integers(0, vocab, size=L + n_answer)
    if values == "gaussian":
        hidden = rng.standard_normal((n_rows, d))
        weight = rng.standard_normal((vocab, d))
        b = rng.standard_normal(vocab) if bias else None
    elif values == "fine":
        def fine(*shape):
            return np.clip(np.round(rng.normal(0.0, 0.7, size=shape) * 64), -128, 128) / 64

        hidden, weight = fine(n_rows, d), fine(vocab, d)
        b = fine(vocab) if bias else None
    else:
        hidden = rng.integers(-4, 5, size=(n_rows, d)) / 4.0
        weight = rng.integers(-4, 5, size=(vocab, d)) / 4.0
        b = rng.integers(-4, 5, size=vocab) / 4.0 if bias else None
        if values == "negative":
            hidden = -np.abs(hidden) - 0.25
            weight = np.abs(weight) + 0.25
            b = None if b is None else -np.abs(b)
    if flat_vision and nv:
        hidden[vis0:vis0 + nv] = hidden[vis0]
    hidden = hidden.astype(np.float32)
    weight = weight.astype(np.float32)
    b = None if b is None else b.astype(np.float32)
    lm_hidden: Any = hidden
    lm_weight: Any = weight
    lm_bias: Any = b
    if torch_tensors:
        import torch

        lm_hidden, lm_weight = torch.from_numpy(hidden), torch.from_numpy(weight)
        lm_bias = None if b is None else torch.from_numpy(b)
    texts = [TIE_WORDS[int(i) % len(TIE_WORDS)] for i in ids]
    return TamInputs(ids=ids, input_len=L, hidden=lm_hidden, lm_weight=lm_weight, lm_bias=lm_bias,
                     spans=Spans(grids=tuple(vgrids), prompt_positions=prm), token_texts=texts)


PROMPT_WORDS = ["Describe", " this", " image", "."]
WORDS = ["a", " red", " circle", " and", " a", " blue", " square", " moves", " left", "."]


def synthetic_explanation(kind: str = "image", *, width: int = 64, height: int = 48,
                          n_frames: int = 6, grid_hw: tuple[int, int] = (6, 8),
                          n_answer: int = 10, n_prompt: int = 4, seed: int = 0) -> Explanation:
    """An explanation of one image (``kind="image"``) or one video (``kind="video"``).

    A video has ``n_frames`` displayed frames over ``ceil(n_frames / 2)`` temporal slots (two
    frames per slot, as Qwen2-VL merges them).
    """
    rng = np.random.default_rng(seed)
    gh, gw = grid_hw
    t = 1 if kind == "image" else (n_frames + 1) // 2
    vocab = 40
    # The engine tests' generator of well-formed inputs, with readable words and candidates.
    inputs = synthetic_inputs(rng, d=16, vocab=vocab, grids=((t, gh, gw),), n_prompt=n_prompt,
                              n_answer=n_answer, values="gaussian")
    L = inputs.input_len
    texts = list(inputs.token_texts)
    for j, p in enumerate(inputs.spans.prompt_positions):
        texts[p] = PROMPT_WORDS[j % len(PROMPT_WORDS)]
    for k in range(n_answer):
        texts[L + k] = WORDS[k % len(WORDS)]
    inputs.token_texts = texts
    answer_ids = inputs.ids[L:]
    top = 5
    cand_ids = np.stack([np.r_[answer_ids[k], rng.choice(
        [c for c in range(vocab) if c != answer_ids[k]], top - 1, replace=False)]
        for k in range(n_answer)])
    logits = np.sort(rng.normal(size=(n_answer, top)).astype(np.float32), axis=1)[:, ::-1]
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True) * 0.9
    inputs.candidates = Candidates(ids=cand_ids, logits=logits.copy(),
                                   probs=probs.astype(np.float32),
                                   texts=[[f" w{c}" for c in row] for row in cand_ids])
    n = 1 if kind == "image" else n_frames
    yy, xx = np.mgrid[0:height, 0:width]
    frames = np.stack([
        np.stack([(xx * 4 + 40 * i) % 256, (yy * 5) % 256, np.full_like(xx, 90 + 20 * i)], -1)
        for i in range(n)]).astype(np.uint8)
    media = MediaItem(kind="video" if kind == "video" else "image",
                      path=f"synthetic.{'png' if kind == 'image' else 'mp4'}",
                      frames=frames, frame_slot=np.arange(n) // 2 if kind == "video" else np.zeros(1),
                      timestamps=np.arange(n) / 2.0, fps=2.0 if kind == "video" else 0.0)
    return explain(inputs, media=[media], meta={"model": "synthetic", "prompt": "Describe"})


def compare_pair(kind: str = "image") -> tuple[Explanation, Explanation]:
    """Two explanations of the same media by "two models": A says "a red circle and a blue
    square moves left ." on a 6x8 grid; B says "a blue circle and a blue square moves" on a
    3x4 grid."""
    a = synthetic_explanation(kind, width=96, height=72, seed=0)
    b = synthetic_explanation(kind, width=96, height=72, grid_hw=(3, 4), n_answer=8, seed=5)
    b.answer.texts[1] = " blue"
    a.meta["model"], b.meta["model"] = "model-a", "model-b"
    return a, b


def independent_difference(ex_a: Explanation, map_a: np.ndarray, map_b: np.ndarray
                           ) -> np.ndarray:
    """A - B written independently of the renderer: both uint8 maps resized bilinearly to A's
    frame, on [0, 1]."""
    import cv2

    h, w = ex_a.media[0].frames.shape[1:3]
    fa = cv2.resize(map_a.astype(np.float32) / 255.0, (w, h), interpolation=cv2.INTER_LINEAR)
    fb = cv2.resize(map_b.astype(np.float32) / 255.0, (w, h), interpolation=cv2.INTER_LINEAR)
    return fa - fb
