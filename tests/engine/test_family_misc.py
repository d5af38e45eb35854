"""The family matrix for Mistral 3 and PaliGemma, and the generic adapter's refusals.

For every family x case: the model generates through ``run_and_explain``; every grid holds
exactly the features the model's own vision path produces for its images; and the geometry
oracle: each token's brightness, read from the processor's own ``pixel_values``, matches the
part of the bright square its grid's ``cell_box`` says it saw.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

from tam_engine.core.errors import TamError
from tam_engine.core.media import MediaItem
from tam_engine.core.spans import VisionGrid
from tam_engine.inference.adapters import ADAPTERS, supported_families
from tam_engine.inference.adapters.base import SpanError
from tam_engine.inference.adapters.generic import GenericAdapter
from tam_engine.inference.pipeline import run_and_explain
from tam_engine.inference.settings import GenerationSettings
from tam_engine.testing.families import family_spec
from tam_engine.testing.families.misc import EXTRA_CASES, SPECS
from tam_engine.testing.geometry import (
    assert_grid_sees_square,
    bright_square,
    case_media,
    per_grid,
    snapped_square,
)

PROMPT = "Describe this image."
MATRIX = [(s.name, case) for s in SPECS for case in s.cases] + [
    (name, case) for name, extra in EXTRA_CASES.items() for case in extra]


def _media(family: str, case: str) -> list[MediaItem]:
    sizes = EXTRA_CASES.get(family, {}).get(case)
    if sizes is None:
        return case_media(case)
    return [MediaItem("image", f"{case}{i + 1}.png", bright_square(h, w)[None])
            for i, (h, w) in enumerate(sizes)]


def _feature_counts(loaded, prepared) -> list[int]:
    """Features per processed image, from the model's own vision path."""
    import torch

    inputs = prepared.model_inputs
    kwargs = {"pixel_values": inputs["pixel_values"]}
    if "image_sizes" in inputs:
        kwargs.update(image_sizes=inputs["image_sizes"],
                      vision_feature_layer=loaded.model.config.vision_feature_layer)
    with torch.no_grad():
        features = loaded.model.get_image_features(**kwargs).pooler_output
    if isinstance(features, torch.Tensor):
        return [int(features.shape[1])] * int(features.shape[0])
    return [int(f.shape[0]) for f in features]


@pytest.mark.parametrize(("family", "case"), MATRIX, ids=[f"{f}-{c}" for f, c in MATRIX])
def test_family_case(tiny_loaded, family, case):
    loaded = tiny_loaded(family)
    assert loaded.family == family
    media = _media(family, case)

    # generation works end to end
    expl = run_and_explain(loaded, media, PROMPT, GenerationSettings(max_new_tokens=3))
    assert 1 <= expl.n_answer <= 3
    prepared = loaded.adapter.prepare(media, PROMPT)
    grids = prepared.spans.grids
    assert [(g.t, g.h, g.w, g.box) for g in expl.grids] == [(g.t, g.h, g.w, g.box) for g in grids]
    assert [g.media_index for g in grids] == list(range(len(media)))
    assert loaded.adapter.tokenizer.decode(
        prepared.input_ids[prepared.spans.prompt_positions]).strip() == PROMPT

    # every grid holds exactly the features the model computes for its image(s)
    counts = _feature_counts(loaded, prepared)
    assert len(counts) == sum(m.n_frames for m in media)
    start = 0
    for g, item in zip(grids, media):
        assert g.t == item.n_frames
        assert [g.h * g.w] * g.t == counts[start:start + g.t], (g, counts)
        start += g.t

    # the geometry oracle
    brightness = family_spec(family).vision_brightness(prepared)
    for g, cells in zip(grids, per_grid(grids, brightness)):
        h, w = media[g.media_index].frames.shape[1:3]
        assert_grid_sees_square(g, cells, square=snapped_square(h, w))


def test_the_specs_cover_the_media_each_adapter_claims():
    by_family = {cls.family: cls for cls in ADAPTERS}
    needs = {"image": "square", "images": "two", "video": "video"}
    for spec in SPECS:
        cls = by_family[spec.name]
        claimed = {needs[m] for m in cls.media} | ({"large"} if cls.tiling else set())
        assert claimed <= set(spec.cases), (spec.name, claimed - set(spec.cases))


def test_the_oracle_catches_a_wide_image_drawn_as_a_square(tiny_loaded):
    loaded = tiny_loaded("mistral3")
    prepared = loaded.adapter.prepare(case_media("wide"), PROMPT)
    (g,) = prepared.spans.grids
    assert (g.h, g.w) == (3, 8)
    brightness = family_spec("mistral3").vision_brightness(prepared)
    wrong = VisionGrid("image", 0, 1, g.w, g.h, g.positions)  # transposed
    with pytest.raises(AssertionError):
        assert_grid_sees_square(wrong, brightness.reshape(g.w, g.h))


# ------------------------------------------------------------------------------ Mistral 3
def test_mistral3_separators_are_in_no_grid(tiny_loaded):
    loaded = tiny_loaded("mistral3")
    proc = loaded.processor
    prepared = loaded.adapter.prepare(case_media("two"), PROMPT)
    ids = prepared.input_ids
    for g in prepared.spans.grids:
        assert np.all(ids[g.positions] == proc.image_token_id)
        # each row of the grid is one contiguous run, ended by a separator
        rows = g.positions.reshape(g.h, g.w)
        assert np.all(np.diff(rows, axis=1) == 1)
        assert np.all(ids[rows[:-1, -1] + 1] == proc.image_break_token_id)
        assert ids[rows[-1, -1] + 1] == proc.image_end_token_id
    assert prepared.spans.n_vision == int(np.count_nonzero(ids == proc.image_token_id))


def test_mistral3_merge_dropping_a_row_narrows_the_box(tiny_loaded):
    # A processed side that is not a multiple of patch x merge (16 here): the model's merge
    # keeps whole 16-px blocks, so 40 px give two rows that cover 32/40 of the height.
    loaded = tiny_loaded("mistral3")
    proc = loaded.processor
    img, brk, end = proc.image_token_id, proc.image_break_token_id, proc.image_end_token_id
    ids = np.array([1] + [img] * 8 + [brk] + [img] * 8 + [end] + [2], dtype=np.int64)
    media = [MediaItem("image", "a.png", np.zeros((40, 128, 3), np.uint8))]
    grids, _ = loaded.adapter._grids(media, {"image_sizes": np.array([[40, 128]])}, ids)
    (g,) = grids
    assert (g.h, g.w) == (2, 8) and g.box == (0.0, 0.0, 1.0, 0.8)
    np.testing.assert_array_equal(g.positions, [*range(1, 9), *range(10, 18)])


def test_mistral3_count_mismatch_names_the_image_and_both_counts(tiny_loaded):
    # A processor whose patch size disagrees with the vision tower's: 36 px -> 40 px, five
    # token rows, where the model makes two.
    import transformers as tf

    loaded = tiny_loaded("mistral3")
    proc = loaded.processor
    bad = tf.PixtralProcessor(image_processor=proc.image_processor, tokenizer=proc.tokenizer,
                              patch_size=4, spatial_merge_size=2,
                              chat_template=proc.chat_template)
    adapter = type(loaded.adapter)(bad, loaded.model.config)
    media = [*case_media("square"), MediaItem("image", "odd.png", bright_square(36, 128)[None])]
    with pytest.raises(SpanError) as info:
        adapter.prepare(media, PROMPT)
    message = str(info.value)
    assert "Mistral 3" in message and "image 1" in message
    assert "256 image tokens" in message and "8 x 8 = 64" in message


# ------------------------------------------------------------------------------ PaliGemma
def test_paligemma_prefix_prompt_from_the_processors_ids(tiny_loaded):
    loaded = tiny_loaded("paligemma")
    tok = loaded.adapter.tokenizer
    prepared = loaded.adapter.prepare(case_media("two"), "What is it?")
    ids = prepared.input_ids
    n = prepared.spans.n_vision
    # <image> x n, then <bos>, the prompt and a newline: nothing else
    assert np.all(ids[:n] == loaded.processor.image_token_id)
    assert ids[n] == tok.bos_token_id
    assert tok.decode(ids[n + 1:]) == "What is it?\n"
    assert tok.decode(ids[prepared.spans.prompt_positions]) == "What is it?"
    assert "labels" not in prepared.model_inputs


def test_paligemma_ignores_a_chat_template(tiny_loaded):
    loaded = tiny_loaded("paligemma")
    assert loaded.processor.chat_template is None
    processor = copy.copy(loaded.processor)
    processor.chat_template = "{% for m in messages %}USER: {{ m['content'] }}{% endfor %}"
    adapter = type(loaded.adapter)(processor, loaded.model.config)
    a = adapter.prepare(case_media("square"), PROMPT)
    b = loaded.adapter.prepare(case_media("square"), PROMPT)
    np.testing.assert_array_equal(a.input_ids, b.input_ids)
    np.testing.assert_array_equal(a.spans.prompt_positions, b.spans.prompt_positions)


# ------------------------------------------------------------------------------ generic
def _refusal(adapter, media) -> TamError:
    with pytest.raises(TamError) as info:
        adapter.prepare(media, PROMPT)
    hint = info.value.hint
    for cls in supported_families():
        assert cls.title in hint, (cls.title, hint)
    assert "tam models" in hint
    return info.value


def test_generic_refuses_a_grid_it_cannot_verify_and_lists_the_families(tiny_loaded):
    # Mistral 3's [IMG] rows are separated by [IMG_BREAK]: not one square run per image.
    loaded = tiny_loaded("mistral3")
    adapter = GenericAdapter(loaded.processor, loaded.model.config)
    err = _refusal(adapter, case_media("square"))
    assert "mistral3" in err.message and f"8 runs ({', '.join(['8'] * 8)} tokens) for 1 image" in (
        err.message)
    assert "expected 1024 per image" in err.message
    # a wide image is refused before: the processor pads it
    assert "pads non-square images" in _refusal(adapter, case_media("wide")).message


def test_generic_refuses_a_centre_crop_of_a_non_square_image(tiny_loaded):
    # LLaVA-1.5's processor centre-crops: the generic adapter cannot draw the grid over the
    # whole frame (the silent wrong map of a wide image); a square image is accepted.
    loaded = tiny_loaded("llava")
    adapter = GenericAdapter(loaded.processor, loaded.model.config)
    err = _refusal(adapter, case_media("wide"))
    assert "centre-crops non-square images" in err.message
    (g,) = adapter.prepare(case_media("square"), PROMPT).spans.grids
    assert (g.h, g.w) == (4, 4)


def test_generic_turns_any_mismatch_into_a_refusal(tiny_loaded):
    # PaliGemma given a chat template: the processor adds <bos> the template does not show.
    loaded = tiny_loaded("paligemma")
    processor = copy.copy(loaded.processor)
    processor.chat_template = ("{% for m in messages %}{% for c in m['content'] %}"
                               "{% if c['type'] == 'image' %}<image>{% else %}{{ c['text'] }}"
                               "{% endif %}{% endfor %}{% endfor %}")
    err = _refusal(GenericAdapter(processor, loaded.model.config), case_media("square"))
    assert "Cannot locate the prompt" in err.message


def test_generic_refusal_reports_real_per_image_counts(tiny_loaded):
    loaded = tiny_loaded("qwen2_vl")
    config = copy.deepcopy(loaded.model.config)
    config.image_seq_length = 16  # a declared count, so that only the counts disagree
    adapter = GenericAdapter(loaded.processor, config)
    media = case_media("two")
    counts = [g.size for g in loaded.adapter.prepare(media, PROMPT).spans.grids]
    assert counts[0] != counts[1]
    err = _refusal(adapter, media)
    assert f"image 1: {counts[0]}, image 2: {counts[1]}" in err.message
    assert "expected 16 per image (the config's image_seq_length: a 4 x 4 grid)" in err.message
    assert f"{sum(counts) // 2} " not in err.message  # never an average


def test_generic_refuses_a_video_of_a_family_with_its_own_video_path(tiny_loaded):
    loaded = tiny_loaded("qwen2_vl")
    config = copy.deepcopy(loaded.model.config)
    config.image_seq_length = 4
    err = _refusal(GenericAdapter(loaded.processor, config), case_media("video"))
    assert "video" in err.message


def test_generic_refuses_a_model_that_declares_no_count(tiny_loaded):
    loaded = tiny_loaded("qwen2_vl")
    err = _refusal(GenericAdapter(loaded.processor, loaded.model.config), case_media("square"))
    assert "declares no number" in err.message


def test_no_chat_template_is_a_tam_error_not_a_value_error(tiny_loaded):
    loaded = tiny_loaded("llava")
    processor = copy.copy(loaded.processor)
    processor.chat_template = None
    adapter = type(loaded.adapter)(processor, loaded.model.config)
    with pytest.raises(SpanError) as info:
        adapter.prepare(case_media("square"), PROMPT)
    assert "chat template" in info.value.message and "chat_template" in info.value.hint
