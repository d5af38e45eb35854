"""Files written by the release before issue 16 (commit 4ba2fad) still open, with every array.

``fixtures/release_v1.tam.npz`` (an image and a video, prompt maps, candidates, CJK/emoji texts)
and ``fixtures/release_v2_tiled.tam.npz`` (a tiled image, format version 2) were written by that
code from the builders below; opening them must give exactly what explaining the same inputs
gives today, stage by stage.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tam_engine.core.engine import explain
from tam_engine.core.explanation import Explanation, TamOptions
from tam_engine.core.inputs import Candidates
from tam_engine.core.media import MediaItem
from tam_engine.testing.synthetic import synthetic_inputs, tiled_explanation

FIXTURES = Path(__file__).parent / "fixtures"
TEXTS = ["猫", " 🐶", " naïve", "\n", " der Straße", " 日本語", "👩‍👩‍👧", " ok"]
STAGES = ("raw", "eci", "filtered", "final")


def _release_v1_explanation() -> Explanation:
    """What wrote fixtures/release_v1.tam.npz (tests/engine/test_explanation_io.py's builder
    as of 4ba2fad, with prompt maps and extras)."""
    rng = np.random.default_rng(11)
    inputs = synthetic_inputs(rng, d=8, vocab=30, grids=((1, 3, 4), (2, 2, 3)), n_prompt=4,
                              n_answer=5, values="gaussian", bias=True)
    inputs.token_texts = [TEXTS[int(i) % len(TEXTS)] for i in inputs.ids]
    T, k = inputs.n_answer, 3
    inputs.candidates = Candidates(
        ids=rng.integers(0, 30, size=(T, k)), logits=rng.standard_normal((T, k)),
        probs=rng.random((T, k)).astype(np.float32),
        texts=[[TEXTS[(t + j) % len(TEXTS)] for j in range(k)] for t in range(T)])
    media = [
        MediaItem(kind="image", path="/photos/猫 🐶.png",
                  frames=rng.integers(0, 256, size=(1, 6, 8, 3), dtype=np.uint8)),
        MediaItem(kind="video", path="clip.mp4",
                  frames=rng.integers(0, 256, size=(4, 5, 7, 3), dtype=np.uint8),
                  frame_slot=np.array([0, 0, 1, 1]), timestamps=np.array([0, .5, 1, 1.5]),
                  fps=2.0),
    ]
    meta = {"model": "Qwen2-VL-2B", "prompt": "この画像を説明して 🙂", "seed": 3,
            "nested": {"list": [1, 2.5, None, "x"]}, "flag": True}
    return explain(inputs, TamOptions(explain_prompt=True, kernel_size=3), media=media,
                   meta=meta)


def _assert_same(old: Explanation, new: Explanation) -> None:
    np.testing.assert_array_equal(old.ids, new.ids)
    assert old.input_len == new.input_len and old.token_texts == new.token_texts
    assert [(g.kind, g.media_index, g.t, g.h, g.w, g.box, g.role) for g in old.grids] == \
        [(g.kind, g.media_index, g.t, g.h, g.w, g.box, g.role) for g in new.grids]
    assert old.options == new.options and old.meta == new.meta
    for kind in ("answer", "prompt"):
        a, b = old.tokens(kind), new.tokens(kind)
        assert a.texts == b.texts
        for name in ("token_ids", "positions", "alpha", "relevance", "context", "norm_lo",
                     "norm_hi"):
            x, y = np.asarray(getattr(a, name)), np.asarray(getattr(b, name))
            assert x.dtype == y.dtype
            np.testing.assert_array_equal(x, y)
        for k in range(len(a)):
            for stage in STAGES:
                x = old.vision_vector(k, kind, stage)
                y = new.vision_vector(k, kind, stage)
                assert x.dtype == y.dtype
                np.testing.assert_array_equal(x, y)
    for m, n in zip(old.media, new.media, strict=True):
        assert (m.kind, m.path, m.fps) == (n.kind, n.path, n.fps)
        np.testing.assert_array_equal(m.frames, n.frames)
        np.testing.assert_array_equal(m.frame_slot, n.frame_slot)
        np.testing.assert_array_equal(m.timestamps, n.timestamps)
    if old.candidates is not None:
        assert new.candidates is not None
        np.testing.assert_array_equal(old.candidates.ids, new.candidates.ids)
        assert old.candidates.texts == new.candidates.texts


def test_a_release_v1_file_opens_with_every_stage():
    old = Explanation.load(FIXTURES / "release_v1.tam.npz")
    _assert_same(old, _release_v1_explanation())
    # What the views compute from it is the same too.
    new = _release_v1_explanation()
    for how in ("mean", "max"):
        np.testing.assert_array_equal(old.combined_vector([0, 2, 3], how),
                                      new.combined_vector([0, 2, 3], how))


def test_a_release_v2_tiled_file_opens_with_every_stage():
    old = Explanation.load(FIXTURES / "release_v2_tiled.tam.npz")
    _assert_same(old, tiled_explanation(n_answer=4))
