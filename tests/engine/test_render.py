"""The Qt-free renderer: colour maps, overlay, fonts, text map, figure, golden images."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tam_engine.core.placement import resize_map
from tam_engine.render import (
    COLORMAPS,
    add_caption,
    add_colorbar,
    apply_colormap,
    colormap_lut,
    overlay,
    paper_figure,
    render_text_map,
)
from tam_engine.render.colormaps import colour_of
from tam_engine.render.fonts import FONT_FILES, font_coverage, font_paths, font_stack
from tam_engine.render.overlay import even_size
from tam_engine.render.textmap import BLACK, GREY, WHITE, candidate_cells, token_cells
from tam_engine.testing.golden import ANSWER, PROMPT, build_explanation, golden_images


@pytest.fixture(scope="module")
def expl():
    return build_explanation()


# ------------------------------------------------------------------------------ colour maps
@pytest.mark.parametrize("name", COLORMAPS)
def test_luts(name):
    lut = colormap_lut(name)
    assert lut.shape == (256, 3) and lut.dtype == np.uint8
    assert not lut.flags.writeable
    big = np.random.default_rng(0).integers(0, 256, (80, 90), dtype=np.uint8)   # cv2 path
    small = big[:5, :7]                                                           # numpy path
    np.testing.assert_array_equal(apply_colormap(big, name), lut[big])
    np.testing.assert_array_equal(apply_colormap(small, name), lut[small])

GOLDEN_DIR = Path(__file__).resolve().parents[1] / "golden"


def test_jet_runs_blue_to_red_and_gray_is_identity():
    jet = colormap_lut("jet")
    assert jet[0, 2] > 100 and jet[0, 0] == 0           # low = blue
    assert jet[255, 0] > 100 and jet[255, 2] == 0       # high = red
    np.testing.assert_array_equal(colormap_lut("gray")[:, 1], np.arange(256))
    assert colour_of(1.0) == tuple(jet[255]) and colour_of(float("nan")) == tuple(jet[0])
    with pytest.raises(ValueError, match="unknown colour map"):
        colormap_lut("rainbow")
    with pytest.raises(TypeError):
        apply_colormap(np.zeros((3, 3), np.float32))


# ------------------------------------------------------------------------------ overlay
def test_overlay_blends_and_resizes():
    rng = np.random.default_rng(1)
    frame = rng.integers(0, 256, (30, 50, 3), dtype=np.uint8)
    m = rng.integers(0, 256, (3, 5), dtype=np.uint8)
    np.testing.assert_array_equal(overlay(frame, m, opacity=0.0), frame)
    full = overlay(frame, m, "viridis", opacity=1.0)
    np.testing.assert_array_equal(full, colormap_lut("viridis")[resize_map(m, (50, 30))])
    half = overlay(frame, m, "jet", 0.5).astype(int)
    expect = (frame.astype(int) + colormap_lut("jet")[resize_map(m, (50, 30))]) / 2
    assert np.abs(half - expect).max() <= 1
    with pytest.raises(ValueError):
        overlay(frame, m, opacity=1.5)


def test_resize_is_bilinear_between_cells():
    m = np.array([[0, 200]], np.uint8)
    r = resize_map(m, (4, 1))[0]
    assert r[0] == 0 and r[-1] == 200 and 0 < r[1] < r[2] < 200


def test_colorbar_caption_and_even_size():
    img = np.zeros((101, 51, 3), np.uint8)
    withbar = add_colorbar(img, "jet")
    assert withbar.shape[0] == 101 and withbar.shape[1] > 51
    col = withbar[:, 51 + 6]                     # inside the bar: red at the top, blue below
    top, bottom = col[10].astype(int), col[90].astype(int)
    assert top[0] > top[2] and bottom[2] > bottom[0]
    cap = add_caption(img, "“猫” 😀 café")
    assert cap.shape[1] == 51 and cap.shape[0] > 101
    assert (cap[:cap.shape[0] - 101] < 128).any()   # some ink
    assert even_size(img).shape == (102, 52, 3)
    assert even_size(np.zeros((4, 6, 3), np.uint8)).shape == (4, 6, 3)


# ------------------------------------------------------------------------------ fonts
def test_bundled_fonts_present_and_small():
    paths = font_paths()
    assert [p.name for p in paths] == list(FONT_FILES)
    assert sum(p.stat().st_size for p in paths) < 10 * 1024 * 1024
    readme = paths[0].parent / "README.md"
    assert readme.is_file() and "licen" in readme.read_text(encoding="utf-8").lower()


@pytest.mark.parametrize("text", ["café", "naïve Ωμέγα", "猫 图片", "こんにちは", "한국어",
                                  "😀 👍 🐶", "€ → ✓"])
def test_every_character_has_a_font(text):
    fs = font_stack(16)
    cleaned = fs.clean(text)
    assert "\ufffd" not in cleaned
    covered = set().union(*(font_coverage(str(p)) for p in font_paths()))
    assert all(ord(c) in covered for c in cleaned if not c.isspace())
    assert fs.width(text) > 0


def test_font_fallback_splits_runs_and_cleans():
    fs = font_stack(16)
    runs = fs.runs("ab猫cd")
    assert [t for _, t in runs] == ["ab", "猫", "cd"]
    assert runs[0][0] is runs[2][0] and runs[1][0] is not runs[0][0]
    assert fs.clean("a\u200db\ufe0f\n") == "ab\u21b5"
    assert fs.clean("\x1e\x00\x7f") == "\u241e\u2400\u2421"    # control pictures, drawable
    assert fs.clean("\U000e0001x") in ("\ufffdx", "x")     # a tag character no font has
    assert fs.width(fs.fit("a long sentence " * 20, 100)) <= 100


# ------------------------------------------------------------------------------ text map
def test_token_cells_colour_context_current_and_later(expl):
    k = ANSWER.index(" sits")
    prompt_cells, answer_cells = token_cells(expl, k)
    assert len(prompt_cells) == len(PROMPT) and len(answer_cells) == len(ANSWER)
    rel = expl.answer.normalised_relevance(k)
    for col, cell in enumerate(prompt_cells + answer_cells):
        j = col - len(PROMPT)
        if j == k:
            assert (cell.bg, cell.fg) == (BLACK, WHITE)
        elif j > k:
            assert cell.bg is None and cell.fg == GREY
        else:
            assert cell.bg == colour_of(float(rel[col]))
    assert answer_cells[ANSWER.index("\n")].break_after
    assert answer_cells[1].gap_before and answer_cells[1].text == "cat"


def test_prompt_token_cells(expl):
    prompt_cells, answer_cells = token_cells(expl, 2, kind="prompt")
    assert prompt_cells[2].bg == BLACK
    assert all(c.fg == GREY for c in answer_cells)
    assert all(c.bg is not None for c in prompt_cells)


def test_candidates_are_probabilities_over_the_vocabulary(expl):
    cells = candidate_cells(expl, 0)
    assert len(cells) == 3
    pct = [float(c.text.rsplit(" ", 1)[1].rstrip("%")) for c in cells]
    assert pct == sorted(pct, reverse=True)
    # The stored full-vocabulary probabilities, not renormalised over the three shown.
    want = [round(100 * float(p), 1) for p in expl.candidates.probs[0, :3]]
    assert pct == want
    assert candidate_cells(dataclasses.replace(expl, candidates=None), 0) == []


def test_text_map_wraps_to_width(expl):
    wide = render_text_map(expl, 3, width=900, font_size=16)
    narrow = render_text_map(expl, 3, width=200, font_size=16)
    assert wide.shape[1] == 900 and narrow.shape[1] == 200
    assert narrow.shape[0] > wide.shape[0]
    assert (narrow[:, -3:] == 255).all()           # nothing drawn into the right margin
    tiny = render_text_map(expl, 3, width=60)      # long tokens are shortened, not overflowing
    assert tiny.shape[1] == 60


# ------------------------------------------------------------------------------ figures
def test_figure_stacks_overlay_over_the_text_map(expl):
    from tam_engine.render.figure import token_overlay

    bare = paper_figure(expl, 1, width=200, colorbar=False, caption=False)
    top = token_overlay(expl, 1, width=200)
    text = render_text_map(expl, 1, width=200)
    # The overlay first, then the text map of the same width, stacked exactly.
    assert bare.shape == (top.shape[0] + text.shape[0], 200, 3)
    np.testing.assert_array_equal(bare[:top.shape[0]], top)
    np.testing.assert_array_equal(bare[top.shape[0]:], text)
    # The colour bar widens the figure; the caption adds rows above the overlay.
    # (Compared at one width: a wider text map can wrap into fewer lines.)
    full = paper_figure(expl, 1, width=200)
    no_caption = paper_figure(expl, 1, width=200, caption=False)
    assert full.shape[1] > 200 and no_caption.shape[1] == full.shape[1]
    assert full.shape[0] > no_caption.shape[0]


def test_figure_with_the_original_keeps_the_promised_width(expl):
    both = paper_figure(expl, 1, width=200, show_original=True, colorbar=False, caption=False)
    assert both.shape[1] == 200
    frame = expl.media[0].frames[0]
    left = both[:, :98]
    from tam_engine.render.figure import resize_frame

    want = resize_frame(frame, 98)
    np.testing.assert_array_equal(left[:want.shape[0]], want[:left.shape[0]])


def test_figure_without_media_and_for_video():
    no_media = dataclasses.replace(build_explanation(), media=[])
    assert paper_figure(no_media, 0, width=160).shape[0] > 100
    vid = build_explanation(video=True)
    a = paper_figure(vid, 1, frame=0, width=160)
    b = paper_figure(vid, 1, frame=3, width=160)
    assert a.shape == b.shape and not np.array_equal(a, b)


# ------------------------------------------------------------------------------ golden
@pytest.mark.parametrize("name", ["overlay_jet.png", "overlay_viridis_70.png",
                                  "textmap_cjk_emoji.png", "figure.png", "compare.png"])
def test_golden_images(name):
    got = golden_images()[name]
    want = np.asarray(Image.open(GOLDEN_DIR / name).convert("RGB"))
    assert got.shape == want.shape, f"{name}: size changed; run python tests/make_golden.py"
    diff = np.abs(got.astype(np.int16) - want.astype(np.int16)).mean()
    assert diff <= 2.0, f"{name}: mean abs diff {diff:.2f} levels (regenerate if intended)"


def test_golden_comparison_detects_a_real_change(expl):
    want = np.asarray(Image.open(GOLDEN_DIR / "overlay_jet.png").convert("RGB")).astype(np.int16)
    k = ANSWER.index(" sits")                        # another token's map on the same frame
    other = overlay(expl.media[0].frames[0], expl.frame_map(k), "jet", 0.5).astype(np.int16)
    assert np.abs(other - want).mean() > 2.0
