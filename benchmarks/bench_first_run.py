"""The first launch as a new user sees it: ``tam-desktop`` in a fresh process with an empty
settings folder, timed from the process start until the demo model's explanation of the sample
image is on screen, then from closing the window until the process has ended.

    python benchmarks/bench_first_run.py            # offscreen
    DISPLAY=:91 QT_QPA_PLATFORM=xcb python benchmarks/bench_first_run.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CHILD = r"""
import sys, time
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication
app = QApplication(sys.argv[:1])
from tam_desktop import app as tam_app
leave = tam_app.exit_now

def exit_now(code):
    print(f"EXIT {time.time():.4f}", flush=True)
    leave(code)

tam_app.exit_now = exit_now

def watch():
    w = next((w for w in app.topLevelWidgets() if type(w).__name__ == "MainWindow"), None)
    if w is not None and w.state.explanation is not None:
        w.pane.media_view.graphics.viewport().repaint()   # on screen, not only in the state
        print(f"SHOWN {time.time():.4f}", flush=True)
        QTimer.singleShot(500, lambda: (print(f"CLOSE {time.time():.4f}", flush=True),
                                        w.close()))
        return
    QTimer.singleShot(10, watch)

QTimer.singleShot(0, watch)
tam_app.run_app([])
"""


def main() -> int:
    env = dict(os.environ, TAM_DESKTOP_CONFIG_DIR=tempfile.mkdtemp(prefix="tam-first-run-"),
               PYTHONPATH=str(REPO), HF_HUB_OFFLINE="1")
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    start = time.time()
    proc = subprocess.Popen([sys.executable, "-c", CHILD], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    said: dict[str, float] = {}
    assert proc.stdout is not None
    for line in proc.stdout:
        word, _, stamp = line.partition(" ")
        said[word] = float(stamp)
    proc.wait()
    ended = time.time()
    print(f"start -> first explanation on screen: {said['SHOWN'] - start:.1f} s")
    print(f"close -> app done (exit called):      {said['EXIT'] - said['CLOSE']:.2f} s")
    print(f"close -> process ended:               {ended - said['CLOSE']:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
