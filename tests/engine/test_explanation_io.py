"""Explanation save/load: an exact round trip, and clear errors for files it cannot read."""

from __future__ import annotations

import dataclasses
import io
import json
import zipfile

import numpy as np
import pytest

from tam_engine.core.engine import explain
from tam_engine.core.errors import ExplanationFileError, TamError
from tam_engine.core.explanation import Explanation, TamOptions
from tam_engine.core.explanation_file import FORMAT_VERSION
from tam_engine.core.inputs import Candidates
from tam_engine.core.media import MediaItem
from tam_engine.testing.synthetic import synthetic_inputs

TEXTS = ["猫", " 🐶", " naïve", "\n", " der Straße", " 日本語", "👩‍👩‍👧", " ok"]


def _explanation(explain_prompt: bool = True, with_extras: bool = True) -> Explanation:
    rng = np.random.default_rng(11)
    inputs = synthetic_inputs(rng, d=8, vocab=30, grids=((1, 3, 4), (2, 2, 3)), n_prompt=4,
                              n_answer=5, values="gaussian", bias=True)
    # Texts with CJK, emoji (incl. a ZWJ sequence) and whitespace, one per id as a tokenizer
    # would give them.
    inputs.token_texts = [TEXTS[int(i) % len(TEXTS)] for i in inputs.ids]
    media, meta = [], {}
    if with_extras:
        T, k = inputs.n_answer, 3
        inputs.candidates = Candidates(
            ids=rng.integers(0, 30, size=(T, k)), logits=rng.standard_normal((T, k)),
            probs=rng.random((T, k)).astype(np.float32),
            texts=[[TEXTS[(t + j) % len(TEXTS)] for j in range(k)] for t in range(T)])
        media = [
            MediaItem(kind="image", path="/photos/猫 🐶.png",
                      frames=rng.integers(0, 256, size=(1, 6, 8, 3), dtype=np.uint8)),
            MediaItem(kind="video", path="clip.mp4",
                      frames=rng.integers(0, 256, size=(4, 5, 7, 3), dtype=np.uint8),
                      frame_slot=np.array([0, 0, 1, 1]), timestamps=np.array([0, .5, 1, 1.5]),
                      fps=2.0),
        ]
        meta = {"model": "Qwen2-VL-2B", "prompt": "この画像を説明して 🙂", "seed": 3,
                "nested": {"list": [1, 2.5, None, "x"]}, "flag": True}
    return explain(inputs, TamOptions(explain_prompt=explain_prompt, kernel_size=3),
                   media=media, meta=meta)


def _assert_same_arrays(a: np.ndarray, b: np.ndarray) -> None:
    assert a.dtype == b.dtype and a.shape == b.shape
    np.testing.assert_array_equal(a, b)


def _assert_same(x: Explanation, y: Explanation) -> None:
    _assert_same_arrays(x.ids, y.ids)
    assert x.input_len == y.input_len
    assert x.token_texts == y.token_texts
    _assert_same_arrays(x.prompt_positions, y.prompt_positions)
    assert len(x.grids) == len(y.grids)
    for g, h in zip(x.grids, y.grids):
        assert (g.kind, g.media_index, g.t, g.h, g.w) == (h.kind, h.media_index, h.t, h.h, h.w)
        _assert_same_arrays(g.positions, h.positions)
    for a, b in ((x.answer, y.answer), (x.prompt, y.prompt)):
        assert (a is None) == (b is None)
        if a is None:
            continue
        assert a.kind == b.kind and a.texts == b.texts
        for name in ("token_ids", "positions", "raw", "eci", "filtered", "maps", "alpha",
                     "relevance", "context", "norm_lo", "norm_hi"):
            _assert_same_arrays(getattr(a, name), getattr(b, name))
    assert (x.candidates is None) == (y.candidates is None)
    if x.candidates is not None:
        for name in ("ids", "logits", "probs"):
            _assert_same_arrays(getattr(x.candidates, name), getattr(y.candidates, name))
        assert x.candidates.texts == y.candidates.texts
    assert x.options == y.options
    assert len(x.media) == len(y.media)
    for m, n in zip(x.media, y.media):
        assert (m.kind, m.path, m.fps) == (n.kind, n.path, n.fps)
        for name in ("frames", "frame_slot", "timestamps"):
            _assert_same_arrays(getattr(m, name), getattr(n, name))
    assert x.meta == y.meta
    _assert_same_arrays(x.is_special, y.is_special)


@pytest.mark.parametrize("explain_prompt", [True, False])
@pytest.mark.parametrize("with_extras", [True, False])
def test_round_trip_is_exact(tmp_path, explain_prompt, with_extras):
    expl = _explanation(explain_prompt, with_extras)
    path = expl.save(tmp_path / "sub dir" / "run 猫.tam.npz")
    assert path.is_file()
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left behind
    back = Explanation.load(path)
    _assert_same(expl, back)
    # ... and what the views compute from it is the same too.
    np.testing.assert_array_equal(expl.combined_vector([0, 2], "max"),
                                  back.combined_vector([0, 2], "max"))


def test_saving_again_replaces_the_file(tmp_path):
    path = tmp_path / "e.tam.npz"
    _explanation(with_extras=False).save(path)
    second = _explanation(with_extras=True)
    second.save(path)
    _assert_same(second, Explanation.load(path))


def test_numpy_values_in_meta_are_saved_as_plain_values(tmp_path):
    expl = _explanation(with_extras=False)
    expl.meta = {"steps": np.int64(7), "score": np.float32(0.5), "shape": np.array([2, 3])}
    back = Explanation.load(expl.save(tmp_path / "e.tam.npz"))
    assert back.meta == {"steps": 7, "score": 0.5, "shape": [2, 3]}


def _with_special_tokens(explain_prompt: bool = True) -> Explanation:
    """An explanation whose sequence has special tokens, with the tokenizer's own mask."""
    rng = np.random.default_rng(5)
    inputs = synthetic_inputs(rng, d=8, vocab=30, grids=((1, 3, 4),), n_prompt=4, n_answer=5,
                              values="gaussian", bias=False)
    n = inputs.ids.size
    texts = [TEXTS[int(i) % len(TEXTS)] for i in inputs.ids]
    texts[0], texts[-3], texts[-2], texts[-1] = "<|im_start|>", "[SEP]", "<|im_end|>", "<pad>"
    inputs.token_texts = texts
    # The tokenizer knows "[SEP]" is special, which no look-based guess would say.
    inputs.is_special = np.isin(np.arange(n), [0, n - 3, n - 2, n - 1])
    return explain(inputs, TamOptions(explain_prompt=explain_prompt))


def test_the_special_token_mask_is_carried_and_saved(tmp_path):
    expl = _with_special_tokens()
    n = expl.ids.size
    assert expl.is_special.dtype == bool and expl.is_special.shape == (n,)
    np.testing.assert_array_equal(expl.special(), [False, False, True, True, True])
    assert not expl.special("prompt").any()
    back = Explanation.load(expl.save(tmp_path / "e.tam.npz"))
    _assert_same(expl, back)
    np.testing.assert_array_equal(back.special(), expl.special())


def test_a_file_saved_before_the_special_mask_opens_with_a_guessed_one(tmp_path):
    expl = _with_special_tokens()
    path = expl.save(tmp_path / "new.tam.npz")
    # Older versions wrote the same archive (same format version) without "is_special".
    old = tmp_path / "old.tam.npz"
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files if k != "is_special"}
    assert set(arrays) | {"is_special"} == set(np.load(path).files)
    np.savez_compressed(old, **arrays)
    back = Explanation.load(old)
    # Conservative: only whole "<|...|>" / "<name>" tokens; "[SEP]" stays text.
    n = expl.ids.size
    np.testing.assert_array_equal(back.is_special, np.isin(np.arange(n), [0, n - 2, n - 1]))
    np.testing.assert_array_equal(back.special(), [False, False, False, True, True])
    back.is_special = expl.is_special
    _assert_same(expl, back)                   # everything else is read as before


def test_a_special_mask_of_the_wrong_length_is_refused():
    inputs = synthetic_inputs(np.random.default_rng(1), d=4, vocab=9, grids=((1, 2, 2),),
                              n_prompt=2, n_answer=2)
    with pytest.raises(ValueError, match="is_special"):
        dataclasses.replace(inputs, is_special=np.zeros(3, bool))
    expl = explain(inputs)
    with pytest.raises(ValueError, match="is_special"):
        dataclasses.replace(expl, is_special=np.zeros(3, bool))
    # Left out, it is guessed from the texts (hand-built inputs and explanations).
    guessed = dataclasses.replace(expl, is_special=np.zeros(0, bool)).is_special
    assert guessed.shape == expl.ids.shape and guessed.dtype == bool


def _rewrite_header(src, dst, **changes) -> None:
    with np.load(src, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    header = json.loads(bytes(arrays["header"]).decode("utf-8"))
    header.update(changes)
    arrays["header"] = np.frombuffer(json.dumps(header).encode("utf-8"), dtype=np.uint8)
    np.savez(dst, **arrays)


def test_a_newer_format_gives_a_clear_error(tmp_path):
    path = _explanation(with_extras=False).save(tmp_path / "e.tam.npz")
    newer = tmp_path / "newer.tam.npz"
    _rewrite_header(path, newer, version=FORMAT_VERSION + 1)
    with pytest.raises(ExplanationFileError) as info:
        Explanation.load(newer)
    err = info.value
    assert "newer" in err.message and str(FORMAT_VERSION + 1) in err.message
    assert "newer.tam.npz" in err.message
    assert "Upgrade" in err.hint
    assert isinstance(err, TamError) and isinstance(err, ValueError)


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


def _not_explanations(tmp_path):
    png = _write(tmp_path / "image.png", b"\x89PNG\r\n\x1a\n" + bytes(64))
    text = _write(tmp_path / "notes.tam.npz", "just text, 猫\n".encode())
    empty = _write(tmp_path / "empty.tam.npz", b"")
    plain = tmp_path / "plain.npz"
    np.savez(plain, a=np.arange(3))
    single = tmp_path / "single.npy"
    np.save(single, np.arange(3))
    other = tmp_path / "other.npz"
    np.savez(other, header=np.frombuffer(b'{"format": "something-else"}', dtype=np.uint8))
    garbled = tmp_path / "garbled.npz"
    np.savez(garbled, header=np.frombuffer(b"\xff\xfe not json", dtype=np.uint8))
    good = _explanation(with_extras=False).save(tmp_path / "good.tam.npz")
    data = good.read_bytes()
    truncated = _write(tmp_path / "truncated.tam.npz", data[: len(data) // 2])
    # A right header whose arrays are missing: a damaged file.
    buf = io.BytesIO()
    with zipfile.ZipFile(good) as zin, zipfile.ZipFile(buf, "w") as zout:
        for item in zin.namelist():
            if not item.startswith("answer_raw"):
                zout.writestr(item, zin.read(item))
    damaged = _write(tmp_path / "damaged.tam.npz", buf.getvalue())
    return [png, text, empty, plain, single, other, garbled, truncated, damaged,
            tmp_path / "missing.tam.npz"]


def test_files_that_are_not_explanations_give_clear_errors(tmp_path):
    for path in _not_explanations(tmp_path):
        with pytest.raises(ExplanationFileError) as info:
            Explanation.load(path)
        err = info.value
        assert path.name in err.message, path
        assert err.hint, path
        assert isinstance(err, ValueError)


def _header(path) -> dict:
    with np.load(path, allow_pickle=False) as z:
        return json.loads(bytes(z["header"]).decode("utf-8"))


def test_plain_geometry_is_written_as_version_1_for_older_releases(tmp_path):
    path = _explanation().save(tmp_path / "plain.tam.npz")
    header = _header(path)
    assert header["version"] == 1
    assert all(g["box"] == [0.0, 0.0, 1.0, 1.0] and g["role"] == "full" for g in header["grids"])


def test_grid_geometry_round_trips_and_needs_version_2(tmp_path):
    expl = _explanation()
    cropped = [dataclasses.replace(g, box=(0.125, 0.0, 0.875, 1.0)) for g in expl.grids]
    path = dataclasses.replace(expl, grids=cropped).save(tmp_path / "crop.tam.npz")
    assert _header(path)["version"] == 2
    back = Explanation.load(path)
    assert [g.box for g in back.grids] == [(0.125, 0.0, 0.875, 1.0)] * len(cropped)
    assert [g.role for g in back.grids] == ["full"] * len(cropped)


def test_a_version_1_file_without_geometry_opens_with_whole_frame_grids(tmp_path):
    path = _explanation().save(tmp_path / "e.tam.npz")
    header = _header(path)
    old = tmp_path / "old.tam.npz"
    grids = [{k: v for k, v in g.items() if k not in ("box", "role")} for g in header["grids"]]
    _rewrite_header(path, old, grids=grids, version=1)
    back = Explanation.load(old)
    assert all(g.box == (0.0, 0.0, 1.0, 1.0) and g.role == "full" for g in back.grids)
