"""The chunked file layout (format 3) of long explanations: exact round trips, a token or a
frame read without the rest, float stages kept only when small, and clear errors."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest
from test_release_files import _assert_same, _release_v1_explanation

from tam_engine.core import explanation_store as store
from tam_engine.core.errors import ExplanationFileError
from tam_engine.core.explanation import Explanation
from tam_engine.core.explanation_store import save_chunked
from tam_engine.core.token_maps import FLOAT_STAGES, StagesUnavailable
from tam_engine.testing.synthetic import synthetic_explanation, tiled_explanation


def _video(n_answer: int = 37) -> Explanation:
    # 37 tokens: three row blocks, the last one partial; 7 slots of 6 x 8.
    return synthetic_explanation("video", n_frames=14, grid_hw=(6, 8), n_answer=n_answer,
                                 width=64, height=48)


def _header(path) -> dict:
    with np.load(path) as npz:
        return json.loads(bytes(npz["header"]).decode("utf-8"))


@pytest.mark.parametrize("build", [_release_v1_explanation, _video, tiled_explanation])
def test_round_trip_is_exact_with_every_stage(tmp_path, build):
    expl = build()
    path = save_chunked(expl, tmp_path / "e.tam.npz")
    assert _header(path)["version"] == 3
    back = Explanation.load(path)
    assert not back.answer.maps_loaded  # nothing read beyond what was asked
    _assert_same(back, expl)
    np.testing.assert_array_equal(back.answer.maps, expl.answer.maps)
    for how in ("mean", "max"):
        np.testing.assert_array_equal(back.combined_vector([0, 2], how),
                                      expl.combined_vector([0, 2], how))
    assert [p.name for p in path.parent.iterdir()] == [path.name]


def test_one_token_reads_only_its_row_of_tiles(tmp_path, monkeypatch):
    expl = _video()
    path = save_chunked(expl, tmp_path / "e.tam.npz")
    back = Explanation.load(path)
    read: list[str] = []
    original = store._Archive.read
    monkeypatch.setattr(store._Archive, "read",
                        lambda self, names: read.extend(names) or original(self, names))
    np.testing.assert_array_equal(back.vision_vector(20), expl.answer.maps[20])
    assert read and all(n.startswith(f"answer_maps/{20 // store.ROW_BLOCK}_") for n in read)
    read.clear()
    back.vision_vector(21)  # same block: cached
    assert read == []
    np.testing.assert_array_equal(back.answer.maps, expl.answer.maps)


def test_long_explanations_keep_final_maps_and_say_the_float_stages_are_gone(tmp_path):
    expl = _video()
    path = save_chunked(expl, tmp_path / "e.tam.npz", stage_limit=0)
    back = Explanation.load(path)
    assert not back.answer.has_float_stages
    np.testing.assert_array_equal(back.answer.maps, expl.answer.maps)
    np.testing.assert_array_equal(back.combined_vector([1, 5], "max"),
                                  expl.combined_vector([1, 5], "max"))
    for stage in FLOAT_STAGES:
        with pytest.raises(StagesUnavailable, match=stage):
            back.vision_vector(0, stage=stage)
    with pytest.raises(StagesUnavailable):
        back.combined_vector([1, 5], "mean")  # never an approximation from the uint8 maps
    for name in ("alpha", "relevance", "context", "norm_lo", "norm_hi"):
        np.testing.assert_array_equal(getattr(back.answer, name), getattr(expl.answer, name))


def test_long_videos_store_frames_as_jpeg_decoded_on_demand(tmp_path, monkeypatch):
    expl = _video()
    frames = expl.media[0].frames
    path = save_chunked(expl, tmp_path / "e.tam.npz", lossless_frames_limit=0)
    assert _header(path)["media"][0]["codec"] == "jpeg"
    back = Explanation.load(path)
    lazy = back.media[0].frames
    assert lazy.shape == frames.shape and back.media[0].n_frames == 14
    read: list[str] = []
    original = store._Archive.read
    monkeypatch.setattr(store._Archive, "read",
                        lambda self, names: read.extend(names) or original(self, names))
    f5 = lazy[5]
    assert read == ["media0_frames/5.jpg"]
    assert f5.dtype == np.uint8 and f5.shape == frames.shape[1:]
    # Quality 95, 4:4:4: close to the frames shown before saving.
    assert np.abs(f5.astype(int) - frames[5]).mean() < 2.0
    np.testing.assert_array_equal(lazy[-1], lazy[13])
    assert np.asarray(lazy).shape == frames.shape and lazy[2:4].shape == (2, *frames.shape[1:])
    assert sum(1 for _ in lazy) == 14
    with pytest.raises(IndexError):
        lazy[14]
    # Saving it again keeps the JPEG bytes: no second generation of compression loss.
    again = save_chunked(back, tmp_path / "again.tam.npz", lossless_frames_limit=0)
    with zipfile.ZipFile(path) as a, zipfile.ZipFile(again) as b:
        assert a.read("media0_frames/3.jpg") == b.read("media0_frames/3.jpg")


def test_a_file_changed_or_damaged_after_opening_gives_a_clear_error(tmp_path):
    expl = _video()
    path = save_chunked(expl, tmp_path / "e.tam.npz")
    back = Explanation.load(path)
    save_chunked(_video(n_answer=20), path)
    with pytest.raises(ExplanationFileError, match="changed on disk"):
        back.vision_vector(0)
    bad = tmp_path / "bad.tam.npz"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(bad, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "answer_maps/0_0.z":
                data = b"not zlib" + data[8:]
            dst.writestr(info, data)
    with pytest.raises(ExplanationFileError, match="damaged"):
        Explanation.load(bad).vision_vector(0)


def test_save_picks_the_chunked_layout_for_long_explanations_only(tmp_path, monkeypatch):
    short = _video()
    assert _header(short.save(tmp_path / "short.tam.npz"))["version"] == 1
    monkeypatch.setattr(store, "STAGE_LIMIT", 1024)
    path = short.save(tmp_path / "long.tam.npz")
    assert _header(path)["version"] == 3
    back = Explanation.load(path)
    np.testing.assert_array_equal(back.answer.maps, short.answer.maps)
    with pytest.raises(StagesUnavailable):
        _ = back.answer.raw


def test_the_npz_export_of_a_file_without_float_stages_says_so(tmp_path):
    from tam_engine.export.data import export_npz

    expl = _video()
    back = Explanation.load(save_chunked(expl, tmp_path / "e.tam.npz", stage_limit=0))
    with np.load(export_npz(back, tmp_path / "maps.npz"), allow_pickle=False) as z:
        assert not bool(z["answer_float_stages"])
        assert "answer_raw" not in z.files and "answer_filtered" not in z.files
        np.testing.assert_array_equal(z["answer_maps"], expl.answer.maps)
        np.testing.assert_array_equal(z["answer_relevance"], expl.answer.relevance)
    with np.load(export_npz(expl, tmp_path / "full.npz"), allow_pickle=False) as z:
        assert bool(z["answer_float_stages"])
        np.testing.assert_array_equal(z["answer_eci"], expl.answer.eci)


def test_visual_strength_is_saved_so_the_timeline_needs_no_maps(tmp_path):
    expl = _video()
    back = Explanation.load(save_chunked(expl, tmp_path / "e.tam.npz"))
    np.testing.assert_array_equal(back.answer.visual_strength(), expl.answer.visual_strength())
    assert not back.answer.maps_loaded
    back.answer.maps  # noqa: B018 - once read, it is computed from them: the same values
    np.testing.assert_array_equal(back.answer.visual_strength(), expl.answer.visual_strength())
