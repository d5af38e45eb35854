"""Explanations for GUI tests and benchmarks, made by the real engine from synthetic inputs.

No model is involved: hidden states and the lm_head are random, but every map, relevance and
candidate comes out of ``tam_engine.engine.explain`` exactly as it would after a capture.
"""

from __future__ import annotations

import numpy as np

from tam_engine.capture_types import Candidates, TamInputs
from tam_engine.engine import explain
from tam_engine.explanation import Explanation
from tam_engine.media import MediaItem
from tam_engine.spans import Spans, VisionGrid

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
    n_vis = t * gh * gw
    # Sequence: [bos] vision... prompt... [assistant] answer...
    vis_pos = np.arange(1, 1 + n_vis)
    prm_pos = np.arange(1 + n_vis, 1 + n_vis + n_prompt)
    input_len = int(prm_pos[-1]) + 2
    vocab, d = 40, 16
    answer_ids = rng.integers(10, vocab, size=n_answer)
    ids = np.concatenate([
        rng.integers(0, 10, size=input_len), answer_ids]).astype(np.int64)
    ids[prm_pos] = rng.integers(10, vocab, size=n_prompt)
    texts = [f"<{i}>" for i in ids]
    for j, p in enumerate(prm_pos):
        texts[p] = ["Describe", " this", " image", "."][j % 4]
    for k in range(n_answer):
        texts[input_len + k] = WORDS[k % len(WORDS)]
    hidden = rng.normal(size=(ids.size - 1, d)).astype(np.float32)
    weight = rng.normal(size=(vocab, d)).astype(np.float32)
    top = 5
    cand_ids = np.stack([np.r_[answer_ids[k], rng.choice(
        [c for c in range(vocab) if c != answer_ids[k]], top - 1, replace=False)]
        for k in range(n_answer)])
    logits = np.sort(rng.normal(size=(n_answer, top)).astype(np.float32), axis=1)[:, ::-1]
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True) * 0.9
    cands = Candidates(ids=cand_ids, logits=logits.copy(), probs=probs.astype(np.float32),
                       texts=[[f" w{c}" for c in row] for row in cand_ids])
    grid = VisionGrid(kind=kind, media_index=0, t=t, h=gh, w=gw, positions=vis_pos)
    inputs = TamInputs(ids=ids, input_len=input_len, hidden=hidden, lm_weight=weight,
                       lm_bias=None, spans=Spans(grids=(grid,), prompt_positions=prm_pos),
                       token_texts=texts, candidates=cands)
    n = 1 if kind == "image" else n_frames
    yy, xx = np.mgrid[0:height, 0:width]
    frames = np.stack([
        np.stack([(xx * 4 + 40 * i) % 256, (yy * 5) % 256, np.full_like(xx, 90 + 20 * i)], -1)
        for i in range(n)]).astype(np.uint8)
    media = MediaItem(kind=kind, path=f"synthetic.{'png' if kind == 'image' else 'mp4'}",
                      frames=frames, frame_slot=np.arange(n) // 2 if kind == "video" else [0],
                      timestamps=np.arange(n) / 2.0, fps=2.0 if kind == "video" else 0.0)
    return explain(inputs, media=[media], meta={"model": "synthetic", "prompt": "Describe"})
