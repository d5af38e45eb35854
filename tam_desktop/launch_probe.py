"""Start ``tam-desktop`` as a user does (a fresh process, first launch: ``run_app([])``, the
demo model explaining the sample image) and time it from outside, then close it from inside.

The one launcher behind ``benchmarks/bench_first_run.py`` (time to the first explanation on
screen) and ``tests/widgets/test_gui_quit.py`` (quit within a second, also mid-run).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Launch", "launch"]

# The child prints "WORD <unix time>" lines: SHOWN (the explanation painted), CLOSE (the close
# request) and EXIT (the app's own exit, after its windows closed and its settings were saved).
_CHILD = r"""
import sys, time
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
app = QApplication(sys.argv[:1])
from tam_desktop import app as tam_app
when, linger_ms = sys.argv[1], int(sys.argv[2])
leave = tam_app.exit_now

def exit_now(code):
    print(f"EXIT {time.time():.4f}", flush=True)
    leave(code)

tam_app.exit_now = exit_now

def close(w):
    print(f"CLOSE {time.time():.4f}", flush=True)
    w.close()

def watch():
    w = next((w for w in app.topLevelWidgets() if type(w).__name__ == "MainWindow"), None)
    if w is not None and when == "running" and w.controller.running:
        close(w)
        return
    if w is not None and when == "shown" and w.state.explanation is not None:
        w.pane.media_view.graphics.viewport().repaint()   # on screen, not only in the state
        print(f"SHOWN {time.time():.4f}", flush=True)
        QTimer.singleShot(linger_ms, lambda: close(w))
        return
    QTimer.singleShot(10, watch)

QTimer.singleShot(0, watch)
tam_app.run_app([])
"""


@dataclass
class Launch:
    """What one launch said: the child's stamps, the start and end seen from outside."""

    started: float
    ended: float
    returncode: int
    said: dict[str, float] = field(default_factory=dict)


def launch(config_dir: Path, when: str = "shown", linger_ms: int = 0,
           timeout: float = 600.0) -> Launch:
    """Run the app with an empty settings folder ``config_dir``; close it once the first
    explanation is shown (``when="shown"``, after ``linger_ms``) or while the first run is
    still going (``when="running"``)."""
    if when not in ("shown", "running"):
        raise ValueError(f"when must be 'shown' or 'running', not {when!r}")
    repo = Path(__file__).resolve().parents[1]
    env = dict(os.environ, TAM_DESKTOP_CONFIG_DIR=str(config_dir), HF_HUB_OFFLINE="1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(repo), env.get("PYTHONPATH")) if p)
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    started = time.time()
    proc = subprocess.Popen([sys.executable, "-c", _CHILD, when, str(linger_ms)], env=env,
                            text=True, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    said: dict[str, float] = {}
    assert proc.stdout is not None
    for line in proc.stdout:
        word, _, stamp = line.partition(" ")
        try:
            said[word] = float(stamp)
        except ValueError:
            continue   # a stray line from a library: not one of ours
    proc.wait(timeout=timeout)
    return Launch(started, time.time(), proc.returncode, said)
