"""tam_engine must never import Qt, pyqtgraph or the GUI (also checked by import-linter)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import tam_engine

FORBIDDEN = ("PySide6", "PyQt5", "PyQt6", "shiboken6", "pyqtgraph", "superqt", "tam_desktop")


def test_engine_imports_no_qt_in_a_fresh_interpreter():
    pkg = Path(tam_engine.__file__).parent
    modules = sorted(
        "tam_engine." + ".".join(p.relative_to(pkg).with_suffix("").parts)
        for p in pkg.rglob("*.py")
        if p.name not in ("__init__.py", "__main__.py")
    )
    code = (
        "import importlib, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        f"bad = [m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r}]\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"tam_engine pulled in: {out.stdout.strip()}"


def test_engine_sources_do_not_name_qt():
    pkg = Path(tam_engine.__file__).parent
    for path in pkg.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        for name in FORBIDDEN:
            assert f"import {name}" not in text and f"from {name}" not in text, (path, name)
