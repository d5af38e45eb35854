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


def _module_cycles(packages: tuple[str, ...]) -> list[list[str]]:
    """Strongly connected groups of more than one module (import cycles), by Tarjan's method.

    Imports inside ``if TYPE_CHECKING:`` blocks are left out: they never run.
    """
    import grimp

    graph = grimp.build_graph(*packages, exclude_type_checking_imports=True)
    modules = sorted(graph.modules)
    edges = {m: sorted(graph.find_modules_directly_imported_by(m)) for m in modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(root: str) -> None:
        # Iterative Tarjan: the import graph is deep enough to hit Python's recursion limit.
        work = [(root, iter(edges[root]))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(edges[child])))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    groups.append(sorted(group))

    for module in modules:
        if module not in index:
            visit(module)
    return groups


def test_no_import_cycles_in_the_engine_or_the_app():
    # A package's __init__ re-exporting its own modules is not a cycle between concerns, but
    # grimp sees ``pkg -> pkg.mod -> pkg`` when a module imports a sibling through the package;
    # keep every import pointing at the defining module so this list stays empty.
    assert _module_cycles(("tam_engine", "tam_desktop")) == []


def test_test_tiers_keep_their_promises():
    """tests/engine never touches Qt or the app; tests/controllers never makes a widget."""
    tests = Path(__file__).resolve().parents[1]
    for path in (tests / "engine").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        for name in FORBIDDEN:
            assert f"import {name}" not in text and f"from {name}" not in text, (path, name)
    for path in (tests / "controllers").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert "qtbot" not in text and "QtWidgets" not in text, path
