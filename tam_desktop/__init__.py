"""tam-desktop: the Qt application that shows Token Activation Maps."""

from __future__ import annotations

__version__ = "0.1.0"
