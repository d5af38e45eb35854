"""What the screen and the files say is one thing: token numbers from 1, candidate
probabilities over the vocabulary, and the named colour scales (no banding when stretched)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from tam_engine import export as ex
from tam_engine.cli import main as tam_main
from tam_engine.core.inputs import PROBABILITY_LABEL, percent
from tam_engine.core.tokens import phrase_label, phrase_text, token_label, token_number
from tam_engine.render.figure import paper_figure, token_overlay
from tam_engine.render.overlay import coloured, token_caption
from tam_engine.render.scale import MAP_SCALES, SCALE_NAMES, scale_top
from tam_engine.render.textmap import candidate_cells
from tam_engine.testing.golden import build_explanation


@pytest.fixture(scope="module")
def expl():
    return build_explanation()


def test_one_token_numbering_from_one():
    assert token_number(0) == 1
    assert token_label(0) == "token 1"
    assert token_label(2, 12, "answer") == "answer token 3 / 12"
    assert token_label(0, kind="prompt") == "prompt token 1"
    assert phrase_label([4, 2, 3], "answer") == "answer tokens 3-5"
    assert phrase_label([1, 4, 6]) == "tokens 2, 5, 7"
    assert phrase_label([3], "answer") == "answer token 4"
    assert phrase_text([" a", " red", " circle", " and", " blue"], [1, 2, 4]) == "red circle \u2026 blue"
    # Every caption and message goes through it.
    assert token_caption(" dog", 0, 5).endswith("(token 1 / 5)")


def test_exports_name_tokens_from_one(expl, tmp_path):
    n = expl.n_answer
    with pytest.raises(ex.ExportError, match=f"no answer token {n + 1} "):
        ex.export_token_png(expl, tmp_path / "x.png", n)
    paths = ex.export_png_sequence(expl, tmp_path / "seq", "textmap", width=120)
    assert paths[0].name == "token_0001.png" and len(paths) == n


def test_candidates_are_one_meaning_everywhere(expl, tmp_path):
    c = expl.candidates
    k = 1
    want = [percent(p) for p in c.probs[k, :3]]
    # the text map (PNG exports), the HTML page and the JSON export
    assert [cell.text.rsplit("  ", 1)[1] for cell in candidate_cells(expl, k)] == want
    page = ex.export_html(expl, tmp_path / "p.html", image_width=64).read_text(encoding="utf-8")
    payload = json.loads(page.split('type="application/json">', 1)[1].split("</script>", 1)[0])
    assert [p for _t, p in payload["cands"][str(k)]] == want
    assert PROBABILITY_LABEL in page
    data = json.loads(ex.export_json(expl, tmp_path / "e.json").read_text(encoding="utf-8"))
    got = [cand["prob"] for cand in data["answer_tokens"][k]["candidates"]]
    np.testing.assert_allclose(got, c.probs[k], atol=1e-6)
    # Not a softmax over the top three: the stored probabilities need not sum to 1.
    assert abs(float(c.probs[k, :3].sum()) - 1.0) > 0.01
    assert percent(0.0001) == "<0.1%" and percent(0.4567) == "45.7%"


def test_scale_tops(expl):
    maps = expl.answer.maps
    k = int(np.argmin(maps.max(axis=1) + (maps.max(axis=1) == 0) * 999))   # a weak token
    assert scale_top(expl, [k], "joint") == 255
    assert scale_top(expl, [k], "token") == max(1, int(maps[k].max()))
    assert scale_top(expl, [k], "shared") == int(maps.max())
    assert scale_top(expl, [0], "shared") == scale_top(expl, [3], "shared")
    assert set(SCALE_NAMES) == set(MAP_SCALES) and "joint" in SCALE_NAMES["joint"]
    with pytest.raises(ValueError, match="scale"):
        scale_top(expl, [k], "stretchy")


def test_stretch_shows_no_8bit_bands():
    # A weak map (peak 12 of 255), stretched to full colour: colouring the quantised resize
    # gives at most 13 colours (contour bands); colouring the float resize gives a smooth ramp.
    weak = np.zeros((4, 4), np.uint8)
    weak[1:3, 1:3] = 12
    smooth = coloured(weak, (200, 200), "gray", vmax=12 / 255)
    assert len(np.unique(smooth[..., 0])) > 100
    banded = coloured(np.round(np.clip(
        np.asarray(Image.fromarray(weak).resize((200, 200), Image.BILINEAR), np.float32)
        * (255 / 12), 0, 255)).astype(np.uint8), (200, 200), "gray")
    assert len(np.unique(banded[..., 0])) <= 14
    # At the method's scale a uint8 map is coloured exactly as before.
    from tam_engine.core.placement import resize_map
    from tam_engine.render.colormaps import apply_colormap
    np.testing.assert_array_equal(coloured(weak, (50, 50)), apply_colormap(resize_map(weak, (50, 50))))


def test_exports_take_the_scale_and_label_their_colour_bar(expl, tmp_path):
    k = 1
    joint = token_overlay(expl, k, width=120)
    stretched = token_overlay(expl, k, width=120, scale="token")
    assert not np.array_equal(joint, stretched)
    fig_joint = paper_figure(expl, k, width=120)
    fig_token = paper_figure(expl, k, width=120, scale="token")
    assert fig_joint.shape[0] == fig_token.shape[0]
    # the CLI has the same option, joint by default
    npz = expl.save(tmp_path / "e.tam.npz")
    assert tam_main(["export", str(npz), "png", "--layout", "overlay", "--token", "2",
                     "--width", "120", "--out", str(tmp_path / "d.png")]) == 0
    assert tam_main(["export", str(npz), "png", "--layout", "overlay", "--token", "2",
                     "--width", "120", "--scale", "token", "--out", str(tmp_path / "t.png")]) == 0
    d = np.asarray(Image.open(tmp_path / "d.png").convert("RGB"))
    t = np.asarray(Image.open(tmp_path / "t.png").convert("RGB"))
    np.testing.assert_array_equal(d, ex.render_token(expl, k, "overlay", width=120))
    np.testing.assert_array_equal(t, ex.render_token(expl, k, "overlay", width=120,
                                                      scale="token"))


def test_strongest_token_skips_special_tokens(expl):
    k = expl.strongest_token()
    strength = expl.answer.visual_strength()
    special = expl.special()
    assert not special[k]
    assert strength[k] == strength[~special].max()
