"""``tam-desktop --self-test`` run in-process on a tiny model: it passes, and it fails loudly."""

from __future__ import annotations

import io
import json
from pathlib import Path

from tam_desktop.self_test import STEPS, run
from tam_engine.core.resources import icon_path


def _tiny_video(path: Path) -> Path:
    import av
    import numpy as np

    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=4)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(8):
            rgb = np.full((48, 64, 3), 30 * i, np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def test_self_test_passes_every_step_on_a_tiny_model(tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("TAM_DESKTOP_CONFIG_DIR", str(tmp_path / "config"))
    out = io.StringIO()
    status = run(model_path=tiny_model_dir("qwen2_vl"), image_path=icon_path(128), out=out,
                 video_path=_tiny_video(tmp_path / "clip.mp4"))
    report = out.getvalue()
    assert status == 0, report
    lines = [line for line in report.splitlines() if line.startswith("[")]
    assert [line.split("]")[0] for line in lines] == ["[ ok "] * len(STEPS), report
    assert "self-test passed" in report
    assert "painted on 'offscreen'" in report
    # The self-test never writes the user's settings.
    assert not (tmp_path / "config").exists() or not any((tmp_path / "config").iterdir())


def test_self_test_reports_a_broken_model_with_its_hint(tmp_path, monkeypatch):
    broken = tmp_path / "broken_model"
    broken.mkdir()
    (broken / "config.json").write_text(json.dumps({"model_type": "no-such-model"}))
    monkeypatch.setenv("TAM_SELF_TEST_MODEL", str(broken))  # the model can come from the env
    out = io.StringIO()
    status = run(image_path=icon_path(64), out=out)
    report = out.getvalue()
    assert status == 1
    assert "[FAIL] load model" in report
    assert "self-test FAILED at 'load model'" in report
    assert "[ ok ] bundled resources" in report
    assert "load image" not in report  # it stops at the first failure


def test_self_test_output_is_clean(tiny_model_dir, tmp_path):
    """A fresh process, as users run it: the report and nothing else (no Qt platform notice,
    no transformers progress bars)."""
    import os
    import subprocess
    import sys

    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", TAM_DESKTOP_CONFIG_DIR=str(tmp_path),
               TAM_SELF_TEST_MODEL=str(tiny_model_dir("qwen2_vl")))
    out = subprocess.run([sys.executable, "-m", "tam_desktop", "--self-test"], env=env,
                         capture_output=True, text=True, timeout=600, check=False)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "self-test passed" in out.stdout
    assert out.stderr == "", out.stderr
