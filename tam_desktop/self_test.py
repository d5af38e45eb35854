"""``tam-desktop --self-test``: prove that an installation works, end to end, without a display.

It loads the bundled demo model through the same code path as a real model, explains the
bundled sample image, checks the explanation, renders and writes a PNG with the Qt-free
renderer, saves and reopens the explanation, and builds the main window offscreen with it.
It prints one line per step and returns 0 only when every step passed, so installers, the
wheel test and the PyInstaller bundle can all use it as their smoke test.
"""

from __future__ import annotations

import os
import platform
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

MODEL_ENV = "TAM_SELF_TEST_MODEL"
SELF_TEST_PROMPT = "Describe this image in one sentence."
#: Few tokens are enough to exercise every part of the pipeline and keep the test quick on a CPU.
SELF_TEST_MAX_NEW_TOKENS = 12


@dataclass
class StepResult:
    name: str
    ok: bool
    detail: str
    seconds: float


@dataclass
class SelfTestState:
    """What one step hands to the next."""

    model_path: Path | None = None
    image_path: Path | None = None
    video_path: Path | None = None
    loaded: Any = None
    media: Any = None
    explanation: Any = None
    workdir: Path | None = None
    results: list[StepResult] = field(default_factory=list)


class SelfTestFailure(Exception):
    """A check did not hold; the message says which and what was seen."""


def _need_offscreen() -> bool:
    if os.environ.get("QT_QPA_PLATFORM"):
        return False
    if sys.platform.startswith("linux"):
        return not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return False


# --------------------------------------------------------------------------------- the steps
def _step_resources(state: SelfTestState) -> str:
    from tam_engine.core.resources import resources_dir, sample_image_path

    if state.model_path is None:
        from tam_engine.core.resources import demo_model_path

        state.model_path = demo_model_path()
    if state.image_path is None:
        state.image_path = sample_image_path()
    return f"resources in {resources_dir()}"


def _step_load_model(state: SelfTestState) -> str:
    from tam_engine.inference.loading import load_model

    try:  # the report is the output here, not transformers' progress bars
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    except Exception:
        pass
    state.loaded = load_model(str(state.model_path))
    lm = state.loaded
    return f"{lm.adapter.family} from {state.model_path} on {lm.device} ({lm.dtype})"


def _step_load_image(state: SelfTestState) -> str:
    from tam_engine.media.images import load_image

    assert state.image_path is not None
    state.media = load_image(state.image_path)
    n, h, w, _ = state.media.frames.shape
    return f"{state.image_path.name}: {w}x{h}"


def _step_decode_video(state: SelfTestState) -> str:
    from tam_engine.core.resources import sample_video_path
    from tam_engine.media.video import load_video

    # Decoding only (explaining a clip takes longer): proves the video stack (PyAV) is complete.
    path = state.video_path or sample_video_path()
    video = load_video(path, fps=2.0, max_frames=4)
    n, h, w, _ = video.frames.shape
    if n == 0:
        raise SelfTestFailure(f"no frame decoded from {path.name}")
    return f"{path.name}: {n} frames of {w}x{h} at {video.fps:g} fps"


def _step_explain(state: SelfTestState) -> str:
    from tam_engine.inference.pipeline import run_and_explain
    from tam_engine.inference.settings import GenerationSettings

    settings = GenerationSettings(max_new_tokens=SELF_TEST_MAX_NEW_TOKENS)
    state.explanation = run_and_explain(state.loaded, [state.media], SELF_TEST_PROMPT, settings)
    expl = state.explanation
    return f"{expl.n_answer} tokens: {expl.answer_text.strip()[:60]!r}"


def _step_check(state: SelfTestState) -> str:
    import numpy as np

    from tam_engine.core.tokens import token_label

    expl = state.explanation
    if expl.n_answer == 0 or not expl.answer_text.strip():
        raise SelfTestFailure(f"the answer is empty (tokens: {expl.answer_texts!r})")
    if not expl.grids:
        raise SelfTestFailure("the explanation has no vision grid")
    n_vision = sum(g.size for g in expl.grids)
    tm = expl.answer
    for name in ("raw", "eci", "filtered", "maps"):
        arr = np.asarray(getattr(tm, name))
        if arr.shape != (expl.n_answer, n_vision):
            raise SelfTestFailure(
                f"answer {name} maps have shape {arr.shape}, expected {(expl.n_answer, n_vision)}"
            )
        if not np.all(np.isfinite(arr)):
            raise SelfTestFailure(f"answer {name} maps contain NaN or infinity")
    for k in range(expl.n_answer):
        for grid, maps in zip(expl.grids, expl.grid_maps(k)):
            if maps.shape != (grid.t, grid.h, grid.w):
                raise SelfTestFailure(
                    f"{token_label(k)}: map shape {maps.shape} != grid {(grid.t, grid.h, grid.w)}"
                )
    if int(np.asarray(tm.maps).max()) == 0:
        raise SelfTestFailure("every token's map is all zero")
    g = expl.grids[0]
    return f"maps finite, grid {g.t}x{g.h}x{g.w}, peak {int(np.asarray(tm.maps).max())}/255"


def _best_token(expl: Any) -> int:
    import numpy as np

    return int(np.argmax(np.asarray(expl.answer.maps).max(axis=1)))


def _step_export(state: SelfTestState) -> str:
    import numpy as np
    from PIL import Image

    from tam_engine.core.tokens import token_label
    from tam_engine.render.figure import paper_figure
    from tam_engine.render.overlay import overlay

    expl = state.explanation
    assert state.workdir is not None
    k = _best_token(expl)
    frame = state.media.frames[0]
    rgb = overlay(frame, expl.frame_map(k), cmap="jet", opacity=0.5)
    if rgb.shape != frame.shape or rgb.dtype != np.uint8:
        raise SelfTestFailure(f"overlay gave {rgb.shape} {rgb.dtype}, expected {frame.shape} uint8")
    if np.array_equal(rgb, frame):
        raise SelfTestFailure("the overlay left the image unchanged")
    # The paper figure also draws the token text with the bundled fonts.
    figure = paper_figure(expl, k)
    target = state.workdir / "self_test_figure.png"
    Image.fromarray(figure).save(target)
    with Image.open(target) as back:
        if back.size != (figure.shape[1], figure.shape[0]):
            raise SelfTestFailure(f"the PNG written is {back.size}, not the figure's size")
    saved = expl.save(state.workdir / "self_test.tam.npz")
    reopened = type(expl).load(saved)
    if reopened.n_answer != expl.n_answer or not np.array_equal(
        reopened.answer.maps, expl.answer.maps
    ):
        raise SelfTestFailure("the saved explanation does not reopen to the same maps")
    h, w = figure.shape[:2]
    return f"{token_label(k)} {expl.answer_texts[k]!r}: overlay, {w}x{h} figure PNG, .tam.npz round trip"


#: Qt's offscreen platform says this for every window it shows; it is not a problem of the app
#: and would be the only noise in the report.
_OFFSCREEN_NOTICE = "This plugin does not support propagateSizeHints()"


def _report_qt_message(_mode: Any, _context: Any, message: str) -> None:
    if message.strip() != _OFFSCREEN_NOTICE:
        print(message, file=sys.stderr)


def _step_window(state: SelfTestState) -> str:
    from PySide6.QtCore import qInstallMessageHandler
    from PySide6.QtWidgets import QApplication

    from tam_desktop.main_window import MainWindow
    from tam_desktop.settings import AppSettings

    app = QApplication.instance() or QApplication(sys.argv[:1])
    previous = qInstallMessageHandler(_report_qt_message)
    # Default settings, never saved: the self-test must not touch the user's configuration.
    window = MainWindow(AppSettings(), save_on_close=False)
    try:
        window.show_explanation(state.explanation)
        window.show()
        app.processEvents()
        if window.state.explanation is not state.explanation:
            raise SelfTestFailure("the main window did not take the explanation")
        shot = window.grab()  # paints every widget, the heat-map views included
        if shot.isNull() or shot.width() == 0:
            raise SelfTestFailure("the main window could not be painted")
        platform_name = QApplication.platformName()
        return f"main window {shot.width()}x{shot.height()} painted on '{platform_name}'"
    finally:
        window.close()
        window.deleteLater()
        app.processEvents()
        qInstallMessageHandler(previous)


STEPS: tuple[tuple[str, Callable[[SelfTestState], str]], ...] = (
    ("bundled resources", _step_resources),
    ("load model", _step_load_model),
    ("load image", _step_load_image),
    ("decode video", _step_decode_video),
    ("explain", _step_explain),
    ("check explanation", _step_check),
    ("render + export", _step_export),
    ("main window", _step_window),
)


def _environment_line() -> str:
    from tam_desktop import __version__

    parts = [f"tam-desktop {__version__}", f"Python {platform.python_version()}"]
    try:
        import torch

        cuda = "CUDA available" if torch.cuda.is_available() else "no CUDA device"
        parts.append(f"torch {torch.__version__} ({cuda})")
    except Exception as exc:  # the load step reports it properly; keep the header short
        parts.append(f"torch not importable: {exc}")
    if getattr(sys, "frozen", False):
        parts.append("bundled application")
    return ", ".join(parts)


def run(
    model_path: str | Path | None = None,
    image_path: str | Path | None = None,
    out: IO[str] | None = None,
    video_path: str | Path | None = None,
) -> int:
    """Run every step, print a report to ``out`` (stdout) and return the exit status.

    ``model_path``/``image_path`` default to the bundled demo model and sample image (the model
    to ``$TAM_SELF_TEST_MODEL`` when set); tests pass other ones (for instance a tiny model) to
    exercise the same path.
    """
    out = out or sys.stdout
    # TAM_SELF_TEST_MODEL checks another model (a local folder or a cached Hub id) the same way.
    if model_path is None and os.environ.get(MODEL_ENV):
        model_path = os.environ[MODEL_ENV]
    if _need_offscreen():
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    # Keep the self-test offline: it only uses files that ship with the application.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

    state = SelfTestState(
        model_path=Path(model_path) if model_path is not None else None,
        image_path=Path(image_path) if image_path is not None else None,
        video_path=Path(video_path) if video_path is not None else None,
    )
    print(f"tam-desktop self-test: {_environment_line()}", file=out)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tam-self-test-") as tmp:
        state.workdir = Path(tmp)
        for name, step in STEPS:
            t0 = time.perf_counter()
            try:
                detail = step(state)
                ok = True
            except Exception as exc:  # every failure becomes a readable line, then we stop
                ok = False
                detail = _describe_failure(exc)
            result = StepResult(name, ok, detail, time.perf_counter() - t0)
            state.results.append(result)
            mark = " ok " if ok else "FAIL"
            print(f"[{mark}] {name:<18} {result.seconds:6.1f} s  {detail}", file=out, flush=True)
            if not ok:
                break
    total = time.perf_counter() - start
    if all(r.ok for r in state.results) and len(state.results) == len(STEPS):
        print(f"self-test passed in {total:.1f} s", file=out)
        return 0
    failed = state.results[-1].name
    print(f"self-test FAILED at '{failed}' after {total:.1f} s", file=out)
    return 1


def _describe_failure(exc: BaseException) -> str:
    from tam_engine.core.errors import TamError

    if isinstance(exc, (TamError, SelfTestFailure)):
        return str(exc).replace("\n", "\n" + " " * 8)
    tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return f"{type(exc).__name__}: {exc}\n{tb}"
