"""The fast subset of the hostile-input corpus (issue 14), as ordinary tests: every case ends in
a clean error or a verified success, and no existing file changes. The whole corpus, with
crash and hang detection in forked children, is one command (see fuzz_harness.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fuzz_corpus import Ctx, all_cases  # noqa: E402
from fuzz_harness import GOOD, run_case  # noqa: E402

FAST = [c for c in all_cases() if c.fast]


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    return Ctx(tmp_path_factory.mktemp("fuzz"))


@pytest.mark.parametrize("case", FAST, ids=[c.name for c in FAST])
def test_hostile_input_is_refused_cleanly(case, ctx):
    outcome, detail = run_case(case, ctx, fork=False, timeout=120)
    assert outcome in GOOD, f"{outcome}: {detail}"
    if case.expect != "either":
        assert outcome == ("success" if case.expect == "success" else "clean error"), detail


def test_the_corpus_covers_every_class_of_issue_14():
    groups = {c.group for c in all_cases()}
    assert {"explanation-file", "media", "cli-values", "disk", "settings", "model", "prompt",
            "concurrency", "payload", "payload-control"} <= groups
    controls = [c for c in all_cases() if c.group == "payload-control"]
    assert len(controls) >= 12  # each payload kind has its positive control
