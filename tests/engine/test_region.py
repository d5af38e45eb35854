"""Region query (tam_engine.core.region): hand-made maps whose ranking is known, partial cells,
video slots, tiled/cropped/padded layouts against an independent raster oracle, refusals."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from tam_engine.core.explanation import Explanation
from tam_engine.core.explanation_store import save_chunked
from tam_engine.core.media import MediaItem
from tam_engine.core.region import RegionError, cell_weights, check_box, rank_region
from tam_engine.core.spans import VisionGrid
from tam_engine.core.token_maps import TokenMaps
from tam_engine.testing.synthetic import synthetic_explanation

W, H = 80, 40   # a 2 x 4 grid: cells of 20 x 20 pixels


def grid(h, w, box=(0.0, 0.0, 1.0, 1.0), role="full", t=1, kind="image"):
    return VisionGrid(kind, 0, t, h, w, np.arange(t * h * w), box=box, role=role)


def made(grids: list[VisionGrid], maps: np.ndarray, *, n_frames: int = 1,
         frame_slot=None) -> Explanation:
    """An explanation of one W x H item with these grids and these answer maps (uint8)."""
    maps = np.asarray(maps, np.uint8)
    n = maps.shape[0]
    base = synthetic_explanation("image", n_answer=n)
    tm = base.answer
    answer = TokenMaps(kind="answer", token_ids=tm.token_ids, positions=tm.positions,
                       texts=tm.texts, maps=maps, alpha=tm.alpha, relevance=tm.relevance,
                       context=tm.context, norm_lo=tm.norm_lo, norm_hi=tm.norm_hi)
    frames = np.zeros((n_frames, H, W, 3), np.uint8)
    kind = "video" if n_frames > 1 else "image"
    media = MediaItem(kind, "made", frames,
                      frame_slot=np.zeros(n_frames) if frame_slot is None else frame_slot,
                      timestamps=np.arange(n_frames, dtype=float))
    return dataclasses.replace(base, grids=grids, answer=answer, prompt=None, media=[media])


def cells(*values_at: tuple[int, int, int], h: int = 2, w: int = 4) -> np.ndarray:
    m = np.zeros((h, w), np.uint8)
    for r, c, v in values_at:
        m[r, c] = v
    return m.reshape(-1)


def test_tokens_are_ranked_by_their_share_inside_the_box():
    maps = np.stack([
        cells((0, 0, 200)),                    # all inside the top-left cell
        np.full(8, 50),                        # uniform: 1 cell of 8
        np.zeros(8),                           # no map at all: last
        cells((1, 3, 255)),                    # all outside
        cells((0, 0, 100), (1, 3, 100)),       # half inside
    ])
    r = rank_region(made([grid(2, 4)], maps), (0, 0, 20, 20))
    np.testing.assert_allclose(r.share, [1.0, 1 / 8, 0.0, 0.0, 0.5])
    assert list(r.order) == [0, 4, 1, 3, 2]       # zero map after the token that looks away
    assert r.chance == pytest.approx(1 / 8)
    assert r.top(3) == [0, 4, 1] and r.top(10) == [0, 4, 1]   # no token with share 0
    assert r.rank_of(2) == 5
    rows = r.records(r_texts := [f"w{i}" for i in range(5)])
    assert [row["token"] for row in rows] == [1, 5, 2, 4, 3]   # numbered from 1
    assert rows[0]["label"] == "answer token 1 / 5" and rows[0]["text"] == r_texts[0]
    assert rows[-1]["has_map"] is False


def test_partial_cells_count_by_the_area_inside():
    maps = np.stack([cells((0, 0, 255), (0, 1, 85)), np.full(8, 10)])
    # x 10..25: half of cell (0, 0), a quarter of cell (0, 1); y 0..10: half their height.
    r = rank_region(made([grid(2, 4)], maps), (10, 0, 25, 10))
    assert r.share[0] == pytest.approx((255 * 0.5 * 0.5 + 85 * 0.25 * 0.5) / (255 + 85))
    assert r.share[1] == pytest.approx(15 * 10 / (W * H))
    assert r.chance == pytest.approx(15 * 10 / (W * H))


def test_the_box_is_ordered_and_clipped_to_the_frame():
    maps = np.stack([cells((0, 0, 200))])
    ex = made([grid(2, 4)], maps)
    r = rank_region(ex, (20, 20, -50, -30))         # dragged up and left, past the corner
    assert r.box == (0.0, 0.0, 20.0, 20.0) and r.share[0] == pytest.approx(1.0)
    assert rank_region(ex, (-5, -5, W + 5, H + 5)).share[0] == pytest.approx(1.0)


def test_a_video_queries_the_slot_that_holds_the_frame():
    # Three slots, two frames each; the token looks top-left in slot 0, bottom-right in slot 2.
    per_slot = [cells((0, 0, 255)), np.zeros(8), cells((1, 3, 255))]
    maps = np.concatenate(per_slot)[None]
    ex = made([grid(2, 4, t=3, kind="video")], maps, n_frames=6,
              frame_slot=np.array([0, 0, 1, 1, 2, 2]))
    corner = (60, 20, 80, 40)
    assert rank_region(ex, corner, frame=0).share[0] == 0.0
    r = rank_region(ex, corner, frame=5)
    assert r.slot == 2 and r.share[0] == pytest.approx(1.0)
    r = rank_region(ex, corner, frame=2)            # slot 1: no map there
    assert r.slot == 1 and r.share[0] == 0.0 and r.mass[0] == 0.0


def tiles_and_thumbnail() -> list[VisionGrid]:
    return [grid(2, 2, (0.0, 0.0, 0.5, 1.0), "tile"), grid(2, 2, (0.5, 0.0, 1.0, 1.0), "tile"),
            grid(2, 4, role="thumbnail")]


def test_tiles_are_queried_where_the_model_looked():
    left_tile = np.r_[np.full(4, 255), np.zeros(4), np.zeros(8)]
    thumb_only = np.r_[np.zeros(8), np.full(8, 100)]
    ex = made(tiles_and_thumbnail(), np.stack([left_tile, thumb_only]))
    left_half = (0, 0, 40, 40)
    tiles = rank_region(ex, left_half, layer="tiles")
    assert tiles.share[0] == pytest.approx(1.0) and tiles.share[1] == 0.0
    assert list(tiles.order) == [0, 1]
    thumb = rank_region(ex, left_half, layer="thumbnail")
    assert thumb.share[0] == 0.0 and thumb.mass[0] == 0 and thumb.share[1] == pytest.approx(0.5)
    fused = rank_region(ex, left_half, layer="fused")
    # Fused = the mean of both layers everywhere (both cover the frame).
    assert fused.share[0] == pytest.approx(1.0) and fused.share[1] == pytest.approx(0.5)


def test_a_centre_crop_and_padding_carry_no_mass_outside_what_was_seen():
    crop = grid(2, 2, (0.25, 0.0, 0.75, 1.0))        # the middle half of the frame
    padded = grid(4, 4, (0.0, -0.5, 1.0, 1.5))        # rows 0 and 3 are padding
    ex = made([crop], np.stack([np.full(4, 100)]))
    assert rank_region(ex, (0, 0, 20, 40)).share[0] == 0.0          # left margin: unseen
    assert rank_region(ex, (0, 0, 40, 40)).share[0] == pytest.approx(0.5)
    assert rank_region(ex, (0, 0, 20, 40)).chance == 0.0
    only_padding = cells((0, 1, 255), (3, 2, 255), h=4, w=4)
    ex = made([padded], np.stack([only_padding, np.full(16, 9)]))
    r = rank_region(ex, (0, 0, W, H))
    assert r.mass[0] == 0 and r.share[0] == 0 and list(r.order) == [1, 0]


def _oracle_shares(grids, maps, box_px, layer, n=160) -> np.ndarray:
    """Independent check: sample the frame on an n x n/2 raster of points, each point's value
    the mean of the cells covering it in each layer (then the mean of the layers covering
    it), and sum the samples inside the box."""
    xs = (np.arange(n) + 0.5) / n
    ys = (np.arange(n // 2) + 0.5) / (n // 2)
    tiles = [i for i, g in enumerate(grids) if g.role in ("tile", "full")] or \
        [i for i, g in enumerate(grids) if g.role == "thumbnail"]
    thumbs = [i for i, g in enumerate(grids) if g.role in ("thumbnail", "full")] or tiles
    groups = {"tiles": [tiles], "thumbnail": [thumbs], "fused": [tiles, thumbs]}[layer]
    if layer == "fused" and tiles == thumbs:
        groups = [tiles]
    offsets = np.cumsum([0] + [g.size for g in grids])
    out = []
    for m in maps:
        dens = np.zeros((ys.size, xs.size))
        n_layers = np.zeros_like(dens)
        for group in groups:
            total, count = np.zeros_like(dens), np.zeros_like(dens)
            for i in group:
                g = grids[i]
                x0, y0, x1, y1 = g.box
                cx = np.floor((xs - x0) / (x1 - x0) * g.w).astype(int)
                cy = np.floor((ys - y0) / (y1 - y0) * g.h).astype(int)
                okx, oky = (cx >= 0) & (cx < g.w), (cy >= 0) & (cy < g.h)
                vals = m[offsets[i]:offsets[i + 1]].reshape(g.h, g.w).astype(float)
                sub = np.zeros_like(dens)
                sub[np.ix_(oky, okx)] = vals[np.ix_(cy[oky], cx[okx])]
                total += sub
                count += np.outer(oky, okx)
            seen = count > 0
            dens[seen] += total[seen] / count[seen]
            n_layers += seen
        dens = np.where(n_layers > 0, dens / np.maximum(n_layers, 1), 0.0)
        bx0, by0, bx1, by1 = box_px
        inside = np.outer((ys * H > by0) & (ys * H < by1), (xs * W > bx0) & (xs * W < bx1))
        out.append(dens[inside].sum() / dens.sum() if dens.sum() > 0 else 0.0)
    return np.array(out)


@pytest.mark.parametrize("layer", ["tiles", "thumbnail", "fused"])
@pytest.mark.parametrize("layout", ["tiled", "overlapping", "padded"])
def test_shares_match_an_independent_raster_oracle(layer, layout):
    grids = {
        "tiled": tiles_and_thumbnail(),
        # Two tiles that overlap in the middle fifth, and a thumbnail.
        "overlapping": [grid(2, 3, (0.0, 0.0, 0.6, 1.0), "tile"),
                        grid(2, 3, (0.4, 0.0, 1.0, 1.0), "tile"), grid(2, 4, role="thumbnail")],
        "padded": [grid(4, 4, (0.0, -0.5, 1.0, 1.5))],
    }[layout]
    rng = np.random.default_rng(3)
    maps = rng.integers(0, 256, (5, sum(g.size for g in grids))).astype(np.uint8)
    ex = made(grids, maps)
    # Box edges on the raster's cell boundaries (multiples of 0.5 px), so the oracle's point
    # samples measure the same area exactly.
    for box in [(0, 0, 40, 20), (13, 7, 61, 33), (30, 0, 50, 40)]:
        got = rank_region(ex, box, layer=layer).share
        np.testing.assert_allclose(got, _oracle_shares(grids, maps, box, layer), atol=1e-6)


def test_whole_frame_weights_add_up_to_the_seen_area():
    for grids in (tiles_and_thumbnail(), [grid(2, 2, (0.25, 0.0, 0.75, 1.0))]):
        for layer in ("tiles", "thumbnail", "fused"):
            total = sum(w.sum() for w in cell_weights(grids, (0.0, 0.0, 1.0, 1.0), layer))
            seen = 1.0 if len(grids) > 1 else 0.5
            assert total == pytest.approx(seen)


def test_refusals():
    ex = made([grid(2, 4)], np.stack([np.full(8, 10)]))
    with pytest.raises(RegionError, match="outside"):
        rank_region(ex, (100, 0, 120, 20))
    with pytest.raises(RegionError, match="outside"):
        rank_region(ex, (-30, -30, 0, 0))   # touches the corner only
    with pytest.raises(RegionError, match="no area"):
        rank_region(ex, (10, 10, 10, 30))
    with pytest.raises(RegionError, match="finite"):
        rank_region(ex, (0, 0, float("nan"), 10))
    with pytest.raises(RegionError, match="frame"):
        rank_region(ex, (0, 0, 10, 10), frame=1)
    with pytest.raises(RegionError, match="no maps"):
        rank_region(ex, (0, 0, 10, 10), media_index=1)
    with pytest.raises(RegionError, match="finite"):
        check_box((0, 0, 1), (W, H))


def test_a_lazily_loaded_file_ranks_the_same_without_reading_all_maps_at_once(tmp_path):
    ex = synthetic_explanation("video", n_frames=14, grid_hw=(6, 8), n_answer=300,
                               width=64, height=48)
    back = Explanation.load(save_chunked(ex, tmp_path / "v.tam.npz"))
    for frame in (0, 7, 13):
        a = rank_region(ex, (5, 5, 40, 30), frame=frame)
        b = rank_region(back, (5, 5, 40, 30), frame=frame)
        np.testing.assert_allclose(a.share, b.share)
        np.testing.assert_array_equal(a.order, b.order)
    assert not back.answer.maps_loaded


def test_prompt_tokens_can_be_queried_too():
    ex = synthetic_explanation("image")
    r = rank_region(ex, (0, 0, 32, 24), kind="prompt")
    assert len(r) == len(ex.prompt) and r.kind == "prompt"


def test_cli_prints_and_writes_the_ranking(tmp_path, capsys):
    import csv
    import json

    from tam_engine.cli import main as tam_main

    maps = np.stack([np.full(8, 50), cells((0, 0, 200)), np.zeros(8)])
    src = made([grid(2, 4)], maps).save(tmp_path / "e.tam.npz")
    assert tam_main(["export", str(src), "region", "--box", "0", "0", "20", "20"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert [t["token"] for t in doc["tokens"]] == [2, 1, 3]
    assert doc["tokens"][0]["share"] == pytest.approx(1.0)
    assert doc["region"]["box"] == [0, 0, 20, 20] and doc["region"]["frame"] == 1
    assert doc["region"]["chance"] == pytest.approx(1 / 8)
    out = tmp_path / "r.csv"
    assert tam_main(["export", str(src), "region", "--box", "0", "0", "20", "20",
                     "--out", str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    assert [r["token"] for r in rows] == ["2", "1", "3"] and rows[2]["has_map"] == "False"
    assert tam_main(["export", str(src), "region", "--box", "0", "0", "20", "20",
                     "--csv"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "rank,token,text,share,has_map"


def test_cli_refuses_a_missing_or_bad_box(tmp_path, capsys):
    from tam_engine.cli import main as tam_main

    src = made([grid(2, 4)], np.stack([np.full(8, 50)])).save(tmp_path / "e.tam.npz")
    assert tam_main(["export", str(src), "region"]) == 2
    assert "--box" in capsys.readouterr().err
    assert tam_main(["export", str(src), "region", "--box", "200", "0", "300", "20"]) == 2
    assert "outside" in capsys.readouterr().err
    assert tam_main(["export", str(src), "region", "--box", "0", "0", "9", "9",
                     "--frame", "3"]) == 2
    assert "frame" in capsys.readouterr().err
