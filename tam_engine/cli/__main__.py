"""``python -m tam_engine.cli`` (and ``accelerate launch -m tam_engine.cli``) runs the CLI."""

from __future__ import annotations

import sys

from tam_engine.cli import main

if __name__ == "__main__":
    sys.exit(main())
