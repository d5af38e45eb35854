"""The ``*_grid_thw`` families (Qwen3-VL, Qwen3.5, GLM-4.1V/4.5V/4.6V) on every matrix case:
generation, each grid's token count against the processor's grid, and the geometry oracle."""

from __future__ import annotations

import numpy as np
import pytest

from tam_engine.core.errors import MediaError
from tam_engine.core.media import MediaItem
from tam_engine.core.spans import FULL_BOX
from tam_engine.inference.adapters import SpanError, adapter_class_for
from tam_engine.inference.pipeline import run_and_explain
from tam_engine.inference.settings import GenerationSettings
from tam_engine.testing.families import qwen3
from tam_engine.testing.geometry import (
    assert_grid_sees_square,
    bright_square,
    case_media,
    per_grid,
)

PROMPT = "Describe this image."
SPECS = {spec.name: spec for spec in qwen3.SPECS}
MATRIX = [pytest.param(spec.name, case, id=f"{spec.name}-{case}")
          for spec in qwen3.SPECS for case in spec.cases]


def _grid_thw(inputs, kind: str) -> np.ndarray:
    value = inputs.get(f"{kind}_grid_thw")
    return np.zeros((0, 3), np.int64) if value is None else value.numpy().reshape(-1, 3)


def _check_oracle(spec, prepared) -> None:
    brightness = spec.vision_brightness(prepared)
    for grid, cells in zip(prepared.spans.grids, per_grid(prepared.spans.grids, brightness)):
        assert_grid_sees_square(grid, cells)


@pytest.mark.parametrize(("family", "case"), MATRIX)
def test_family_case(tiny_loaded, family, case):
    loaded = tiny_loaded(family)
    spec = SPECS[family]
    media = case_media(case)

    # (1) generation works end to end
    expl = run_and_explain(loaded, media, PROMPT, GenerationSettings(max_new_tokens=3))
    assert expl.meta["family"] == family and 1 <= expl.n_answer <= 3
    assert len(expl.grids) == len(media)

    # (2) every grid is the processor's patch grid merged by the model's own merge size, its
    # token count is t*h*w, and it shows the whole frame (these processors only resize)
    prepared = loaded.adapter.prepare(media, PROMPT)
    assert [(g.t, g.h, g.w) for g in expl.grids] == [(g.t, g.h, g.w) for g in prepared.spans.grids]
    merge = loaded.model.config.vision_config.spatial_merge_size
    thw = {kind: iter(_grid_thw(prepared.model_inputs, kind)) for kind in ("image", "video")}
    vision_ids = {loaded.processor.image_token_id, loaded.processor.video_token_id}
    for grid, item in zip(prepared.spans.grids, prepared.media):
        t, gh, gw = next(thw[item.kind])
        assert (grid.kind, grid.t, grid.h, grid.w) == (item.kind, t, gh // merge, gw // merge)
        assert grid.size == t * gh * gw // merge**2 == grid.positions.size
        assert grid.box == FULL_BOX and grid.role == "full"
        assert set(prepared.input_ids[grid.positions].tolist()) <= vision_ids
    # no vision token left over
    n_tokens = np.isin(prepared.input_ids, list(vision_ids)).sum()
    assert prepared.spans.n_vision == n_tokens

    # (3) the geometry oracle, from the processor's own pixel_values
    _check_oracle(spec, prepared)

    if case == "video":
        # temporal merge: two consecutive frames per slot, every displayed frame mapped
        (item,) = prepared.media
        np.testing.assert_array_equal(item.frame_slot, np.arange(item.n_frames) // 2)
        assert prepared.spans.grids[0].t == item.n_frames // 2


@pytest.mark.parametrize("family", ["qwen3_vl", "glm4v"])
def test_oracle_catches_a_mirrored_map(tiny_loaded, family):
    """The oracle has teeth: brightness mirrored left-right fails on a wide image."""
    prepared = tiny_loaded(family).adapter.prepare(case_media("wide"), PROMPT)
    (grid,) = prepared.spans.grids
    (cells,) = per_grid(prepared.spans.grids, SPECS[family].vision_brightness(prepared))
    with pytest.raises(AssertionError):
        assert_grid_sees_square(grid, cells[..., ::-1])


def test_images_and_videos_interleaved(tiny_loaded):
    loaded = tiny_loaded("qwen3_vl")
    media = [case_media("wide")[0], *case_media("video"), case_media("tall")[0]]
    expl = run_and_explain(loaded, media, PROMPT, GenerationSettings(max_new_tokens=2))
    assert [(g.kind, g.media_index, g.h, g.w) for g in expl.grids] == [
        ("image", 0, 2, 6), ("video", 1, 2, 2), ("image", 2, 6, 2)]
    _check_oracle(SPECS["qwen3_vl"], loaded.adapter.prepare(media, PROMPT))


def test_glm_videos_share_the_image_token_in_media_order(tiny_loaded):
    loaded = tiny_loaded("glm4v")
    short = MediaItem("video", "short.mp4", np.stack([bright_square(64, 64)] * 3),
                      frame_slot=np.arange(3), timestamps=np.arange(3.0), fps=1.0)
    media = [*case_media("video"), short]
    expl = run_and_explain(loaded, media, PROMPT, GenerationSettings(max_new_tokens=2))
    assert [(g.media_index, g.t, g.h, g.w) for g in expl.grids] == [(0, 4, 2, 3), (1, 2, 2, 2)]
    prepared = loaded.adapter.prepare(media, PROMPT)
    assert np.all(prepared.input_ids[prepared.spans.vision_positions]
                  == loaded.processor.image_token_id)
    _check_oracle(SPECS["glm4v"], prepared)
    np.testing.assert_array_equal(prepared.media[1].frame_slot, [0, 0, 1])


def test_glm_refuses_images_with_a_video(tiny_loaded):
    # transformers' GLM-4V model counts a video's frames as image tokens and fails on the mix
    with pytest.raises(MediaError, match="images and a video"):
        tiny_loaded("glm4v").adapter.prepare([*case_media("video"), *case_media("square")], PROMPT)


@pytest.mark.parametrize("family", ["qwen3_vl", "glm4v"])
def test_one_frame_video(tiny_loaded, family):
    # shorter than one temporal slot: the processor refuses it, the adapter repeats the frame
    video = MediaItem("video", "one.mp4", bright_square(48, 80)[None], timestamps=[0.0], fps=1.0)
    expl = run_and_explain(tiny_loaded(family), [video], PROMPT,
                           GenerationSettings(max_new_tokens=2))
    assert expl.grids[0].t == 1 and expl.media[0].n_frames == 1
    np.testing.assert_array_equal(expl.media[0].frame_slot, [0])


def test_video_timestamps_are_the_displayed_frames(tiny_loaded):
    frames = np.stack([bright_square(48, 80)] * 4)
    video = MediaItem("video", "clip.mp4", frames, frame_slot=np.arange(4),
                      timestamps=np.array([1.0, 1.5, 2.0, 2.5]), fps=2.0)
    qwen = tiny_loaded("qwen3_vl")
    text = qwen.processor.tokenizer.decode(qwen.adapter.prepare([video], PROMPT).input_ids)
    # Qwen3-VL stamps each slot with the mean time of its two frames
    assert "<1.2 seconds>" in text and "<2.2 seconds>" in text and "<0.0 seconds>" not in text
    glm = tiny_loaded("glm4v")
    text = glm.processor.tokenizer.decode(glm.adapter.prepare([video], PROMPT).input_ids)
    # GLM stamps each slot with the whole seconds of its first frame
    assert "<|end_of_image|>1<|begin_of_image|>" in text and "<|end_of_image|>2<|end_of_video|>" in text


@pytest.mark.parametrize("family", ["qwen3_vl", "glm4v"])
def test_token_count_mismatch_names_family_image_and_counts(tiny_loaded, family):
    adapter = tiny_loaded(family).adapter
    media = case_media("two")
    prepared = adapter.prepare(media, PROMPT)
    inputs = dict(prepared.model_inputs)
    thw = inputs["image_grid_thw"].clone()
    second = thw[1].tolist()
    thw[1, 2] += 2  # one more merged column than the sequence holds
    inputs["image_grid_thw"] = thw
    with pytest.raises(SpanError) as info:
        adapter._grids(media, inputs, prepared.input_ids)
    t, gh, gw = second
    have = t * gh * gw // 4
    want = t * gh * (gw + 2) // 4
    message = str(info.value)
    assert family in message and "image 2" in message
    assert str(have) in message and str(want) in message


def test_video_token_count_mismatch_is_refused(tiny_loaded):
    adapter = tiny_loaded("glm4v").adapter
    media = case_media("video")
    prepared = adapter.prepare(media, PROMPT)
    inputs = dict(prepared.model_inputs)
    thw = inputs["video_grid_thw"].clone()
    thw[:, 0] *= 2  # twice the temporal slots the sequence holds
    inputs["video_grid_thw"] = thw
    with pytest.raises(SpanError, match=r"glm4v: video 1 has \d+ vision tokens"):
        adapter._grids(media, inputs, prepared.input_ids)


def test_image_pixel_limits_leave_videos_alone(tiny_loaded):
    adapter = tiny_loaded("qwen3_vl").adapter
    media = [MediaItem("image", "a.png", bright_square(256, 256)), *case_media("video")]
    base = adapter.prepare(media, PROMPT)
    small = adapter.prepare(media, PROMPT, GenerationSettings(max_pixels=32 * 32 * 4))
    assert (base.spans.grids[0].h, small.spans.grids[0].h) == (8, 2)
    assert (base.spans.grids[1].h, base.spans.grids[1].w) == (
        small.spans.grids[1].h, small.spans.grids[1].w)


def test_adapter_choice_from_config():
    import transformers as tf

    expected = {"Qwen3VLConfig": "qwen3_vl", "Qwen3VLMoeConfig": "qwen3_vl_moe",
                "Qwen3_5Config": "qwen3_5", "Qwen3_5MoeConfig": "qwen3_5_moe",
                "Glm4vConfig": "glm4v", "Glm4vMoeConfig": "glm4v_moe", "Glm46VConfig": "glm46v"}
    for name, family in expected.items():
        assert adapter_class_for(getattr(tf, name)()).family == family
    assert set(expected.values()) == set(SPECS)


def test_final_norm_is_the_text_decoders(tiny_loaded):
    for family in ("qwen3_5", "glm4v_moe"):
        loaded = tiny_loaded(family)
        assert loaded.adapter.final_norm(loaded.model) is loaded.model.model.language_model.norm

