"""Entry script of the bundled application (PyInstaller needs a script, not an entry point)."""

from __future__ import annotations

import sys

from tam_desktop.__main__ import main

if __name__ == "__main__":
    sys.exit(main())
