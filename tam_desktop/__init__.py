"""tam-desktop: the Qt application that shows Token Activation Maps."""

from __future__ import annotations

__version__ = "0.1.0"

# PySide6 6.12 on Python 3.11 leaks references to None on every paint call (see the module).
from tam_desktop import none_refcount as _none_refcount  # noqa: E402

_none_refcount.install()
