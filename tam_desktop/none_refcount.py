"""A guard against a reference-count bug of PySide6 6.12 on CPython 3.11.

Measured here (PySide6_Essentials 6.12.0, shiboken6 6.12.0, Python 3.11.7): each call of a
``void`` method such as ``QPainter.fillRect``, ``drawPixmap``, ``setPen`` or ``drawRect`` drops
one reference to ``None`` without having taken it. ``None`` starts with a few thousand
references and, before Python 3.12, is not immortal: painting a 1,000-token strip or a
256-frame filmstrip a few times deallocates it and the process aborts ("none_dealloc").

The guard raises ``None``'s reference count once by 2**40 (a leak of a million references a
second would take twelve days to spend it). ``None`` is never freed while the interpreter
runs, so its count has no other meaning; nothing is allocated. From Python 3.12 ``None`` is
immortal and the guard does nothing.
"""

from __future__ import annotations

import ctypes
import sys

_MARGIN = 2**40
_installed = False


def install() -> None:
    """Raise ``None``'s reference count once (idempotent)."""
    global _installed
    if _installed or sys.version_info >= (3, 12) or sys.implementation.name != "cpython":
        return
    # ob_refcnt is the first field (a Py_ssize_t) of every CPython object.
    ctypes.c_ssize_t.from_address(id(None)).value += _MARGIN
    _installed = True
