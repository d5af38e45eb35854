"""Print the family matrix (family x media case: ok, refused with its reason, or FAILED) by
running the family tests::

    QT_QPA_PLATFORM=offscreen python tests/family_matrix.py

Each family group's test module has one test per family and case that generates, explains,
checks every grid's cell count and runs the geometry oracle (``test_family_case``), or splits
that into ``test_generates_and_explains`` / ``test_grid_...`` / ``test_geometry_oracle``; a
case passes only when all of its tests pass. Refusals come from the specs (``refused``).
"""

from __future__ import annotations

import re
import sys
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent
MATRIX_TESTS = re.compile(r"test_(family_case|generates_and_explains|grid_\w+|geometry_oracle)"
                          r"\[(?P<family>[a-z0-9_]+)-(?P<case>[a-z]+)\]")


class _Collect:
    def __init__(self) -> None:
        self.outcome: dict[tuple[str, str], str] = defaultdict(lambda: "ok")

    def pytest_runtest_logreport(self, report) -> None:
        m = MATRIX_TESTS.search(report.nodeid)
        if m and report.when == "call" and report.failed:
            self.outcome[m["family"], m["case"]] = "FAILED"
        elif m and report.when == "call":
            self.outcome.setdefault((m["family"], m["case"]), "ok")


def main() -> int:
    from tam_engine.testing.families import CASES, family_specs

    collect = _Collect()
    files = sorted(str(p) for p in (ROOT / "engine").glob("test_family_*.py"))
    code = pytest.main(["-q", "-p", "no:cacheprovider", *files,
                        "-k", "family_case or generates_and_explains or grid_ or geometry_oracle"],
                       plugins=[collect])
    print("\n| family | " + " | ".join(CASES) + " |")
    print("|---" * (len(CASES) + 1) + "|")
    for spec in family_specs():
        cells = []
        for case in CASES:
            if case in spec.refused:
                cells.append(f"refused: {spec.refused[case]}")
            elif (spec.name, case) in collect.outcome:
                cells.append(collect.outcome[spec.name, case])
            else:
                cells.append("n/a" if case not in spec.cases else "not run")
        print(f"| {spec.name} | " + " | ".join(cells) + " |")
    return int(code)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT.parent))
    sys.exit(main())
