"""File > Export in the main window: every export runs off the UI thread and writes real files."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image
from PySide6.QtWidgets import QPushButton

from tam_engine.core.explanation import Explanation
from tam_engine.testing.synthetic import synthetic_explanation

IMAGE_KEYS = ["token_png", "textmap_png", "sequence", "contact_sheet", "sweep_mp4", "html",
              "json", "npz"]
VIDEO_KEYS = ["token_png", "follow_mp4", "token_mp4"]


def _answer_with(window, folder, asked):
    """Replace the save dialog: answer ``folder / <suggested name>`` and record the ask."""
    def ask(key, suggested):
        asked.append((key, suggested))
        return str(folder / suggested.name)
    window.export._ask_save_path = ask


def _export(qtbot, window, key):
    with qtbot.waitSignal(window.export.exported, timeout=60_000) as sig:
        window.export.actions[key].trigger()
    assert window.status_label.text() == f"Exported {sig.args[0]}"
    return sig.args[0]


def _mp4(path):
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(s)]
        return s.codec_context.name, frames


def test_export_menu_is_enabled_only_with_an_explanation(main_window):
    w = main_window
    file_menu = w.menuBar().actions()[0].menu()
    assert w.export.menu.menuAction() in file_menu.actions()
    assert not w.export.menu.menuAction().isEnabled()
    w.show_explanation(synthetic_explanation("image"))
    assert w.export.menu.menuAction().isEnabled()
    visible = [a.text().replace("&", "") for a in w.export.menu.actions()
               if a.isVisible() and not a.isSeparator()]
    assert "Token Sweep MP4…" in visible and not any("Video MP4" in t for t in visible)
    w.show_explanation(synthetic_explanation("video"))
    visible = [a.text().replace("&", "") for a in w.export.menu.actions()
               if a.isVisible() and not a.isSeparator()]
    assert "Video MP4 (follow the answer)…" in visible and "Token Sweep MP4…" not in visible


def test_every_export_of_an_image_explanation(qtbot, main_window, tmp_path, error_boxes):
    w = main_window
    expl = synthetic_explanation("image", n_answer=4)
    w.show_explanation(expl)
    w.state.set_token(2)
    w.state.display.colormap = "viridis"
    asked: list = []
    _answer_with(w, tmp_path, asked)
    out = {key: _export(qtbot, w, key) for key in IMAGE_KEYS}
    assert not error_boxes
    # Suggested names carry the right extension (the sequence is a folder).
    for key, suggested in asked:
        ext = {"sequence": "", "sweep_mp4": ".mp4", "html": ".html", "json": ".json",
               "npz": ".npz"}.get(key, ".png")
        assert suggested.suffix == ext, (key, suggested)
    assert asked[0][1].name == "synthetic_token3.png"   # the current token

    fig = Image.open(out["token_png"])
    assert fig.format == "PNG" and fig.width >= 400 and fig.height > 100
    from tam_engine.export import render_token, sweep_frames

    want = render_token(expl, 2, "figure", cmap="viridis", opacity=w.state.display.opacity)
    assert np.array_equal(np.asarray(fig.convert("RGB")), want)
    text = Image.open(out["textmap_png"])
    assert text.format == "PNG" and text.width > 0
    pngs = sorted(p.name for p in tmp_path.joinpath(out["sequence"]).iterdir())
    assert pngs == [f"token_{i:04d}.png" for i in range(1, 5)]
    assert Image.open(out["contact_sheet"]).width > 100
    codec, frames = _mp4(out["sweep_mp4"])
    assert codec == "h264" and len(frames) == 4                      # one frame per token
    # 720 wide (MIN_VIDEO_WIDTH) from a 64-pixel image, with the colour bar and caption
    want = next(sweep_frames(expl, cmap="viridis", opacity=w.state.display.opacity))
    assert frames[0].shape[:2] == (want.shape[0] + want.shape[0] % 2,
                                   want.shape[1] + want.shape[1] % 2)
    assert want.shape[1] > 720
    assert "<html" in open(out["html"], encoding="utf-8").read().lower()
    data = json.loads(open(out["json"], encoding="utf-8").read())
    assert len(data["answer_tokens"]) == 4
    with np.load(out["npz"], allow_pickle=False) as npz:
        assert npz["answer_grid0"].shape == (4, 1, 6, 8)


def test_video_exports_follow_the_answer_or_one_token(qtbot, main_window, tmp_path,
                                                      error_boxes):
    w = main_window
    w.show_explanation(synthetic_explanation("video", n_frames=6, n_answer=3))
    w.state.set_token(1)
    w.state.cursor.set_frame(3)
    _answer_with(w, tmp_path, [])
    out = {key: _export(qtbot, w, key) for key in VIDEO_KEYS}
    assert not error_boxes
    assert Image.open(out["token_png"]).format == "PNG"
    # 6 sampled frames at 2 fps, each held 5 output frames at 10 fps.
    for key in ("follow_mp4", "token_mp4"):
        codec, frames = _mp4(out[key])
        assert codec == "h264" and len(frames) == 30, key
    _, follow = _mp4(out["follow_mp4"])
    _, token = _mp4(out["token_mp4"])
    # Following the answer shows token 1 (of 3) in the middle third only.
    assert np.abs(follow[15].astype(int) - token[15].astype(int)).mean() < 3
    assert np.abs(follow[0].astype(int) - token[0].astype(int)).mean() > 3


def test_cancelling_an_mp4_export_leaves_no_file(qtbot, main_window, tmp_path, monkeypatch):
    from tam_engine.render.mp4 import H264Writer

    w = main_window
    w.show_explanation(synthetic_explanation("video"))
    gate = threading.Event()
    write = H264Writer.write

    def held_write(self, img):
        gate.wait(20)  # hold the worker until Cancel has been pressed
        return write(self, img)

    monkeypatch.setattr(H264Writer, "write", held_write)
    _answer_with(w, tmp_path, [])
    w.export.actions["follow_mp4"].trigger()
    assert w.export.runner.busy and w.export.runner.dialog is not None
    with qtbot.waitSignal(w.export.runner.cancelled, timeout=30_000):
        w.export.runner.dialog.findChild(QPushButton).click()   # the progress dialog's Cancel
        gate.set()
    assert list(tmp_path.iterdir()) == []
    assert not w.export.runner.busy and "cancelled" in w.status_label.text()


@pytest.mark.parametrize("key", ["token_png", "sweep_mp4", "json"])
def test_an_unwritable_path_shows_an_error(qtbot, main_window, tmp_path, error_boxes, key):
    w = main_window
    w.show_explanation(synthetic_explanation("image", n_answer=3))
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    w.export._ask_save_path = lambda k, s: str(blocker / s.name)
    with qtbot.waitSignal(w.export.runner.failed, timeout=30_000):
        w.export.actions[key].trigger()
    title, text, hint = error_boxes[-1]
    assert title == "Cannot export" and "a-file" in text and "folder you can write" in hint
    assert w.status_label.text() == "The export failed."


def test_giving_up_in_the_dialog_writes_nothing(main_window, tmp_path):
    w = main_window
    w.show_explanation(synthetic_explanation("image"))
    w.export._ask_save_path = lambda k, s: ""
    w.export.actions["html"].trigger()
    assert not w.export.runner.busy and list(tmp_path.iterdir()) == []


def test_exports_are_named_after_the_file_and_go_to_the_last_export_folder(main_window,
                                                                           tmp_path):
    from PySide6.QtCore import QStandardPaths

    w = main_window
    expl: Explanation = synthetic_explanation("image")
    w.current_file = str(tmp_path / "cat.tam.npz")
    w.settings.last_dir = str(tmp_path)      # where Open was: not where exports go
    w.show_explanation(expl)
    # Nothing exported yet: the user's Pictures (Documents for data), never the Open folder.
    pictures = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.PicturesLocation)
    first = w.export.suggested_path("contact_sheet")
    assert first.name == "cat_sheet.png" and first.parent != tmp_path
    assert first.parent in (Path(pictures), Path.home())
    # Exporting somewhere makes that folder the next suggestion; the Open folder stays.
    exports = tmp_path / "exports"
    exports.mkdir()
    w.export._ask_save_path = lambda k, s: str(exports / "sheet.png")
    w.export.runner.start = lambda *a, **k: None   # the folder is what this test is about
    w.export.export("contact_sheet")
    assert w.settings.last_save_dir == str(exports) and w.settings.last_dir == str(tmp_path)
    assert w.export.suggested_path("sequence") == exports / "cat_tokens"
    assert w.export.suggested_path("json") == exports / "cat.json"
