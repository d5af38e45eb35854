"""Render the application icon's PNG sizes from its SVG (run after editing the SVG).

    python packaging/make_icons.py

Uses Qt's SVG renderer, so no extra tool is needed; the PNGs are committed.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtGui import QGuiApplication, QImage, QPainter  # noqa: E402
from PySide6.QtSvg import QSvgRenderer  # noqa: E402

from tam_engine.core.resources import ICON_SIZES, icon_path  # noqa: E402


def render_icons(svg: Path, out_dir: Path, sizes: tuple[int, ...] = ICON_SIZES) -> list[Path]:
    """Write ``tam-desktop-<N>.png`` for each size; returns the files written."""
    renderer = QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise SystemExit(f"{svg} is not a valid SVG")
    written = []
    for size in sizes:
        image = QImage(size, size, QImage.Format.Format_ARGB32)
        image.fill(Qt.GlobalColor.transparent)
        painter = QPainter(image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        renderer.render(painter)
        painter.end()
        target = out_dir / f"tam-desktop-{size}.png"
        tmp = target.with_suffix(".png.tmp")
        if not image.save(str(tmp), "PNG"):
            raise SystemExit(f"cannot write {target}")
        os.replace(tmp, target)
        written.append(target)
    return written


def main() -> int:
    _app = QGuiApplication.instance() or QGuiApplication(sys.argv[:1])
    svg = icon_path()
    for path in render_icons(svg, svg.parent):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
