from __future__ import annotations

import sys

from tam_engine.cli import main

sys.exit(main())
