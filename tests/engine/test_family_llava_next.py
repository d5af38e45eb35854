"""LLaVA-NeXT, LLaVA-OneVision and LLaVA-NeXT-Video: every case generates and explains, every
grid has the cells the model gives it features for, and each grid's cells sit where its tokens
looked (the geometry oracle)."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest
import torch

from tam_engine.core.explanation import Explanation, TamOptions
from tam_engine.inference.adapters import SpanError
from tam_engine.inference.pipeline import GenerationSettings, run_and_explain
from tam_engine.testing.families.llava_next import SPECS
from tam_engine.testing.geometry import assert_grid_sees_square, case_media, per_grid

PROMPT = "Describe this image."
FAMILIES = {spec.name: spec for spec in SPECS}
MATRIX = [(spec.name, case) for spec in SPECS for case in spec.cases]


@pytest.fixture(scope="module")
def prepared(tiny_loaded):
    """``prepared(family, case)``: the adapter's inputs and spans, made once per module."""
    made: dict = {}

    def get(family: str, case: str):
        if (family, case) not in made:
            made[family, case] = tiny_loaded(family).adapter.prepare(
                case_media(case), PROMPT, GenerationSettings(max_new_tokens=2))
        return made[family, case]

    return get


@pytest.mark.parametrize(("family", "case"), MATRIX)
def test_generates_and_explains(tiny_loaded, prepared, family, case):
    loaded = tiny_loaded(family)
    media = case_media(case)
    expl = run_and_explain(loaded, media, PROMPT, GenerationSettings(max_new_tokens=2),
                           TamOptions())
    assert isinstance(expl, Explanation)
    assert 1 <= expl.n_answer <= 2
    assert expl.answer.maps.shape == (expl.n_answer, expl.n_vision)
    want = prepared(family, case).spans.grids
    assert [(g.media_index, g.role, g.box, g.t, g.h, g.w) for g in expl.grids] == [
        (g.media_index, g.role, g.box, g.t, g.h, g.w) for g in want]
    # every displayed frame has its own slot
    for item, got in zip(media, expl.media):
        np.testing.assert_array_equal(got.frame_slot, np.arange(item.n_frames))


def _model_features(loaded, prep) -> list[list[torch.Tensor]]:
    """Per image (processor order) then per video: the feature vectors the model itself puts on
    that item's placeholders, and its ``image_newline`` vector."""
    model = loaded.model.model
    inputs = prep.model_inputs
    out = []
    with torch.no_grad():
        if "pixel_values" in inputs:
            kw = {k: inputs[k] for k in ("image_sizes", "batch_num_images") if k in inputs}
            out += list(model.get_image_features(inputs["pixel_values"], **kw).pooler_output)
        if "pixel_values_videos" in inputs:
            out += list(model.get_video_features(inputs["pixel_values_videos"]).pooler_output)
    return out


@pytest.mark.parametrize(("family", "case"), MATRIX)
def test_grid_cells_match_the_models_features(tiny_loaded, prepared, family, case):
    """Each media item's grids hold exactly the features the model gives it, less its newline
    tokens; the thumbnail is one tile's patch grid."""
    loaded = tiny_loaded(family)
    prep = prepared(family, case)
    newline = loaded.model.model.image_newline.detach()
    features = _model_features(loaded, prep)
    vc = loaded.model.config.vision_config
    side = vc.image_size // vc.patch_size
    native = loaded.adapter.native_video
    n_images = sum(1 if m.kind == "image" or not native else 0
                   for m in prep.media for _ in range(m.n_frames))
    images, videos = features[:n_images], features[n_images:]
    ii = vi = 0
    for mi, item in enumerate(prep.media):
        grids = [g for g in prep.spans.grids if g.media_index == mi]
        if item.kind == "video" and native:
            blocks, vi = videos[vi:vi + 1], vi + 1
        else:  # an image, or a video whose frames went in as images
            blocks, ii = images[ii:ii + item.n_frames], ii + item.n_frames
        rows = torch.cat([b.reshape(-1, b.shape[-1]) for b in blocks])
        is_newline = torch.isclose(rows, newline.to(rows.dtype)).all(dim=-1)
        assert sum(g.size for g in grids) == int((~is_newline).sum()), (family, case, mi)
        for g in grids:
            if g.role == "thumbnail":
                assert (g.h, g.w) == (side, side)
            assert g.t == item.n_frames


@pytest.mark.parametrize(("family", "case"), MATRIX)
def test_geometry_oracle(prepared, family, case):
    prep = prepared(family, case)
    brightness = FAMILIES[family].vision_brightness(prep)
    assert not np.isnan(brightness).any(), "a grid holds a newline token"
    for grid, cells in zip(prep.spans.grids, per_grid(prep.spans.grids, brightness)):
        assert_grid_sees_square(grid, cells)


def test_oracle_rejects_a_grid_drawn_over_the_whole_frame(prepared):
    """OneVision pads each of several images to a square: drawn over the bare frame, the map
    would be squashed, and the oracle says so."""
    prep = prepared("llava_onevision", "two")
    wide = prep.spans.grids[1]
    assert wide.box[1] < -0.3 and wide.box[3] > 1.3  # 96 x 160 padded to 160 x 160
    brightness = per_grid(prep.spans.grids, FAMILIES["llava_onevision"].vision_brightness(prep))
    with pytest.raises(AssertionError):
        assert_grid_sees_square(dataclasses.replace(wide, box=(0.0, 0.0, 1.0, 1.0)),
                                brightness[1])


def test_onevision_several_images_are_not_tiled(prepared):
    one = prepared("llava_onevision", "square").spans.grids
    two = prepared("llava_onevision", "two").spans.grids
    assert [g.role for g in one] == ["thumbnail", "tile"]
    assert [(g.role, g.h, g.w) for g in two] == [("full", 8, 8), ("full", 8, 8)]
    assert prepared("llava_onevision", "two").model_inputs["batch_num_images"].tolist() == [2]


def test_onevision_shrinks_a_large_canvas(prepared):
    """anyres_max_4 on a 2 x 3 tile canvas (16 x 24 cells): about 4 tiles' worth remain."""
    tile = prepared("llava_onevision", "large").spans.grids[1]
    assert (tile.h, tile.w) == (13, 19)


def test_next_video_frames_are_centre_cropped(prepared):
    (grid,) = prepared("llava_next_video", "video").spans.grids
    assert grid.kind == "video" and (grid.t, grid.h, grid.w) == (8, 4, 4)
    x0, y0, x1, y1 = grid.box
    assert (y0, y1) == (0.0, 1.0) and 0.15 < x0 < 0.25 and 0.75 < x1 < 0.85


def test_a_count_mismatch_names_family_image_and_both_counts(tiny_loaded):
    """A processor that counts one more token per image (the CLS it keeps with "full") than the
    model's features: refused, per image, with the real counts."""
    loaded = tiny_loaded("llava_next")
    processor = copy.copy(loaded.processor)
    processor.vision_feature_select_strategy = "full"
    adapter = type(loaded.adapter)(processor, loaded.model.config)
    with pytest.raises(SpanError) as err:
        adapter.prepare(case_media("two"), PROMPT)
    text = str(err.value)
    assert "LLaVA-NeXT" in text and "image 1" in text
    # 64x64 tiles as 1 x 2 (64 + 8 x 9 tokens); the processor keeps one more
    assert "gave it 137 image tokens" in text and "make 136" in text


def test_a_short_prompt_is_refused_with_each_images_count(tiny_loaded, prepared):
    """When the placeholders do not add up, the message lists every image's own count (never an
    average)."""
    loaded = tiny_loaded("llava_next")
    prep = prepared("llava_next", "two")
    ids = prep.input_ids.copy()
    image_id = loaded.processor.image_token_id
    ids[np.flatnonzero(ids == image_id)[-1]] = loaded.processor.tokenizer.pad_token_id
    with pytest.raises(SpanError) as err:
        loaded.adapter._grids(case_media("two"), prep.model_inputs, ids)
    text = str(err.value)
    assert "holds 369 image tokens" in text
    assert "136 (image 1) + 234 (image 2)" in text
