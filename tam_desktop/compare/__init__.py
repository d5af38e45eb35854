"""Compare mode: two models on the same media and prompt, side by side (issue 6, part 3).

``SelectionLink`` (Qt-free) keeps the two panes' selections on aligned words,
``CompareController`` runs model A then model B on the one device, and ``CompareWindow`` puts
two explanation panes sharing one frame cursor and one set of display options beside an
A-minus-B difference view.
"""

from __future__ import annotations

from tam_desktop.compare.controller import CompareController
from tam_desktop.compare.link import SelectionLink
from tam_desktop.compare.window import CompareWindow

__all__ = ["CompareController", "CompareWindow", "SelectionLink"]
