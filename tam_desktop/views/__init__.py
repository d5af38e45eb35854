"""Qt views. Each takes the Qt-free model in ``__init__``, subscribes to its events and writes
back only through it."""

from __future__ import annotations

import pyqtgraph as pg

# Once, before any view exists: numpy (H, W) arrays are shown the way numpy prints them.
pg.setConfigOptions(imageAxisOrder="row-major", antialias=True)
