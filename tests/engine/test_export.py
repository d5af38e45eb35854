"""Exports: PNG, sequences, contact sheet, H.264 MP4, HTML, JSON, NPZ; cancellation; CLI."""

from __future__ import annotations

import base64
import io
import json
import re

import av
import numpy as np
import pytest
from PIL import Image

from tam_engine import export as ex
from tam_engine.cli import main as tam_main
from tam_engine.core.errors import Cancelled
from tam_engine.render.figure import token_overlay
from tam_engine.render.mp4 import H264Writer
from tam_engine.testing.golden import ANSWER, PROMPT, build_explanation


@pytest.fixture(scope="module")
def expl():
    return build_explanation()


@pytest.fixture(scope="module")
def video_expl():
    return build_explanation(video=True, n_frames=4)


def decode(path):
    """(codec name, pix_fmt, width, height, frames) of an MP4 decoded with PyAV."""
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(s)]
        return s.codec_context.name, s.codec_context.pix_fmt, s.width, s.height, frames


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir())


# ------------------------------------------------------------------------------ PNG
@pytest.mark.parametrize("layout", ["figure", "overlay", "textmap"])
def test_token_png(tmp_path, expl, layout):
    p = ex.export_token_png(expl, tmp_path / f"{layout}.png", 1, layout, width=200)
    img = np.asarray(Image.open(p))
    assert img.ndim == 3 and img.shape[2] == 3
    np.testing.assert_array_equal(img, ex.render_token(expl, 1, layout, width=200))
    assert leftovers(tmp_path) == [f"{layout}.png"]


def test_bad_token_is_explained(tmp_path, expl):
    with pytest.raises(ex.ExportError, match="no answer token 99") as ei:
        ex.export_token_png(expl, tmp_path / "x.png", 98)
    assert "between 1 and" in ei.value.hint
    assert leftovers(tmp_path) == []


def test_png_sequence_and_progress(tmp_path, expl):
    calls = []
    paths = ex.export_png_sequence(expl, tmp_path / "seq", "overlay", width=96,
                                   progress=lambda i, n: calls.append((i, n)))
    assert [p.name for p in paths] == [f"token_{k:04d}.png" for k in range(1, len(ANSWER) + 1)]
    assert calls[0] == (0, len(ANSWER)) and calls[-1] == (len(ANSWER), len(ANSWER))
    assert leftovers(tmp_path) == ["seq"]
    # Writing again into the existing folder replaces the files.
    ex.export_png_sequence(expl, tmp_path / "seq", "textmap", width=120)
    assert Image.open(tmp_path / "seq" / "token_0001.png").width == 120


def test_cancelled_sequence_leaves_nothing(tmp_path, expl):
    seen = []

    def stop():
        seen.append(1)
        return len(seen) > 3

    with pytest.raises(Cancelled):
        ex.export_png_sequence(expl, tmp_path / "seq", should_stop=stop)
    assert leftovers(tmp_path) == []


def test_contact_sheet_places_every_token_overlay_in_reading_order(tmp_path, expl):
    from tam_engine.render.figure import token_overlay

    p = ex.export_contact_sheet(expl, tmp_path / "sheet.png", thumb_width=80, columns=5)
    sheet = np.asarray(Image.open(p).convert("RGB"))
    gap, rows = 6, int(np.ceil(len(ANSWER) / 5))
    overlays = [token_overlay(expl, k, width=80) for k in range(len(ANSWER))]
    oh, ow = overlays[0].shape[:2]
    tile_h = (sheet.shape[0] - gap) // rows - gap      # caption strip + overlay
    assert ow == 80 and tile_h > oh
    assert sheet.shape[0] == rows * (tile_h + gap) + gap
    for k, want in enumerate(overlays):
        r, c = divmod(k, 5)
        y = gap + r * (tile_h + gap) + (tile_h - oh)    # the overlay sits under its caption
        x = gap + c * (80 + gap)
        np.testing.assert_array_equal(sheet[y:y + oh, x:x + ow], want, err_msg=f"token {k + 1}")
    # right of the five columns: the colour bar, nothing else
    assert sheet.shape[1] > 5 * (80 + gap) + gap


# ------------------------------------------------------------------------------ MP4
def test_sweep_mp4_decodes_as_h264(tmp_path, expl):
    p = ex.export_sweep_mp4(expl, tmp_path / "sweep.mp4", fps=4, frames_per_token=2)
    codec, pix, w, h, frames = decode(p)
    assert (codec, pix) == ("h264", "yuv420p")
    want = next(ex.sweep_frames(expl))
    # A 96-pixel image is drawn 720 wide (MIN_VIDEO_WIDTH), with the colour bar beside it and
    # the caption above it.
    cap_h = want.shape[0] - 720 * 64 // 96
    assert want.shape[1] > 720 and cap_h > 10
    fh, fw = want.shape[:2]
    assert (w, h) == (fw + fw % 2, fh + fh % 2) and len(frames) == 2 * len(ANSWER)
    # The first frame is token 1's overlay (lossy coding: compare loosely).
    assert np.abs(frames[0][:fh, :fw].astype(int) - want.astype(int)).mean() < 6
    over = next(ex.sweep_frames(expl, caption=False))
    np.testing.assert_array_equal(over[:, :720], token_overlay(expl, 0, width=720))
    assert leftovers(tmp_path) == ["sweep.mp4"]


def test_odd_sizes_are_padded_even(tmp_path):
    e = build_explanation(image_size=(75, 41), seed=3)
    _, _, w, h, frames = decode(ex.export_sweep_mp4(e, tmp_path / "odd.mp4", width=75,
                                                    caption=False))
    fh, fw = next(ex.sweep_frames(e, width=75, caption=False)).shape[:2]
    assert fh == 41 and fw % 2 == 1                     # 75 + an odd-width colour bar
    assert (w, h) == (fw + 1, 42) and len(frames) == len(ANSWER)


def test_video_follow_the_answer(tmp_path, video_expl):
    p = ex.export_video_mp4(video_expl, tmp_path / "v.mp4", fps=8)
    codec, _, w, h, frames = decode(p)
    # 4 frames sampled at 2 fps would last 2 s; following the answer, each token stays on
    # screen FOLLOW_SECONDS_PER_TOKEN (1 s), so the clip is slowed down to n_tokens seconds.
    assert codec == "h264" and w > 720 and len(frames) == 8 * len(ANSWER)
    assert ex.FOLLOW_SECONDS_PER_TOKEN == 1.0
    sched = ex.follow_schedule(16, len(ANSWER))
    assert sched[0] == 0 and sched[-1] == len(ANSWER) - 1
    assert np.all(np.diff(sched) >= 0)
    counts = np.bincount(ex.follow_schedule(len(ANSWER) * 3, len(ANSWER)))
    assert (counts == 3).all()                         # equal shares


def test_video_one_token(tmp_path, video_expl):
    p = ex.export_video_mp4(video_expl, tmp_path / "t.mp4", token=2, fps=2, caption=False,
                            width=96)
    _, _, _, _, frames = decode(p)
    assert len(frames) == 4
    m = video_expl.media[0]
    from tam_engine.render.overlay import overlay
    for f in range(4):
        want = overlay(m.frames[f], video_expl.frame_map(2, 0, f), "jet", 0.5)
        assert np.abs(frames[f][:, :96].astype(int) - want.astype(int)).mean() < 6


def test_video_export_of_an_image_is_refused(tmp_path, expl):
    with pytest.raises(ex.ExportError, match="image"):
        ex.export_video_mp4(expl, tmp_path / "v.mp4")
    assert leftovers(tmp_path) == []


def test_cancelled_mp4_leaves_no_file(tmp_path, expl):
    n = []

    def stop():
        n.append(1)
        return len(n) > 5

    with pytest.raises(Cancelled):
        ex.export_sweep_mp4(expl, tmp_path / "sweep.mp4", should_stop=stop)
    assert leftovers(tmp_path) == []


def test_failed_mp4_leaves_no_file(tmp_path):
    with pytest.raises(ValueError, match="differs"), H264Writer(tmp_path / "x.mp4", 5) as w:
        w.write(np.zeros((16, 16, 3), np.uint8))
        w.write(np.zeros((32, 32, 3), np.uint8))
    assert leftovers(tmp_path) == []


# ------------------------------------------------------------------------------ data
def test_json_contents(tmp_path, expl):
    data = json.loads(ex.export_json(expl, tmp_path / "t.json").read_text(encoding="utf-8"))
    assert data["format"] == "tam-text-maps"
    assert data["columns"] == PROMPT + ANSWER
    toks = data["answer_tokens"]
    assert [t["text"] for t in toks] == ANSWER
    assert [t["id"] for t in toks] == expl.answer.token_ids.tolist()
    k = ANSWER.index(" sits")
    rel = toks[k]["relevance"]
    want = expl.answer.normalised_relevance(k)
    assert rel[len(PROMPT) + k + 1] is None                     # later tokens: not context
    assert rel[0] == pytest.approx(float(want[0]), abs=1e-4)
    probs = [c["prob"] for c in toks[k]["candidates"]]
    np.testing.assert_allclose(probs, expl.candidates.probs[k], atol=1e-6)
    assert all("top3_softmax" not in c for c in toks[k]["candidates"])
    assert "vocabulary" in data["candidate_prob"] and data["version"] == 2
    assert toks[k]["candidates"][0]["id"] == int(expl.candidates.ids[k, 0])
    assert len(data["prompt_tokens"]) == len(PROMPT)


def test_npz_contents(tmp_path, expl):
    p = ex.export_npz(expl, tmp_path / "m.npz")
    with np.load(p, allow_pickle=False) as z:
        np.testing.assert_array_equal(z["answer_maps"], expl.answer.maps)
        np.testing.assert_allclose(z["answer_raw"], expl.answer.raw)
        g = expl.grids[0]
        assert z["answer_grid0"].shape == (len(ANSWER), g.t, g.h, g.w)
        np.testing.assert_array_equal(z["answer_grid0"][3], expl.grid_maps(3)[0])
        assert z["answer_texts"].tolist() == ANSWER
        assert z["grid_shapes"].tolist() == [[g.t, g.h, g.w]]
        assert "prompt_maps" in z.files


def test_html_is_self_contained(tmp_path, expl):
    p = ex.export_html(expl, tmp_path / "page.html", image_width=120)
    text = p.read_text(encoding="utf-8")
    assert "http://" not in text and "https://" not in text and "<link" not in text
    payload = json.loads(re.search(r'<script id="tam-data" type="application/json">(.*?)</script>',
                                   text, re.S).group(1))
    assert len(payload["lut"]) == 256
    assert set(payload["maps"]) == {f"a{k}s0" for k in range(len(ANSWER))} | {
        f"p{k}s0" for k in range(len(PROMPT))}
    assert len(payload["frames"]) == 1 and payload["frames"][0].startswith("data:image/")
    uri = payload["maps"]["a1s0"]
    assert uri.startswith("data:image/png;base64,")
    heat = Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))
    assert heat.format == "PNG"
    assert "猫" in text and "😀" in text and "café" in text
    assert payload["rel"]["a"][1][len(PROMPT) + 2] is None
    assert text.count('class="tok"') == len(PROMPT) + len(ANSWER)


def test_html_for_video_embeds_every_frame_and_slot(tmp_path, video_expl):
    text = ex.export_html(video_expl, tmp_path / "v.html", frame=2,
                          image_width=64).read_text(encoding="utf-8")
    payload = json.loads(re.search(r'<script id="tam-data" type="application/json">(.*?)</script>',
                                   text, re.S).group(1))
    m = video_expl.media[0]
    assert len(payload["frames"]) == m.n_frames and payload["frame"] == 2
    assert payload["slots"] == m.frame_slot.tolist() and payload["times"] == [0, 0.5, 1, 1.5]
    slots = sorted(set(m.frame_slot.tolist()))
    assert {f"a3s{s}" for s in slots} <= set(payload["maps"])
    # Frames sharing a slot share one map; different slots have their own.
    assert payload["maps"]["a3s0"] != payload["maps"]["a3s1"]


def test_html_escapes_token_text(tmp_path):
    e = build_explanation(answer=[" <script>", " a&b", "</script>"], seed=2)
    text = ex.export_html(e, tmp_path / "x.html", image_width=64).read_text(encoding="utf-8")
    assert "<script>alert" not in text
    assert "&lt;script&gt;" in text and "a&amp;b" in text
    body = text.split('<script id="tam-data"')[1]
    assert "</script>" not in body.split("</script>", 1)[0]     # payload cannot close the tag


def test_cancelled_html_leaves_no_file(tmp_path, expl):
    with pytest.raises(Cancelled):
        ex.export_html(expl, tmp_path / "p.html", should_stop=lambda: True)
    assert leftovers(tmp_path) == []


# ------------------------------------------------------------------------------ saved + CLI
def test_exports_from_a_saved_explanation_match(tmp_path, expl):
    from tam_engine.core.explanation import Explanation

    loaded = Explanation.load(expl.save(tmp_path / "e.tam.npz"))
    np.testing.assert_array_equal(ex.render_token(loaded, 2), ex.render_token(expl, 2))


@pytest.mark.parametrize("what,name", [("png", "e.png"), ("textmap", "e_textmap.png"),
                                       ("sweep", "e_sweep.mp4"), ("json", "e.json"),
                                       ("npz", "e_maps.npz"), ("html", "e.html"),
                                       ("sheet", "e_sheet.png"), ("sequence", "e_tokens")])
def test_cli_export(tmp_path, expl, what, name):
    src = expl.save(tmp_path / "e.tam.npz")
    assert tam_main(["export", str(src), what, "--token", "2"]) == 0
    assert (tmp_path / name).exists()


def test_cli_export_errors(tmp_path, expl, capsys):
    bad = tmp_path / "bad.tam.npz"
    bad.write_text("nope")
    assert tam_main(["export", str(bad), "png"]) == 1
    assert "bad.tam.npz" in capsys.readouterr().err
    src = expl.save(tmp_path / "e.tam.npz")
    assert tam_main(["export", str(src), "png", "--token", "500"]) == 1
    assert "hint" in capsys.readouterr().err


def test_explain_export_list_is_checked_before_any_model_loads(tmp_path, capsys):
    missing_model = str(tmp_path / "no-such-model")
    assert tam_main(["explain", "--model", missing_model, "--out", str(tmp_path),
                     "--export", "json,gif"]) == 2
    err = capsys.readouterr().err
    assert "unknown export gif" in err and "no-such-model" not in err
    assert leftovers(tmp_path) == []


def test_video_from_source_plays_every_frame(tmp_path, video_expl):
    import dataclasses

    from test_media_io import write_video

    from tam_engine.media.video import load_video

    src = write_video(tmp_path / "src.mp4", n_frames=10, rate=10, size=(80, 48))  # 1 s
    item = load_video(src, fps=2.0)                   # sampled at 0.0 and 0.5 s
    item.frame_slot = np.array([0, 1])
    e = dataclasses.replace(video_expl, media=[item])
    p = ex.export_video_mp4(e, tmp_path / "full.mp4", source=src, caption=False, width=80)
    codec, _, w, h, frames = decode(p)
    assert codec == "h264" and w > 80 and h == 48 and len(frames) == 10
    # Follow the answer over the full-rate clip; frame 7 (0.7 s) shows sampled frame 2's slot.
    k = int(0.7 * len(ANSWER))
    want = overlay_of(e, k, 1, item.frames[1].shape)
    got_map = frames[7][:, :80].astype(int)
    assert np.abs(got_map - want.astype(int)).mean() < 8
    assert tam_main(["export", str(e.save(tmp_path / "e.tam.npz")), "video", "--source",
                     str(src), "--out", str(tmp_path / "cli.mp4")]) == 0
    assert len(decode(tmp_path / "cli.mp4")[4]) == 10


def overlay_of(e, k, f, shape):
    from tam_engine.render.overlay import overlay

    src_frame = np.zeros(shape, np.uint8)
    src_frame[..., 0] = min(255, 10 * 7)              # write_video's frame 7
    return overlay(src_frame, e.frame_map(k, 0, f), "jet", 0.5)


def test_sweep_with_figure_layout_keeps_one_size(tmp_path, expl):
    frames = list(ex.sweep_frames(expl, layout="figure", width=120))
    assert len({f.shape for f in frames}) == 1 and frames[0].shape[0] > 120
    p = ex.export_sweep_mp4(expl, tmp_path / "fig.mp4", layout="figure", width=120)
    _, _, w, h, decoded = decode(p)
    fh, fw = frames[0].shape[:2]
    assert (w, h) == (fw + fw % 2, fh + fh % 2) and len(decoded) == len(ANSWER)
    with pytest.raises(ValueError, match="layout"):
        list(ex.sweep_frames(expl, layout="textmap"))


def test_media_without_maps_is_explained(tmp_path, expl):
    calls = [lambda p: ex.export_token_png(expl, p, 0, "overlay", media_index=2),
             lambda p: ex.export_sweep_mp4(expl, p, media_index=2),
             lambda p: ex.export_contact_sheet(expl, p, media_index=2),
             lambda p: ex.export_html(expl, p, media_index=2)]
    for i, call in enumerate(calls):
        with pytest.raises(ex.ExportError, match="(?i)media 3"):
            call(tmp_path / f"out{i}")
    assert leftovers(tmp_path) == []
