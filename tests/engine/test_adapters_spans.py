"""Adapters: spans and grids agree with what each family's real processor produced."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from tam_engine.core.media import MediaItem
from tam_engine.inference.adapters import adapter_class_for
from tam_engine.inference.settings import GenerationSettings

FAMILIES = ["qwen2_vl", "qwen2_5_vl", "llava", "internvl"]
PROMPT = "What colour is the shape on the left?"


def _image(seed: int, h: int = 112, w: int = 112) -> MediaItem:
    rng = np.random.default_rng(seed)
    return MediaItem("image", f"img{seed}.png", rng.integers(0, 256, (h, w, 3), dtype=np.uint8))


def _video(n: int = 4, h: int = 56, w: int = 56) -> MediaItem:
    rng = np.random.default_rng(7)
    return MediaItem("video", "clip.mp4", rng.integers(0, 256, (n, h, w, 3), dtype=np.uint8),
                     frame_slot=np.arange(n), timestamps=np.arange(n) / 2.0, fps=2.0)


CASES = {
    "one_image": lambda: [_image(0)],
    "two_images": lambda: [_image(0), _image(1, 56, 84)],
    "video": lambda: [_video()],
    "image_and_video": lambda: [_image(2), _video()],
}


def _vision_ids(adapter) -> list[int]:
    p, c = adapter.processor, adapter.config
    names = ("image_token_id", "video_token_id", "image_token_index")
    out = {getattr(o, n) for o in (p, c) for n in names if isinstance(getattr(o, n, None), int)}
    return sorted(out)


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("family", FAMILIES)
def test_spans_match_the_processor(tiny_loaded, family, case):
    loaded = tiny_loaded(family)
    adapter = loaded.adapter
    assert adapter.family == family
    media = CASES[case]()
    prep = adapter.prepare(media, PROMPT, GenerationSettings())
    ids = prep.input_ids
    np.testing.assert_array_equal(ids, prep.model_inputs["input_ids"][0].numpy())

    # one grid per media item, in the user's order, covering every vision token exactly once
    assert [g.media_index for g in prep.spans.grids] == list(range(len(media)))
    assert [g.kind for g in prep.spans.grids] == [m.kind for m in media]
    vision = np.flatnonzero(np.isin(ids, _vision_ids(adapter)))
    np.testing.assert_array_equal(np.sort(prep.spans.vision_positions), vision)
    assert np.all(np.diff(prep.spans.vision_positions) > 0)

    # the prompt positions carry exactly the prompt's text, contiguously, after the media
    pp = prep.spans.prompt_positions
    assert np.all(np.diff(pp) == 1) and pp[0] > vision.max()
    text = adapter.tokenizer.decode(ids[pp])
    assert text.strip() == PROMPT

    # each item's displayed frames map to valid slots of its own grid
    for item, grid in zip(prep.media, prep.spans.grids):
        assert item.frame_slot.shape == (item.n_frames,)
        assert item.frame_slot.min() == 0 and item.frame_slot.max() == grid.t - 1


@pytest.mark.parametrize("family", ["qwen2_vl", "qwen2_5_vl"])
def test_qwen_grids_follow_grid_thw(tiny_loaded, family):
    loaded = tiny_loaded(family)
    adapter = loaded.adapter
    prep = adapter.prepare([_image(0), _video(5), _image(1, 56, 84)], PROMPT)
    merge = adapter.processor.image_processor.merge_size
    thw_img = prep.model_inputs["image_grid_thw"].numpy()
    thw_vid = prep.model_inputs["video_grid_thw"].numpy()
    g_img = [g for g in prep.spans.grids if g.kind == "image"]
    (g_vid,) = [g for g in prep.spans.grids if g.kind == "video"]
    for g, thw in zip(g_img, thw_img):
        assert (g.t, g.h, g.w) == (thw[0], thw[1] // merge, thw[2] // merge)
        assert g.size == thw.prod() // merge**2
        assert np.all(prep.input_ids[g.positions] == adapter.processor.image_token_id)
    assert (g_vid.t, g_vid.h, g_vid.w) == (thw_vid[0, 0], thw_vid[0, 1] // merge,
                                           thw_vid[0, 2] // merge)
    assert np.all(prep.input_ids[g_vid.positions] == adapter.processor.video_token_id)
    # temporal patch 2: frames (0,1) -> slot 0, (2,3) -> 1, 4 (padded) -> 2
    np.testing.assert_array_equal(prep.media[1].frame_slot, [0, 0, 1, 1, 2])
    assert g_vid.t == 3


def test_llava_grid_is_the_patch_grid(tiny_loaded):
    adapter = tiny_loaded("llava").adapter
    prep = adapter.prepare([_image(0), _image(1, 40, 90)], PROMPT)
    crop = adapter.processor.image_processor.crop_size
    side = crop["height"] // adapter.processor.patch_size
    for g in prep.spans.grids:
        assert (g.t, g.h, g.w) == (1, side, side)
        assert np.all(prep.input_ids[g.positions] == adapter.processor.image_token_id)


def test_internvl_tiles_as_its_processor_does(tiny_loaded):
    # The checkpoint's processor tiles a tall image (1 x 3 tiles, then the thumbnail): one grid
    # of image_seq_length cells per tile, each over its third of the frame.
    adapter = tiny_loaded("internvl").adapter
    prep = adapter.prepare([_image(0, 300, 100)], PROMPT)
    grids = prep.spans.grids
    assert len(grids) == prep.model_inputs["pixel_values"].shape[0] == 4
    assert [g.role for g in grids] == ["tile", "tile", "tile", "thumbnail"]
    boxes = [(0, 0, 1, 1 / 3), (0, 1 / 3, 1, 2 / 3), (0, 2 / 3, 1, 1), (0, 0, 1, 1)]
    for g, box in zip(grids, boxes):
        assert g.box == pytest.approx(box)
        assert g.h * g.w == adapter.processor.image_seq_length == g.size


def test_video_on_an_image_only_family_is_one_grid_of_frames(tiny_loaded):
    adapter = tiny_loaded("llava").adapter
    prep = adapter.prepare([_video(3)], PROMPT)
    (g,) = prep.spans.grids
    assert (g.kind, g.t) == ("video", 3)
    np.testing.assert_array_equal(prep.media[0].frame_slot, [0, 1, 2])


def test_adapter_choice_from_config(tiny_loaded):
    from transformers import AutoConfig, LlamaConfig

    for family in FAMILIES:
        loaded = tiny_loaded(family)
        config = AutoConfig.from_pretrained(loaded.name)
        assert adapter_class_for(config).family == family
    assert adapter_class_for(LlamaConfig()) is None


def test_empty_prompt_and_no_media_are_refused(tiny_loaded):
    from tam_engine.core.errors import MediaError, TamError

    adapter = tiny_loaded("qwen2_vl").adapter
    with pytest.raises(TamError):
        adapter.prepare([_image(0)], "   ")
    with pytest.raises(MediaError):
        adapter.prepare([], PROMPT)


def test_generic_adapter_matches_the_llava_adapter(tiny_loaded):
    from tam_engine.inference.adapters import GenericAdapter

    loaded = tiny_loaded("llava")
    generic = GenericAdapter(loaded.processor, loaded.model.config)
    assert GenericAdapter.supports(loaded.model.config)
    media = [_image(0), _video(2)]
    a = generic.prepare(media, PROMPT)
    b = loaded.adapter.prepare(media, PROMPT)
    assert [(g.kind, g.t, g.h, g.w) for g in a.spans.grids] == [
        (g.kind, g.t, g.h, g.w) for g in b.spans.grids]
    np.testing.assert_array_equal(a.spans.vision_positions, b.spans.vision_positions)
    np.testing.assert_array_equal(a.spans.prompt_positions, b.spans.prompt_positions)


def test_prompt_found_when_the_template_trims_it(tiny_loaded):
    loaded = tiny_loaded("qwen2_vl")
    adapter = type(loaded.adapter)(loaded.processor, loaded.model.config)
    original = loaded.processor.chat_template
    adapter.processor = copy.copy(loaded.processor)
    adapter.processor.chat_template = original.replace(
        "{{ content['text'] }}", "{{ content['text'] | trim }}")
    prep = adapter.prepare([_image(0)], "  " + PROMPT + "  ")
    text = adapter.tokenizer.decode(prep.input_ids[prep.spans.prompt_positions])
    assert text == PROMPT


@pytest.mark.parametrize("family", ["qwen2_vl", "qwen2_5_vl"])
def test_qwen_pixel_limits_change_the_grids(tiny_loaded, family):
    adapter = tiny_loaded(family).adapter
    media = [_image(0, 224, 224), _video(2, 112, 112)]
    small = adapter.prepare(media, PROMPT, GenerationSettings(max_pixels=28 * 28 * 4))
    large = adapter.prepare(media, PROMPT, GenerationSettings(min_pixels=28 * 28 * 16,
                                                              max_pixels=28 * 28 * 64))
    assert [(g.h, g.w) for g in small.spans.grids] == [(2, 2), (2, 2)]
    assert [(g.h, g.w) for g in large.spans.grids] == [(8, 8), (4, 4)]
