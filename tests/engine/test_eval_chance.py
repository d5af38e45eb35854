"""Chance lines of ``tam eval``: hand-made cases and the printed table."""

from __future__ import annotations

import numpy as np
import pytest

from tam_engine.eval.chance import (
    CHANCE_LINES,
    centre_map,
    chance_maps,
    random_smooth_map,
    uniform_score,
)
from tam_engine.eval.datasets import open_dataset
from tam_engine.eval.metrics import function_score, object_score
from tam_engine.eval.runner import format_summary, run_eval, variants_for
from tam_engine.testing.fake_eval import fake_explain


def test_uniform_map_iou_is_the_object_area_fraction():
    mask = np.zeros((40, 50), bool)
    mask[5:15, 10:30] = True                       # 200 of 2000 pixels
    s = uniform_score(np.full(mask.shape, 255, np.uint8), mask)
    assert s["iou"] == pytest.approx(0.1) and s["precision"] == pytest.approx(0.1)
    assert s["recall"] == 1.0
    # its threshold puts every pixel above it: a function word lit everywhere scores 0
    assert function_score(np.full(mask.shape, 255, np.uint8), s["threshold"]) == 0.0
    # (Otsu's rule alone gives a constant map an empty foreground: IoU 0, not a chance line)
    assert object_score(np.full(mask.shape, 255, np.uint8), mask)["iou"] == 0.0


def test_centre_prior_scores_a_centred_object_well_and_a_corner_object_not():
    h, w = 64, 64
    m = centre_map(h, w)
    assert m.dtype == np.uint8 and m.max() == 255 and m[32, 32] > 250 > m[0, 0]
    centred = np.zeros((h, w), bool)
    centred[20:44, 20:44] = True
    corner = np.zeros((h, w), bool)
    corner[:16, :16] = True
    assert object_score(m, centred)["iou"] > 0.4
    assert object_score(m, corner)["iou"] == 0.0


def test_random_smooth_maps_are_seeded_and_smooth():
    a = random_smooth_map(48, 64, np.random.default_rng(3))
    b = random_smooth_map(48, 64, np.random.default_rng(3))
    c = random_smooth_map(48, 64, np.random.default_rng(4))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c) and a.min() == 0 and a.max() == 255
    # smooth: neighbours differ far less than the range
    assert np.abs(np.diff(a.astype(int), axis=1)).mean() < 12
    maps1, _ = chance_maps("random", (48, 64), "item-1")
    maps2, _ = chance_maps("random", (48, 64), "item-1")
    np.testing.assert_array_equal(maps1(0), maps2(0))
    assert not np.array_equal(maps1(0), maps1(1))  # a new map for every token
    vid, _ = chance_maps("centre", (3, 48, 64), "v")
    assert vid(0).shape == (3, 48, 64)
    with pytest.raises(ValueError):
        chance_maps("nope", (4, 4), "x")


def test_eval_prints_chance_lines_below_the_method(tmp_path):
    from tam_engine.demo.synth import write_dataset

    root = tmp_path / "synth"
    write_dataset(root, n_images=4, n_videos=0, seed=5, size=96)
    ds = open_dataset(root)
    summary = run_eval(ds, fake_explain, variants_for(), tmp_path / "r.json", progress=False)
    assert set(summary["chance"]) == set(CHANCE_LINES)
    method, uni = summary["variants"]["both"], summary["chance"]["uniform"]
    # the same nouns are scored on every line
    assert all(c["n_obj"] == method["n_obj"] for c in summary["chance"].values())
    # the uniform line's Obj-IoU is the mean area fraction of the scored objects
    items = {it.id: it for it in ds.items}
    import json
    recs = json.loads((tmp_path / "r.json").read_text())["items"]
    fracs = [float(items[r["id"]].masks()[e["category"]].mean())
             for r in recs for e in r["chance"]["uniform"]["obj"]]
    assert uni["obj_iou"] == pytest.approx(float(np.mean(fracs)))
    assert uni["recall"] == 1.0 and uni["func_iou"] == 0.0
    assert method["obj_iou"] > max(c["obj_iou"] for c in summary["chance"].values())
    text = format_summary(summary)
    assert "chance lines" in text and all(name in text for name in CHANCE_LINES)
