"""Synthetic explanations for the renderer and export tests, and the golden images made from
them (``tests/make_golden.py`` writes them; ``tests/golden/`` holds the reviewed copies).

The explanations are built by the real engine (``tam_engine.core.engine.explain``) from random
hidden states and ``lm_head`` weights with a planted signal, so no model is needed.
"""

from __future__ import annotations

import numpy as np

PROMPT = ["Describe", " the", " picture", " 图片", " please"]
ANSWER = [" A", " cat", " (", "猫", ")", " sits", " on", " a", " café", " mat", " 😀", ".",
          "\n", "Done"]


def synthetic_image(w: int = 96, h: int = 64) -> np.ndarray:
    """A gradient background with a red disc and a blue square (deterministic)."""
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.zeros((h, w, 3), np.uint8)
    img[..., 0] = (xx * 200 // max(w - 1, 1)).astype(np.uint8)
    img[..., 1] = (yy * 200 // max(h - 1, 1)).astype(np.uint8)
    img[..., 2] = 90
    disc = (xx - w * 0.3) ** 2 + (yy - h * 0.5) ** 2 < (min(w, h) * 0.22) ** 2
    img[disc] = (230, 40, 40)
    img[int(h * 0.2):int(h * 0.6), int(w * 0.62):int(w * 0.85)] = (40, 60, 230)
    return img


def build_explanation(*, prompt: list[str] | None = None, answer: list[str] | None = None,
                      video: bool = False, n_frames: int = 4, grid_hw: tuple[int, int] = (4, 6),
                      image_size: tuple[int, int] = (96, 64), seed: int = 0,
                      with_candidates: bool = True):
    """An :class:`Explanation` of a made-up generation over one image (or a short video).

    Sequence layout: ``[BOS] [vision tokens] [prompt tokens] [answer tokens]``. Each answer
    token's class is made to light up a blob of the grid so the maps have structure.
    """
    from tam_engine.core.engine import explain
    from tam_engine.core.inputs import Candidates, TamInputs
    from tam_engine.core.media import MediaItem
    from tam_engine.core.spans import Spans, VisionGrid

    prompt = PROMPT if prompt is None else prompt
    answer = ANSWER if answer is None else answer
    rng = np.random.default_rng(seed)
    gh, gw = grid_hw
    t = 2 if video else 1
    nv = t * gh * gw
    vocab_texts: dict[str, int] = {"<s>": 0, "<img>": 1}
    for s in prompt + answer:
        vocab_texts.setdefault(s, len(vocab_texts))
    extra = [f"tok{i}" for i in range(8)]
    for s in extra:
        vocab_texts.setdefault(s, len(vocab_texts))
    V, d = len(vocab_texts), 16
    ids = ([0] + [1] * nv + [vocab_texts[s] for s in prompt] + [vocab_texts[s] for s in answer])
    texts = ["<s>"] + ["<img>"] * nv + list(prompt) + list(answer)
    L = 1 + nv + len(prompt)
    T = len(answer)
    weight = rng.normal(size=(V, d))
    hidden = rng.normal(scale=0.6, size=(L + T - 1, d))
    # Plant a blob per answer class: vision states near the blob point along that class's row.
    yy, xx = np.mgrid[0:gh, 0:gw]
    for s in answer:
        cy, cx = rng.uniform(0, gh - 1), rng.uniform(0, gw - 1)
        blob = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 2.0).reshape(-1)
        for ti in range(t):
            rows = 1 + ti * gh * gw + np.arange(gh * gw)
            hidden[rows] += 0.5 * blob[:, None] * weight[vocab_texts[s]][None, :] * (1 + ti)
    grid = VisionGrid(kind="video" if video else "image", media_index=0, t=t, h=gh, w=gw,
                      positions=np.arange(1, 1 + nv))
    spans = Spans(grids=(grid,), prompt_positions=np.arange(1 + nv, L))
    cands = None
    if with_candidates:
        logits = hidden[L - 1:L + T - 1] @ weight.T
        order = np.argsort(-logits, axis=1)[:, :5]
        top = np.take_along_axis(logits, order, axis=1)
        full = np.exp(logits - logits.max(axis=1, keepdims=True))
        full /= full.sum(axis=1, keepdims=True)
        names = {v: k for k, v in vocab_texts.items()}
        cands = Candidates(ids=order, logits=top.astype(np.float32),
                           probs=np.take_along_axis(full, order, axis=1).astype(np.float32),
                           texts=[[names[int(i)] for i in row] for row in order])
    inputs = TamInputs(ids=np.array(ids), input_len=L, hidden=hidden.astype(np.float32),
                       lm_weight=weight.astype(np.float32), lm_bias=None, spans=spans,
                       token_texts=texts, candidates=cands)
    w, h = image_size
    if video:
        frames = np.stack([np.roll(synthetic_image(w, h), 6 * i, axis=1)
                           for i in range(n_frames)])
        slots = np.minimum(np.arange(n_frames) * t // n_frames, t - 1)
        media = MediaItem(kind="video", path="synthetic.mp4", frames=frames, frame_slot=slots,
                          timestamps=np.arange(n_frames) * 0.5, fps=2.0)
    else:
        media = MediaItem(kind="image", path="synthetic.png", frames=synthetic_image(w, h))
    return explain(inputs, media=[media], meta={"model": "synthetic", "prompt": "".join(prompt)})


# --------------------------------------------------------------------------- golden images
def golden_images() -> dict[str, np.ndarray]:
    """The images the golden tests compare against (kept small: a few KB each)."""
    from tam_engine.render import overlay, paper_figure, render_text_map

    expl = build_explanation()
    k = ANSWER.index(" cat")
    return {
        "overlay_jet.png": overlay(expl.media[0].frames[0], expl.frame_map(k), "jet", 0.5),
        "overlay_viridis_70.png": overlay(expl.media[0].frames[0], expl.frame_map(k),
                                          "viridis", 0.7),
        "textmap_cjk_emoji.png": render_text_map(expl, ANSWER.index(" 😀"), width=360),
        "figure.png": paper_figure(expl, ANSWER.index(" sits"), width=240),
        "compare.png": compare_golden(),
    }


def compare_golden() -> np.ndarray:
    """The side-by-side comparison of two videos explained on different grids: A's phrase
    " sits on" (a combined map) against B's " sits", on a frame past B's last one."""
    from tam_engine.compare.comparison import Comparison
    from tam_engine.render.compare_figure import render_side_by_side

    a = build_explanation(video=True)
    b = build_explanation(video=True, n_frames=3, grid_hw=(3, 5), seed=1,
                          answer=[" The", " cat", " sits", "."])
    cmp = Comparison.of(a, b)
    return render_side_by_side(*cmp.panels([5, 6], [2], frame=3), panel_width=120)
