"""The family matrix for Qwen2-VL, Qwen2.5-VL, LLaVA-1.5 and InternVL: every case generates and
explains, every grid has the family's feature count, and every grid's cells saw the bright square
where their ``cell_box`` places them (the geometry oracle)."""

from __future__ import annotations

import pytest

from tam_engine.inference.pipeline import GenerationSettings, run_and_explain
from tam_engine.testing.families.classic import SPECS, feature_counts
from tam_engine.testing.geometry import (
    CASE_SIZES,
    assert_grid_sees_square,
    case_media,
    per_grid,
    snapped_square,
)

CASES = [(s.name, c) for s in SPECS for c in s.cases]
IDS = [f"{name}-{case}" for name, case in CASES]
SPEC = {s.name: s for s in SPECS}
PROMPT = "Describe this image."


@pytest.fixture(scope="module")
def prepared(tiny_loaded):
    cache: dict[tuple[str, str], object] = {}

    def get(name: str, case: str):
        if (name, case) not in cache:
            cache[name, case] = tiny_loaded(name).adapter.prepare(case_media(case), PROMPT)
        return cache[name, case]

    return get


@pytest.mark.parametrize(("name", "case"), CASES, ids=IDS)
def test_generates_and_explains(tiny_loaded, name, case):
    media = case_media(case)
    expl = run_and_explain(tiny_loaded(name), media, PROMPT, GenerationSettings(max_new_tokens=2))
    assert 1 <= expl.n_answer <= 2
    assert sorted({g.media_index for g in expl.grids}) == list(range(len(media)))
    for mi, item in enumerate(media):
        placed = expl.placed_map(0, mi, item.n_frames - 1)
        assert placed.values.shape == item.frames.shape[1:3]


@pytest.mark.parametrize(("name", "case"), CASES, ids=IDS)
def test_grid_counts_match_the_family(tiny_loaded, prepared, name, case):
    prep = prepared(name, case)
    cells = [g.size for g in prep.spans.grids]
    assert cells == feature_counts(name, prep, tiny_loaded(name).model.config)


@pytest.mark.parametrize(("name", "case"), CASES, ids=IDS)
def test_geometry_oracle(prepared, name, case):
    prep = prepared(name, case)
    grids = prep.spans.grids
    bright = per_grid(grids, SPEC[name].vision_brightness(prep))
    sizes = CASE_SIZES[case]
    for g, b in zip(grids, bright):
        h, w = sizes[min(g.media_index, len(sizes) - 1)]
        assert_grid_sees_square(g, b, square=snapped_square(h, w))


@pytest.mark.parametrize("settings", [
    {"cls": "CLIPImageProcessor", "shortest": 56, "crop": 56},
    {"cls": "LlavaImageProcessor", "shortest": 56, "crop": 56, "do_pad": True},
    {"cls": "CLIPImageProcessor", "shortest": 42, "crop": 56},  # the crop pads the short side
    {"cls": "CLIPImageProcessor", "squash": 56, "crop": 56, "do_center_crop": False},
], ids=["crop", "pad-square", "crop-pads", "squash"])
@pytest.mark.parametrize("case", ["wide", "tall", "two"])
def test_clip_box_follows_the_processor(settings, case):
    """LLaVA's grid box, checked against what the real image processor outputs."""
    import transformers as tf

    from tam_engine.core.spans import VisionGrid
    from tam_engine.inference.adapters.llava import clip_box
    from tam_engine.testing.families.classic import plane_brightness

    size = ({"height": settings["squash"], "width": settings["squash"]} if "squash" in settings
            else {"shortest_edge": settings["shortest"]})
    kw = {"size": size,
          "crop_size": {"height": settings["crop"], "width": settings["crop"]},
          "do_center_crop": settings.get("do_center_crop", True)}
    if "do_pad" in settings:
        kw["do_pad"] = True
    ip = getattr(tf, settings["cls"])(**kw)
    for item, (h, w) in zip(case_media(case), CASE_SIZES[case]):
        pv = ip(images=[item.frames[0]], return_tensors="pt")["pixel_values"]
        ph, pw = pv.shape[-2:]
        grid = VisionGrid("image", 0, 1, ph // 14, pw // 14, range((ph // 14) * (pw // 14)),
                          box=clip_box(ip, h, w))

        class _Prep:
            model_inputs = {"pixel_values": pv}
            spans = type("S", (), {"grids": (grid,)})

        assert_grid_sees_square(grid, plane_brightness(_Prep).reshape(grid.h, grid.w),
                                square=snapped_square(h, w))
