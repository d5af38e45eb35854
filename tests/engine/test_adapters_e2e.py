"""End to end for every tiny family: load -> generate -> capture -> engine -> Explanation."""

from __future__ import annotations

import numpy as np
import pytest

from tam_engine.core.explanation import Explanation, TamOptions
from tam_engine.core.media import MediaItem
from tam_engine.inference.pipeline import run_and_explain
from tam_engine.inference.settings import GenerationSettings

FAMILIES = ["qwen2_vl", "qwen2_5_vl", "llava", "internvl"]


def _image(seed: int, h: int = 112, w: int = 112) -> MediaItem:
    rng = np.random.default_rng(seed)
    return MediaItem("image", f"img{seed}.png", rng.integers(0, 256, (h, w, 3), dtype=np.uint8))


def _video(n: int = 4) -> MediaItem:
    rng = np.random.default_rng(5)
    return MediaItem("video", "clip.mp4", rng.integers(0, 256, (n, 56, 56, 3), dtype=np.uint8),
                     frame_slot=np.arange(n), timestamps=np.arange(n) / 2.0, fps=2.0)


CASES = {"one_image": lambda: [_image(0)],
         "two_images": lambda: [_image(0), _image(1, 56, 84)],
         "video": lambda: [_video()]}


_RUNS: dict[tuple[str, str], tuple[Explanation, list[str], list[MediaItem]]] = {}


@pytest.fixture
def run(tiny_loaded):
    """``run(family, case) -> (explanation, streamed texts, media)``, made once per session."""
    def get(family: str, case: str):
        if (family, case) not in _RUNS:
            media = CASES[case]()
            streamed: list[str] = []
            expl = run_and_explain(tiny_loaded(family), media, "Describe this image.",
                                   GenerationSettings(max_new_tokens=4), TamOptions(),
                                   on_token=lambda i, s: streamed.append(s))
            _RUNS[family, case] = (expl, streamed, media)
        return _RUNS[family, case]
    return get


MATRIX = pytest.mark.parametrize(("family", "case"),
                                 [(f, c) for f in FAMILIES for c in sorted(CASES)])


@MATRIX
def test_the_answer_streams_token_by_token_and_is_what_was_generated(run, tiny_loaded, family,
                                                                     case):
    expl, streamed, _ = run(family, case)
    assert 1 <= expl.n_answer <= 4
    # One streamed piece per token; a token that ends inside a character streams as "" and
    # is completed by the next one, so only an unfinished last character may differ.
    assert len(streamed) == expl.n_answer
    assert "".join(streamed).rstrip("\ufffd") == expl.answer_text.rstrip("\ufffd")
    np.testing.assert_array_equal(expl.answer.token_ids, expl.ids[expl.input_len:])
    assert expl.meta["model"] == tiny_loaded(family).name and expl.meta["family"] == family
    assert set(expl.meta["timings"]) == {"prepare_s", "generate_s", "explain_s"}


@MATRIX
def test_every_token_has_a_uint8_map_over_every_vision_token(run, family, case):
    expl, _, media = run(family, case)
    assert len(expl.grids) == len(media) == len(expl.media)
    assert expl.answer.maps.shape == (expl.n_answer, expl.n_vision)
    assert expl.answer.maps.dtype == np.uint8
    assert expl.prompt is not None and len(expl.prompt) == expl.prompt_positions.size > 0


@MATRIX
def test_each_media_item_is_shown_with_its_own_grid(run, family, case):
    expl, _, _ = run(family, case)
    for k in range(expl.n_answer):
        maps = expl.grid_maps(k)
        assert [m.shape for m in maps] == [(g.t, g.h, g.w) for g in expl.grids]
        for mi, item in enumerate(expl.media):
            for f in range(item.n_frames):
                np.testing.assert_array_equal(expl.frame_map(k, mi, f),
                                              maps[mi][expl.slot_of_frame(mi, f)])


@MATRIX
def test_the_explanation_reopens_from_its_file(run, tmp_path, family, case):
    expl, _, _ = run(family, case)
    back = Explanation.load(expl.save(tmp_path / "run.tam.npz"))
    np.testing.assert_array_equal(back.answer.maps, expl.answer.maps)
    assert back.answer.texts == expl.answer.texts
    assert back.meta["prompt"] == "Describe this image."


def test_two_images_get_different_maps(tiny_loaded):
    loaded = tiny_loaded("qwen2_vl")
    expl = run_and_explain(loaded, [_image(0), _image(3, 56, 84)], "Describe this image.",
                           GenerationSettings(max_new_tokens=3), TamOptions(filter=False))
    a, b = expl.grid_maps(0, stage="raw")
    assert a.shape != b.shape
    # the raw map of each image is that image's own token scores, in its own order
    g0, g1 = expl.grids
    raw = expl.answer.raw[0]
    np.testing.assert_array_equal(a.reshape(-1), raw[:g0.size])
    np.testing.assert_array_equal(b.reshape(-1), raw[g0.size:g0.size + g1.size])
