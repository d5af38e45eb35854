"""Regenerate the golden PNGs of the renderer tests (after an intended change to the renderer or
the fonts)::

    python tests/make_golden.py

then look at the images in ``tests/golden/`` before committing them. What they show is defined
in :mod:`tam_engine.testing.golden`.
"""

from __future__ import annotations

import sys
from pathlib import Path

GOLDEN_DIR = Path(__file__).parent / "golden"


def main() -> int:
    from PIL import Image

    from tam_engine.testing.golden import golden_images

    GOLDEN_DIR.mkdir(exist_ok=True)
    for name, img in golden_images().items():
        Image.fromarray(img).save(GOLDEN_DIR / name, optimize=True)
        print(f"wrote {GOLDEN_DIR / name}  {img.shape[1]}x{img.shape[0]}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    sys.exit(main())
