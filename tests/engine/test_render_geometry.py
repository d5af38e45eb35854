"""The renderer and the exporters draw a map only where its grids looked."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from PIL import Image

from tam_engine.core.placement import resize_map
from tam_engine.render.figure import map_over, paper_figure, resize_frame, token_overlay
from tam_engine.render.overlay import UNSEEN, overlay
from tam_engine.testing.synthetic import tiled_explanation

CROP = (0.25, 0.0, 0.75, 1.0)


def cropped():
    """One grid that saw only the middle half of a 160x96 frame (a centre crop)."""
    expl = tiled_explanation(tiles=(1, 1), thumbnail=False)
    expl.grids = [dataclasses.replace(expl.grids[0], box=CROP, role="full")]
    return expl


def test_overlay_keeps_the_plain_frame_outside_the_coverage():
    frame = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    m = np.full((20, 30), 255, np.uint8)
    cov = np.zeros((20, 30), bool)
    cov[:, 10:20] = True
    out = overlay(frame, m, "jet", 0.5, cov)
    assert np.array_equal(out[~cov], frame[~cov])
    assert np.array_equal(out[cov], overlay(frame, m, "jet", 0.5)[cov])


def test_a_centre_crop_is_drawn_over_the_crop_only():
    expl = cropped()
    frame = expl.media[0].frames[0]
    img = token_overlay(expl, 1)
    assert np.array_equal(img[:, :40], frame[:, :40]) and np.array_equal(img[:, 120:],
                                                                         frame[:, 120:])
    assert not np.array_equal(img[:, 40:120], frame[:, 40:120])
    want = overlay(frame[:, 40:120], resize_map(expl.frame_map(1), (80, 96)))
    assert np.array_equal(img[:, 40:120], want)
    # At another width the margins scale with the frame.
    small, base = token_overlay(expl, 1, width=80), resize_frame(frame, 80)
    assert np.array_equal(small[:, :20], base[:, :20]) and np.array_equal(small[:, 60:],
                                                                           base[:, 60:])
    bordered = token_overlay(expl, 1, tile_borders=True)
    assert (bordered[:, 40] == 255).all() and (bordered[:, 119] == 255).all()
    assert np.array_equal(bordered[1:95, 41:119], img[1:95, 41:119])


def test_without_media_the_unseen_part_is_grey():
    expl = cropped()
    expl.media = []
    img = token_overlay(expl, 1, width=160)
    assert img.shape == (80, 160, 3)     # square cells: 4 cells over half the width
    assert (img[:, :40] == UNSEEN).all() and (img[:, 120:] == UNSEEN).all()
    assert not (img[:, 40:120] == UNSEEN).all(axis=2).any()


@pytest.mark.parametrize("layer", ["tiles", "thumbnail", "fused"])
def test_tiled_layers_and_borders(layer):
    expl = tiled_explanation(width=160, height=96, tiles=(2, 3))
    plain = map_over(expl.media[0].frames[0], expl, 2, layer=layer)
    placed = expl.placed_map(2, layer=layer)
    assert np.array_equal(plain, overlay(expl.media[0].frames[0], placed.values))
    bordered = map_over(expl.media[0].frames[0], expl, 2, layer=layer, tile_borders=True)
    changed = np.any(bordered != plain, axis=2)
    if layer == "thumbnail":
        assert not changed.any()           # the thumbnail covers the whole frame: no border
    else:
        assert changed[47, :].all() or changed[48, :].all()   # the row between the tiles
        assert changed[:, 53].all() or changed[:, 52].all()
        assert changed.mean() < 0.08
    fig = paper_figure(expl, 2, width=160, layer=layer, tile_borders=True)
    assert fig.shape[1] > 160


def test_exports_follow_the_layer_and_the_crop(tmp_path):
    from tam_engine.cli import main
    from tam_engine.export import export_html, export_npz, sweep_frames

    expl = cropped()
    frame = expl.media[0].frames[0]
    first = next(sweep_frames(expl, caption=False, width=frame.shape[1]))   # the media size
    assert np.array_equal(first[:, :40], frame[:, :40])
    page = export_html(expl, tmp_path / "p.html").read_text()
    import base64
    import io
    import re

    uri = re.search(r'"a0s0": "data:image/png;base64,([^"]+)"', page)
    assert uri is not None
    heat = np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.group(1)))))
    assert heat.shape[2] == 4 and heat[:, 0, 3].max() == 0 and heat[:, heat.shape[1] // 2, 3].min() == 255
    with np.load(export_npz(expl, tmp_path / "m.npz")) as z:
        assert np.allclose(z["grid_boxes"], [CROP]) and list(z["grid_roles"]) == ["full"]
    # The CLI: --layer and --tile-borders reach the renderer.
    tiled = tiled_explanation()
    src = tiled.save(tmp_path / "t.tam.npz")
    outs = {}
    for layer in ("tiles", "thumbnail"):
        out = tmp_path / f"{layer}.png"
        assert main(["export", str(src), "png", "--layout", "overlay", "--layer", layer,
                     "--out", str(out)]) == 0
        outs[layer] = np.asarray(Image.open(out))
    assert not np.array_equal(outs["tiles"], outs["thumbnail"])
    out = tmp_path / "borders.png"
    assert main(["export", str(src), "png", "--layout", "overlay", "--layer", "tiles",
                 "--tile-borders", "--out", str(out)]) == 0
    assert np.any(np.asarray(Image.open(out)) != outs["tiles"])


def test_compare_differs_only_where_both_saw():
    from tam_engine.compare.comparison import Comparison

    a, b = cropped(), tiled_explanation(tiles=(1, 1), thumbnail=False)
    cmp = Comparison.of(a, b)
    d = cmp.difference([1], [1], size=(96, 160))
    assert d.shape == (96, 160)
    assert not d[:, :40].any() and not d[:, 120:].any() and d[:, 40:120].any()
