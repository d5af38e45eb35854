"""The app under the unlucky user of issue 14: every failing run ends in a dialog and leaves the
app ready, Run right after Cancel never shares the model with the cancelled run, and a broken
settings file is reset field by field with one message."""

from __future__ import annotations

import json

import pytest
from PySide6.QtCore import QThreadPool

from tam_desktop.main_window import MainWindow
from tam_engine.inference.settings import GenerationSettings

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def qwen_dir(tiny_model_dir):
    return str(tiny_model_dir("qwen2_vl"))


def start_run(window, model, media_path, max_new_tokens=6, device="cpu"):
    window.media_paths = [str(media_path)]
    window.run_panel.model.setCurrentText(model)
    window.settings.generation = GenerationSettings(max_new_tokens=max_new_tokens,
                                                    device=device, max_frames=4)
    window.run()


def _ready(window) -> bool:
    return not window.controller.running and window.run_panel.run_button.isEnabled()


def test_a_runtime_error_in_a_run_reaches_the_user(qtbot, main_window, sample_media,
                                                  error_boxes):
    # superqt's GeneratorWorker swallows a RuntimeError (it takes it for a deleted worker):
    # without the fix the window stays on "Generating ..." for ever, with no dialog.
    def broken_loader(*args, **kwargs):
        raise RuntimeError("the kernel was not compiled for this device")

    main_window.controller.cache._loader = broken_loader
    start_run(main_window, "some/model", sample_media["image"])
    qtbot.waitUntil(lambda: len(error_boxes) == 1, timeout=120_000)
    title, text, hint = error_boxes[0]
    assert "RuntimeError" in text and "not compiled" in text and hint
    assert _ready(main_window)


def test_device_meta_is_refused_with_a_dialog(qtbot, main_window, qwen_dir, sample_media,
                                              error_boxes):
    start_run(main_window, qwen_dir, sample_media["image"], device="meta")
    qtbot.waitUntil(lambda: len(error_boxes) == 1, timeout=60_000)
    title, text, hint = error_boxes[0]
    assert title == "Cannot load the model" and "meta" in text and "cpu" in hint
    assert _ready(main_window)


def test_run_right_after_cancel_never_overlaps_the_cancelled_run(qtbot, main_window, qwen_dir,
                                                                sample_media, error_boxes):
    st = main_window.state
    for round_ in range(4):
        cancelled = []

        def on_streamed(texts, cancelled=cancelled):
            if len(texts) == 1 and not cancelled:
                cancelled.append(True)
                main_window.run_panel.cancel_button.click()
                # At once, while the cancelled run is still winding down on the same model.
                start_run(main_window, qwen_dir, sample_media["image"], max_new_tokens=3)

        st.streamed.connect(on_streamed)
        start_run(main_window, qwen_dir, sample_media["image"], max_new_tokens=200)
        qtbot.waitUntil(lambda c=cancelled: bool(c), timeout=60_000)
        st.streamed.disconnect(on_streamed)
        qtbot.waitUntil(lambda: not main_window.controller.running, timeout=60_000)
        assert not error_boxes, (round_, error_boxes)
        assert st.explanation is not None and st.explanation.n_answer == 3
    assert QThreadPool.globalInstance().waitForDone(30_000)
    assert _ready(main_window)


def test_broken_settings_are_reset_field_by_field_and_said_once(qtbot, no_gui_leaks,
                                                                gui_settings_path,
                                                                error_boxes):
    gui_settings_path.parent.mkdir(parents=True, exist_ok=True)
    gui_settings_path.write_text(json.dumps({
        "colormap": "no-such-map", "combine": "median", "opacity": float("nan"),
        "layer": "sideways", "prompt": "Kept prompt", "scale": "token",
        "generation": {"max_new_tokens": 1e12, "video_fps": 1e9, "max_frames": 30,
                       "dtype": "int3"},
    }))
    window = MainWindow(settings_path=gui_settings_path)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: len(error_boxes) == 1, timeout=10_000)
    title, text, details = error_boxes[0]
    assert "reset" in title
    for name in ("colormap", "combine", "opacity", "layer", "max_new_tokens", "video_fps",
                 "dtype"):
        assert name in details
    d = window.state.display
    assert (d.colormap, d.combine, d.opacity, d.layer) == ("jet", "mean", 0.5, "fused")
    gen = window.settings.generation
    assert (gen.max_new_tokens, gen.video_fps, gen.max_frames, gen.dtype) == (64, 2.0, 30,
                                                                               "auto")
    assert window.settings.prompt == "Kept prompt" and window.settings.scale == "token"
    window.close()  # saves the repaired settings: the next start says nothing
    again = MainWindow(settings_path=gui_settings_path)
    qtbot.addWidget(again)
    again.show()
    qtbot.wait(100)
    assert len(error_boxes) == 1 and not again.settings.problems
    again.close()
