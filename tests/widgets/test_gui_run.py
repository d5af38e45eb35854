"""Runs through the worker with a real tiny model: streaming, cancel, errors, stale results."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QThreadPool

from tam_desktop.controller import RunController
from tam_desktop.models import PlaybackState
from tam_desktop.worker import ModelCache, RunRequest
from tam_engine.inference.settings import GenerationSettings

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def qwen_dir(tiny_model_dir):
    return str(tiny_model_dir("qwen2_vl"))


def start_run(window, model, media_path, max_new_tokens=6):
    window.media_paths = [str(media_path)]
    window.run_panel.model.setCurrentText(model)
    window.settings.generation = GenerationSettings(max_new_tokens=max_new_tokens, device="cpu",
                                                 max_frames=4)
    window.run()


@pytest.mark.parametrize("kind", ["image", "video"])
def test_run_tiny_model_end_to_end(qtbot, main_window, qwen_dir, sample_media, kind,
                                   error_boxes):
    streamed, progress, looks = [], [], []
    strip = main_window.pane.answer_strip
    main_window.state.streamed.connect(lambda texts: streamed.append(len(texts)))
    main_window.state.streamed.connect(lambda texts: looks.append(strip.looks))
    main_window.run_panel.progress.valueChanged.connect(progress.append)
    main_window.warm_up_engine()  # as at start-up: the run waits for it, never races it
    start_run(main_window, qwen_dir, sample_media[kind])
    assert main_window.controller.running and not main_window.run_panel.run_button.isEnabled()
    qtbot.waitUntil(lambda: not main_window.controller.running, timeout=60_000)
    assert not error_boxes
    ex = main_window.state.explanation
    assert ex is not None and ex.n_answer == 6
    assert streamed == list(range(1, 7))  # tokens appeared one by one while generating
    assert max(progress) == 6
    assert looks[2] == ["streaming"] * 3  # greyed, not clickable until the maps exist
    # It opens on the token with the strongest visual evidence.
    first = ex.strongest_token()
    assert main_window.state.token == first
    assert main_window.pane.answer_strip.looks[first] == "current"
    assert main_window.pane.answer_strip.count == 6
    heat = main_window.pane.media_view.heat_image()
    frame = ex.media[0].frames[0]
    assert heat is not None and heat.shape == frame.shape[:2]
    if kind == "video":
        assert ex.media[0].n_frames > 1 and main_window.pane.frame_controls.isVisible()
    assert main_window.run_panel.run_button.isEnabled()
    assert main_window.settings.recent_models[0] == qwen_dir
    # The status gives the steps' times apart, model loading included.
    t = ex.meta["timings"]
    assert set(t) == {"load_s", "prepare_s", "generate_s", "explain_s"}
    status = main_window.status_label.text()
    assert status.startswith("Done:") and " generate " in status and " explain " in status
    assert ("load " in status) if t["load_s"] > 0 else ("model already loaded" in status)
    # The model stays loaded for the next run.
    phases = []
    main_window.run_panel.phase.setText("")
    main_window.controller.view = _Spy(main_window, phases)
    start_run(main_window, qwen_dir, sample_media[kind], max_new_tokens=2)
    qtbot.waitUntil(lambda: not main_window.controller.running, timeout=60_000)
    assert phases[0] == "Using the loaded model"


class _Spy:
    """Passes the controller's calls on to the window and records the phases."""

    def __init__(self, window, phases):
        self._window, self._phases = window, phases

    def run_phase(self, text):
        self._phases.append(text)
        self._window.run_phase(text)

    def __getattr__(self, name):
        return getattr(self._window, name)


def test_cancel_mid_run_leaves_the_app_ready(qtbot, main_window, qwen_dir, sample_media,
                                             error_boxes):
    st = main_window.state
    seen = []

    def on_streamed(texts):
        seen.append(len(texts))
        if len(texts) == 2:
            main_window.run_panel.cancel_button.click()

    st.streamed.connect(on_streamed)
    start_run(main_window, qwen_dir, sample_media["image"], max_new_tokens=400)
    qtbot.waitUntil(lambda: not main_window.controller.running, timeout=60_000)
    assert seen and seen[-1] == 2  # nothing of the cancelled run arrives after Cancel
    assert st.explanation is None and main_window.run_panel.run_button.isEnabled()
    assert "Cancelled" in main_window.status_label.text()
    assert QThreadPool.globalInstance().waitForDone(30_000)
    qtbot.wait(50)
    assert seen[-1] == 2 and st.explanation is None
    st.streamed.disconnect(on_streamed)
    start_run(main_window, qwen_dir, sample_media["image"], max_new_tokens=3)
    qtbot.waitUntil(lambda: st.explanation is not None, timeout=60_000)
    assert st.explanation.n_answer == 3 and not error_boxes


def test_cancel_while_the_model_loads(qtbot, main_window, tiny_model_dir, sample_media,
                                      error_boxes, tmp_path):
    import shutil

    fresh = tmp_path / "copy_of_model"  # not in the window's cache: it must load
    shutil.copytree(tiny_model_dir("qwen2_vl"), fresh)
    start_run(main_window, str(fresh), sample_media["image"])
    main_window.cancel_run()
    assert not main_window.controller.running and main_window.run_panel.run_button.isEnabled()
    assert QThreadPool.globalInstance().waitForDone(60_000)
    qtbot.wait(50)
    assert main_window.state.explanation is None and not error_boxes


def test_bad_model_folder_shows_what_to_do(qtbot, main_window, sample_media, tmp_path,
                                           error_boxes):
    bad = tmp_path / "not_a_model"
    bad.mkdir()
    (bad / "config.json").write_text('{"model_type": "bert"}')
    start_run(main_window, str(bad), sample_media["image"])
    qtbot.waitUntil(lambda: len(error_boxes) == 1, timeout=60_000)
    title, text, hint = error_boxes[0]
    assert title == "Cannot load the model" and text and hint
    assert not main_window.controller.running and main_window.run_panel.run_button.isEnabled()
    empty = tmp_path / "empty"
    empty.mkdir()
    start_run(main_window, str(empty), sample_media["image"])
    qtbot.waitUntil(lambda: len(error_boxes) == 2, timeout=60_000)
    assert error_boxes[1][0] == "Cannot load the model" and error_boxes[1][2]


class RecordingView:
    def __init__(self):
        self.calls = []

    def __getattr__(self, name):
        return lambda *args: self.calls.append((name, *args))


def test_controller_drops_results_of_a_cancelled_run(qtbot, no_gui_leaks, qwen_dir,
                                                     sample_media):
    state, view = PlaybackState(), RecordingView()
    ctl = RunController(state, view, ModelCache())
    gen = GenerationSettings(max_new_tokens=4, device="cpu")
    first = RunRequest(qwen_dir, (str(sample_media["image"]),), "Describe this image.", gen)
    ctl.start(first)
    with pytest.raises(RuntimeError):
        ctl.start(first)
    ctl.cancel()
    second = RunRequest(qwen_dir, (str(sample_media["video"]),), "What happens?", gen)
    ctl.start(second)
    qtbot.waitUntil(lambda: not ctl.running, timeout=60_000)
    assert QThreadPool.globalInstance().waitForDone(60_000)
    qtbot.wait(50)
    names = [c[0] for c in view.calls]
    assert names.count("run_finished") == 1 and names.count("run_cancelled") == 1
    assert "run_failed" not in names
    done = next(c[1] for c in view.calls if c[0] == "run_finished")
    assert state.explanation is done and done.media[0].kind == "video"
    assert np.array_equal(state.current_map(), done.frame_map(0, 0, 0))


def test_media_are_decoded_once_for_opening_and_every_run(qtbot, main_window, qwen_dir,
                                                          sample_media, monkeypatch,
                                                          error_boxes):
    import tam_engine.media.io as media_io

    calls = []
    real = media_io.load_media
    monkeypatch.setattr(media_io, "load_media",
                        lambda paths, **kw: calls.append(list(paths)) or real(paths, **kw))
    main_window.settings.generation = GenerationSettings(max_new_tokens=3, device="cpu",
                                                      max_frames=4)
    video = str(sample_media["video"])
    main_window.open_paths([video])
    qtbot.waitUntil(lambda: main_window.media_paths == [video], timeout=20_000)
    main_window.run_panel.model.setCurrentText(qwen_dir)
    main_window.run()
    qtbot.waitUntil(lambda: not main_window.controller.running, timeout=60_000)
    assert main_window.state.explanation is not None and calls == [[video]]
    # Compare mode on the same media: neither model A nor model B reads them again.
    main_window.act_compare.trigger()
    w = main_window.compare_window
    w.run_bar.model_b.setCurrentText(qwen_dir)
    w.run()
    qtbot.waitUntil(lambda: not w.controller.running, timeout=120_000)
    assert w.states["a"].explanation is not None and w.states["b"].explanation is not None
    assert calls == [[video]] and not error_boxes
    w.close()
