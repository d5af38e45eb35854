"""Comparison of two explanations (Qt-free): word alignment, word maps, differences, exports."""

from __future__ import annotations

import numpy as np
import pytest

from tam_engine.compare.alignment import align_words
from tam_engine.compare.comparison import (
    CompareError,
    Comparison,
    compare_pictures,
    compare_schedule,
    selection_frame_map,
)
from tam_engine.core.errors import Cancelled
from tam_engine.core.explanation import Explanation, TamOptions
from tam_engine.core.media import MediaItem
from tam_engine.core.spans import VisionGrid
from tam_engine.core.token_maps import TokenMaps
from tam_engine.export import ExportError
from tam_engine.export.compare import export_compare_mp4, export_compare_png
from tam_engine.render.compare_figure import ComparePanel, render_side_by_side
from tam_engine.render.diff import (
    apply_diverging,
    diff_overlay,
    diff_to_index,
    difference_map,
    diverging_colorbar,
    diverging_lut,
)


def hand_built(texts: list[str], maps: np.ndarray, *, frames: np.ndarray | None = None,
               frame_slot=None, model: str = "model") -> Explanation:
    """An explanation whose answer tokens have exactly the maps given.

    ``maps`` is ``(N, t, h, w)`` floats in [0, 1]; the uint8 maps are ``floor(255 x)`` as the
    engine makes them, the filtered maps are the floats.
    """
    n, t, h, w = maps.shape
    n_vis = t * h * w
    filtered = maps.reshape(n, n_vis).astype(np.float32)
    u8 = np.floor(filtered * 255.0).astype(np.uint8)
    input_len = 1 + n_vis + 2
    zeros = np.zeros((n, n_vis), np.float32)
    answer = TokenMaps(
        kind="answer", token_ids=np.arange(n, dtype=np.int64) + 100,
        positions=np.arange(input_len, input_len + n), texts=list(texts), raw=zeros,
        eci=zeros, filtered=filtered, maps=u8, alpha=np.zeros(n, np.float32),
        relevance=np.zeros((n, 2 + n), np.float32), context=np.zeros((n, 2 + n), bool),
        norm_lo=np.zeros(n, np.float32), norm_hi=np.ones(n, np.float32))
    grid = VisionGrid(kind="image" if t == 1 else "video", media_index=0, t=t, h=h, w=w,
                      positions=np.arange(1, 1 + n_vis))
    if frames is None:
        frames = np.full((1, 32, 48, 3), 120, np.uint8)
    nf = frames.shape[0]
    media = MediaItem(kind="image" if nf == 1 else "video", path="scene.png", frames=frames,
                      frame_slot=np.asarray(frame_slot if frame_slot is not None else
                                            np.zeros(nf, np.int64)),
                      timestamps=np.arange(nf) / 2.0, fps=0.0 if nf == 1 else 2.0)
    ids = np.concatenate([np.zeros(input_len, np.int64), answer.token_ids])
    token_texts = ["<v>"] * input_len + list(texts)
    token_texts[input_len - 2:input_len] = ["Describe", "."]
    return Explanation(ids=ids, input_len=input_len, token_texts=token_texts, grids=[grid],
                       prompt_positions=np.array([input_len - 2, input_len - 1]),
                       answer=answer, prompt=None, candidates=None, options=TamOptions(),
                       media=[media], meta={"model": model, "prompt": "Describe."})


A_TEXTS = ["a", " red", " cir", "cle"]                 # words: a | red | circle
B_TEXTS = ["The", " red", " circle", " left", "."]     # words: The | red | circle | left | .


def grid_maps(n: int, h: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.random((n, 1, h, w)).astype(np.float32)


# ------------------------------------------------------------------------------ alignment
def test_words_align_where_the_answers_agree():
    al = align_words(A_TEXTS, B_TEXTS)
    assert [w.text for w in al.words_a] == ["a", "red", "circle"]
    assert [w.text for w in al.words_b] == ["The", "red", "circle", "left", "."]
    assert al.pairs == ((1, 1), (2, 2))
    assert al.aligned_word("a", 0) is None          # "a" vs "The": no counterpart
    assert al.aligned_word("a", 2) == 2 and al.aligned_word("b", 1) == 1
    assert al.aligned_word("b", 3) is None          # "left" only in B
    # A token maps to the tokens of its aligned word on the other side (and back).
    assert al.aligned_tokens("a", [2]) == (2,)      # " cir" -> " circle"
    assert al.aligned_tokens("a", [3]) == (2,)      # "cle"  -> " circle"
    assert al.aligned_tokens("b", [2]) == (2, 3)    # " circle" -> " cir" + "cle"
    assert al.aligned_tokens("a", [0]) == ()
    assert al.word_tokens("a", [3]) == (2, 3)       # a click snaps to the whole word
    assert al.aligned_tokens("a", [1, 2]) == (1, 2)  # a phrase maps word by word


def test_alignment_ignores_case_and_punctuation_and_keeps_order():
    al = align_words(["Red", ",", " red", " dog", "!"], ["red", " dog", " red"])
    keys_a = [w.key for w in al.words_a]
    assert keys_a == ["red", ",", "red", "dog", "!"]
    # Longest common run first: "red dog" matches as a block; the alignment never crosses.
    assert (2, 0) in al.pairs and (3, 1) in al.pairs
    assert all(i2 > i1 and j2 > j1 for (i1, j1), (i2, j2) in zip(al.pairs, al.pairs[1:]))


def test_alignment_of_identical_and_disjoint_answers():
    same = align_words(B_TEXTS, B_TEXTS)
    assert same.pairs == tuple((i, i) for i in range(5))
    none = align_words(["cat"], ["dog", " bird"])
    assert none.pairs == () and none.n_aligned == 0
    empty = align_words([], ["dog"])
    assert empty.words_a == () and empty.pairs == ()


# ------------------------------------------------------------------------------ maps
def test_word_map_combines_its_tokens():
    maps = grid_maps(4, 3, 4, seed=1)
    ex = hand_built(A_TEXTS, maps)
    one = selection_frame_map(ex, [1])
    assert np.array_equal(one, ex.answer.maps[1].reshape(3, 4))
    word = selection_frame_map(ex, [2, 3])                     # "circle" = " cir" + "cle"
    expected = np.floor(np.clip(maps[2:4, 0].mean(axis=0), 0, 1) * 255).astype(np.uint8)
    assert np.array_equal(word, expected)
    mx = selection_frame_map(ex, [2, 3], how="max")
    assert np.array_equal(mx, np.floor(maps[2:4, 0].max(axis=0) * 255).astype(np.uint8))
    with pytest.raises(CompareError):
        selection_frame_map(ex, [])


def test_difference_of_identical_maps_is_zero():
    maps = grid_maps(4, 3, 4, seed=2)
    a, b = hand_built(A_TEXTS, maps), hand_built(A_TEXTS, maps.copy())
    cmp = Comparison.of(a, b)
    assert cmp.alignment.pairs == ((0, 0), (1, 1), (2, 2))
    for i in range(3):
        d = cmp.word_difference(i)
        assert d is not None and d.shape == (32, 48) and d.dtype == np.float32
        assert np.all(d == 0.0)


def test_difference_of_known_maps():
    # A's "red" is 1 on the left half and 0 on the right; B's "red" is 0.2 everywhere.
    ma = np.zeros((4, 1, 2, 2), np.float32)
    ma[1, 0, :, 0] = 1.0
    mb = np.zeros((5, 1, 2, 2), np.float32)
    mb[1] = 0.2
    cmp = Comparison.of(hand_built(A_TEXTS, ma), hand_built(B_TEXTS, mb))
    d = cmp.word_difference(1, size=(2, 2))
    assert d is not None
    b_val = np.floor(0.2 * 255) / 255
    np.testing.assert_allclose(d, [[1 - b_val, -b_val], [1 - b_val, -b_val]], atol=1e-6)
    assert cmp.word_difference(0) is None             # "a" has no counterpart in B
    # Clipped to [-1, 1] and symmetric.
    d2 = difference_map(np.full((2, 2), 255, np.uint8), np.zeros((2, 2), np.uint8))
    assert np.all(d2 == 1.0)
    assert np.all(difference_map(np.zeros((2, 2), np.uint8), np.full((2, 2), 255, np.uint8))
                  == -1.0)


def test_difference_across_different_grids():
    # A: a 2x2 grid, B: a 4x4 grid (another model), both constant 0.6 -> no difference
    # wherever resized; a gradient in A against a flat B differs by the gradient.
    a = hand_built(A_TEXTS, np.full((4, 1, 2, 2), 0.6, np.float32))
    b = hand_built(B_TEXTS, np.full((5, 1, 4, 4), 0.6, np.float32))
    cmp = Comparison.of(a, b)
    d = cmp.word_difference(2)                          # "circle": tokens 2-3 vs token 2
    assert d is not None and d.shape == (32, 48)
    np.testing.assert_allclose(d, 0.0, atol=1e-6)
    grad = np.zeros((4, 1, 2, 2), np.float32)
    grad[1, 0] = [[0.0, 1.0], [0.0, 1.0]]
    cmp2 = Comparison.of(hand_built(A_TEXTS, grad), b)
    d2 = cmp2.word_difference(1)
    assert d2 is not None and d2.shape == (32, 48)
    row = d2[16]
    b_val = np.floor(0.6 * 255) / 255
    assert row[0] == pytest.approx(-b_val, abs=1e-6) and row[-1] == pytest.approx(1 - b_val,
                                                                                   abs=1e-6)
    assert np.all(np.diff(row) >= -1e-6)               # bilinear: a monotone ramp between
    assert -1.0 <= d2.min() and d2.max() <= 1.0


def test_video_frames_pick_each_models_own_slot():
    # Two frames; A merges them into one temporal slot, B has one slot per frame.
    frames = np.full((2, 8, 8, 3), 100, np.uint8)
    ma = np.full((4, 1, 2, 2), 0.5, np.float32)
    mb = np.zeros((5, 2, 2, 2), np.float32)
    mb[1, 0], mb[1, 1] = 0.5, 0.0
    a = hand_built(A_TEXTS, ma, frames=frames, frame_slot=[0, 0])
    b = hand_built(B_TEXTS, mb, frames=frames, frame_slot=[0, 1])
    cmp = Comparison.of(a, b)
    f0, f1 = cmp.word_difference(1, frame=0), cmp.word_difference(1, frame=1)
    assert f0 is not None and f1 is not None
    np.testing.assert_allclose(f0, 0.0, atol=1e-6)
    np.testing.assert_allclose(f1, np.floor(0.5 * 255) / 255, atol=1e-6)


# ------------------------------------------------------------------------------ rendering
def test_diverging_colour_map():
    lut = diverging_lut()
    assert lut.shape == (256, 3) and lut.dtype == np.uint8
    assert tuple(lut[diff_to_index(np.zeros((1, 1)))[0, 0]]) == (255, 255, 255)
    blue, red = lut[0], lut[255]
    assert blue[2] > blue[0] and red[0] > red[2]            # -1 blue, +1 red
    img = apply_diverging(np.array([[-1.0, 0.0, 1.0]]))
    assert img.shape == (1, 3, 3)
    assert tuple(img[0, 1]) == (255, 255, 255)
    frame = np.zeros((2, 3, 3), np.uint8)
    over = diff_overlay(frame, np.zeros((2, 3)), opacity=1.0)
    assert np.all(over == 255)
    with pytest.raises(ValueError):
        diff_overlay(frame, np.zeros((3, 3)))
    bar = diverging_colorbar(120)
    assert bar.shape[0] == 120 and bar.dtype == np.uint8


def test_side_by_side_panels():
    maps = grid_maps(4, 3, 4, seed=3)
    cmp = Comparison.of(hand_built(A_TEXTS, maps), hand_built(A_TEXTS, maps.copy()))
    img = render_side_by_side(*cmp.panels([1], [1]), panel_width=96, text_maps=False)
    no_diff = render_side_by_side(*cmp.panels([1], [1]), panel_width=96, text_maps=False,
                                  show_diff=False)
    assert img.ndim == 3 and img.dtype == np.uint8
    assert img.shape[0] == no_diff.shape[0] and img.shape[1] > no_diff.shape[1] + 96
    # Identical maps: the two overlays are pixel for pixel the same.
    cap = img.shape[0] - 64          # frames are 32x48 -> 64 px tall at width 96
    assert np.array_equal(img[cap:, :96], img[cap:, 96 + 8:96 + 8 + 96])
    # No counterpart: B shows the plain frame and the picture still renders.
    unmatched = render_side_by_side(*cmp.panels([0], []), panel_width=96)
    assert unmatched.shape[1] == img.shape[1]
    with pytest.raises(CompareError):
        cmp.panels([], [1])
    a, b = cmp.panels([1], [1])
    with pytest.raises(ValueError):                    # side A always shows a selection
        render_side_by_side(ComparePanel(a.expl, (), 0, 0, None, "A"), b)
    with pytest.raises(ValueError):                    # a map exactly when there are tokens
        ComparePanel(a.expl, (1,), 0, 0, None, "A")


def test_schedules():
    cmp = Comparison.of(hand_built(A_TEXTS, grid_maps(4, 2, 2, 4)),
                        hand_built(B_TEXTS, grid_maps(5, 2, 2, 5)))
    words = compare_schedule(cmp)
    assert words == [((0,), (), 0), ((1,), (1,), 0), ((2, 3), (2,), 0)]
    with pytest.raises(CompareError):
        compare_schedule(cmp, "frames")
    # Each scheduled picture: A's word and B's aligned word (or none) with their maps.
    pictures = compare_pictures(cmp)
    assert [(a.tokens, b.tokens, a.frame) for a, b in pictures] == words
    a, b = pictures[2]
    assert np.array_equal(a.map_u8, selection_frame_map(cmp.a, [2, 3]))
    assert np.array_equal(b.map_u8, selection_frame_map(cmp.b, [2]))
    assert a.caption == "A \u00b7 model: \u201ccircle\u201d"
    assert pictures[0][1].map_u8 is None
    assert pictures[0][1].caption == "B \u00b7 model: no matching word"


def test_exports_decode_back(tmp_path):
    import av
    from PIL import Image

    frames = np.random.default_rng(0).integers(0, 255, (4, 32, 48, 3), dtype=np.uint8)
    a = hand_built(A_TEXTS, grid_maps(4, 2, 2, 6), frames=frames, frame_slot=[0, 0, 0, 0])
    b = hand_built(B_TEXTS, grid_maps(5, 4, 4, 7), frames=frames, frame_slot=[0, 0, 0, 0])
    cmp = Comparison.of(a, b)
    png = export_compare_png(tmp_path / "cmp.png", *cmp.panels([2, 3], [2]), panel_width=120)
    expected = render_side_by_side(*cmp.panels([2, 3], [2]), panel_width=120)
    with Image.open(png) as im:
        assert im.size == (expected.shape[1], expected.shape[0])
        assert np.array_equal(np.asarray(im.convert("RGB")), expected)
    seen = []
    mp4 = export_compare_mp4(tmp_path / "cmp.mp4", compare_pictures(cmp, tokens_a=[1],
                                                                     tokens_b=[1]),
                             panel_width=120, progress=lambda i, n: seen.append((i, n)))
    assert seen[-1] == (4, 4)                       # a video: one picture per frame
    with av.open(str(mp4)) as c:
        s = c.streams.video[0]
        assert s.codec_context.name == "h264"
        n = sum(1 for _ in c.decode(s))
    assert n == 4
    words = export_compare_mp4(tmp_path / "words.mp4", compare_pictures(cmp, "words"), hold=2,
                               panel_width=120, text_maps=True)
    with av.open(str(words)) as c:
        assert sum(1 for _ in c.decode(video=0)) == 3 * 2
    # Cancelled: nothing is left behind.
    with pytest.raises(Cancelled):
        export_compare_mp4(tmp_path / "gone.mp4", compare_pictures(cmp, "words"),
                           panel_width=120, should_stop=lambda: True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cmp.mp4", "cmp.png", "words.mp4"]
    # An unwritable destination is an ExportError that names the file and says what to do.
    (tmp_path / "file").write_text("x")
    blocked = tmp_path / "file" / "out.bin"
    with pytest.raises(ExportError, match="Could not write out.bin") as png_err:
        export_compare_png(blocked, *cmp.panels([1], [1]), panel_width=120)
    with pytest.raises(ExportError, match="Could not write out.bin") as mp4_err:
        export_compare_mp4(blocked, compare_pictures(cmp, tokens_a=[1], tokens_b=[1]),
                           panel_width=120)
    for err in (png_err.value, mp4_err.value):
        assert "folder you can write to" in err.hint


def test_media_checks():
    a = hand_built(A_TEXTS, grid_maps(4, 2, 2, 8))
    b = hand_built(B_TEXTS, grid_maps(5, 2, 2, 9), frames=np.zeros((1, 20, 20, 3), np.uint8))
    assert Comparison.of(a, a).same_media()
    assert not Comparison.of(a, b).same_media()
    with pytest.raises(CompareError, match="no map for media item 2"):
        selection_frame_map(a, [1], media_index=1)
