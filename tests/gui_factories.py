"""Explanations for GUI tests and benchmarks, made by the real engine from synthetic inputs.

No model is involved: hidden states and the lm_head are random, but every map, relevance and
candidate comes out of ``tam_engine.core.engine.explain`` exactly as it would after a capture.
"""

from __future__ import annotations

import numpy as np
from reference_tam import synthetic_inputs

from tam_engine.core.engine import explain
from tam_engine.core.explanation import Explanation
from tam_engine.core.inputs import Candidates
from tam_engine.core.media import MediaItem

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
    media = MediaItem(kind=kind, path=f"synthetic.{'png' if kind == 'image' else 'mp4'}",
                      frames=frames, frame_slot=np.arange(n) // 2 if kind == "video" else [0],
                      timestamps=np.arange(n) / 2.0, fps=2.0 if kind == "video" else 0.0)
    return explain(inputs, media=[media], meta={"model": "synthetic", "prompt": "Describe"})
