"""The first launch as a new user sees it: ``tam-desktop`` in a fresh process with an empty
settings folder, timed from the process start until the demo model's explanation of the sample
image is on screen, then from closing the window until the process has ended.

    python benchmarks/bench_first_run.py            # offscreen
    DISPLAY=:91 QT_QPA_PLATFORM=xcb python benchmarks/bench_first_run.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tam_desktop.launch_probe import launch  # noqa: E402


def main() -> int:
    run = launch(Path(tempfile.mkdtemp(prefix="tam-first-run-")), "shown", linger_ms=500)
    said = run.said
    print(f"start -> first explanation on screen: {said['SHOWN'] - run.started:.1f} s")
    print(f"close -> app done (exit called):      {said['EXIT'] - said['CLOSE']:.2f} s")
    print(f"close -> process ended:               {run.ended - said['CLOSE']:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
