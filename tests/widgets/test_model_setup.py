"""Model > Model Setup: the plan beside the machine, the chosen placement, and a download from
a local Hub server with the progress shown and a cancel."""

from __future__ import annotations

from pathlib import Path

import pytest

from tam_engine.core.errors import Cancelled
from tam_engine.inference import hub as hub_module
from tam_engine.inference.model_placement import ModelPlacement
from tam_engine.testing.hub_server import SHA, FakeHub

REPO = "tam-test/tiny-qwen"
CONFIGS = Path(__file__).parents[1] / "engine" / "fixtures" / "big_configs"


def _fake_plan(model, dtype):
    return (["Needs: 1.0B parameters", "CPU memory: 8.0 GiB available"],
            [("Proposed: split over 2 GPUs", ModelPlacement("auto", {0: "20GiB", 1: "20GiB"}),
              "exact weights; pooled memory."),
             ("One device (the whole model)", ModelPlacement(), "fastest."),
             ("Split automatically, with disk offload",
              ModelPlacement("auto", offload_folder="/tmp/off"), "very slow.")])


def _wait_plan(qtbot, dlg, timeout=60_000):
    qtbot.waitUntil(lambda: dlg.placement_box.isEnabled(), timeout=timeout)


def test_the_dialog_shows_the_plan_and_returns_the_chosen_placement(qtbot, no_gui_leaks):
    from tam_desktop.model_setup import ModelSetupDialog

    dlg = ModelSetupDialog("org/model", plan=_fake_plan)
    qtbot.addWidget(dlg)
    _wait_plan(qtbot, dlg)
    assert "1.0B parameters" in dlg.plan_label.text() and "CPU memory" in dlg.plan_label.text()
    assert dlg.placement_box.currentText() == "Proposed: split over 2 GPUs"
    assert dlg.trade_off.text() == "exact weights; pooled memory."
    assert dlg.placement() == ModelPlacement("auto", {0: "20GiB", 1: "20GiB"})
    dlg.placement_box.setCurrentIndex(2)
    assert dlg.offload_edit.text() == "/tmp/off" and dlg.trade_off.text() == "very slow."
    dlg.offload_edit.setText("/data/offload")
    assert dlg.placement() == ModelPlacement("auto", offload_folder="/data/offload")


def test_the_real_plan_of_a_7b_config(qtbot, no_gui_leaks):
    from tam_desktop.model_setup import ModelSetupDialog

    dlg = ModelSetupDialog(str(CONFIGS / "qwen2.5-vl-7b"), dtype="bfloat16")
    qtbot.addWidget(dlg)
    # Generous: the worker imports transformers and builds 8B parameters on the meta device,
    # a few seconds alone but minutes on a shared, loaded machine.
    _wait_plan(qtbot, dlg, timeout=400_000)
    text = dlg.plan_label.text()
    assert "8.3B parameters: 15.4 GiB of weights in bfloat16" in text
    assert "CPU memory" in text and "Free disk" in text
    assert dlg.placement_box.currentText().startswith("Proposed: ")
    assert dlg.trade_off.text()


def test_a_previous_choice_stays_chosen(qtbot, no_gui_leaks):
    from tam_desktop.model_setup import ModelSetupDialog

    dlg = ModelSetupDialog("org/model", ModelPlacement(), plan=_fake_plan)
    qtbot.addWidget(dlg)
    _wait_plan(qtbot, dlg)
    assert dlg.placement_box.currentIndex() == 1 and dlg.placement() == ModelPlacement()


@pytest.fixture
def local_hub(tiny_model_dir, monkeypatch, tmp_path):
    import huggingface_hub.constants as hf_constants

    with FakeHub({REPO: tiny_model_dir("qwen2_vl")}) as server:
        for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
            monkeypatch.setenv(var, "0")
        monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
        monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(tmp_path / "cache"))
        monkeypatch.setenv("HF_ENDPOINT", server.endpoint)
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        monkeypatch.delenv("HF_TOKEN", raising=False)
        monkeypatch.setenv("HF_HUB_DISABLE_IMPLICIT_TOKEN", "1")
        monkeypatch.setattr(hub_module, "_CHUNK", 16 * 1024)
        server.snapshot = (tmp_path / "cache" / "models--tam-test--tiny-qwen"  # type: ignore
                           / "snapshots" / SHA)
        yield server


def test_download_with_progress_cancel_and_resume(qtbot, no_gui_leaks, local_hub):
    from tam_desktop.model_setup import ModelSetupDialog

    local_hub.chunk_delay = 0.01
    dlg = ModelSetupDialog(REPO, plan=_fake_plan)
    qtbot.addWidget(dlg)
    _wait_plan(qtbot, dlg)
    dlg.show()
    dlg.download_button.click()
    assert dlg.downloading and not dlg.download_button.isEnabled()
    # Progress arrives: bytes, files, speed in the status and a moving bar.
    qtbot.waitUntil(lambda: 0 < dlg.progress.value() < 1000
                    and "model.safetensors: " in dlg.download_status.text()
                    and "files" in dlg.download_status.text(), timeout=30_000)
    with qtbot.waitSignal(dlg.download_stopped, timeout=30_000) as stopped:
        dlg.cancel_download_button.click()
    assert isinstance(stopped.args[0], Cancelled)
    assert "cancelled" in dlg.download_status.text()
    qtbot.waitUntil(lambda: not dlg.downloading, timeout=10_000)
    assert dlg.download_button.isEnabled() and not dlg.cancel_download_button.isEnabled()
    assert not (local_hub.snapshot / "model.safetensors").exists()  # nothing half-written
    # Download again: it resumes and completes.
    local_hub.chunk_delay = 0.0
    with qtbot.waitSignal(dlg.download_done, timeout=60_000) as done:
        dlg.download_button.click()
    assert done.args[0] == str(local_hub.snapshot)
    assert dlg.progress.value() == 1000 and "Downloaded" in dlg.download_status.text()
    for name, path in local_hub.files(REPO).items():
        assert (local_hub.snapshot / name).read_bytes() == path.read_bytes()
    ranged = [r for r in local_hub.requests
              if r[0] == "GET" and r[1].endswith("model.safetensors") and r[2]]
    assert ranged  # the second download asked only for the rest
    qtbot.waitUntil(lambda: not dlg.downloading, timeout=10_000)
    dlg.close()


def test_main_window_keeps_the_chosen_placement(qtbot, main_window, monkeypatch):
    import tam_desktop.model_setup as setup

    monkeypatch.setattr(setup, "compute_plan", _fake_plan)
    main_window.run_panel.model.setCurrentText("org/model")
    menus = [a.menu() for a in main_window.menuBar().actions() if a.menu() is not None]
    assert any(main_window.act_model_setup in m.actions() for m in menus)
    dlg = main_window.open_model_setup()
    _wait_plan(qtbot, dlg)
    dlg.accept()
    qtbot.waitUntil(lambda: "org/model" in main_window.placements, timeout=5_000)
    assert main_window.placements["org/model"] == dlg.placement()


def test_nothing_is_proposed_when_nothing_fits(monkeypatch):
    import tam_engine.inference.plan as plan
    from tam_desktop.model_setup import compute_plan

    monkeypatch.setattr(plan, "this_machine",
                        lambda offload_folder=None: plan.Machine((), 8 * plan.GiB, 10 * plan.GiB))
    lines, choices = compute_plan(str(CONFIGS / "qwen2.5-vl-72b"), "bfloat16")
    assert "does not fit" in lines[-1]
    assert not any(label.startswith("Proposed") for label, _p, _t in choices)
    monkeypatch.setattr(plan, "this_machine",
                        lambda offload_folder=None: plan.Machine((80 * plan.GiB,), 64 * plan.GiB,
                                                                 500 * plan.GiB))
    lines, choices = compute_plan(str(CONFIGS / "qwen2.5-vl-72b"), "bfloat16")
    assert choices[0][0] == "Proposed: 4-bit on one GPU"
    assert choices[0][1] == ModelPlacement(quantization="4bit")
