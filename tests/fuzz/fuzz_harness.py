"""Run the hostile-input corpus and classify every case (issue 14).

The whole run is one command, from the repository root::

    PYTHONPATH=. QT_QPA_PLATFORM=offscreen python tests/fuzz/fuzz_harness.py          # all
    PYTHONPATH=. QT_QPA_PLATFORM=offscreen python tests/fuzz/fuzz_harness.py --fast   # CI's

Each case runs in a forked child (``--no-fork``: in this process), so that a crash (a signal)
and a hang (the timeout) are seen as such. Outcomes: clean error, success, traceback, crash,
hang, silent wrong, misleading, data loss (an existing file changed, checked by hash). The
ordinary pytest tests in ``test_fuzz.py`` run the fast subset in-process.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import os
import signal
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fuzz_corpus import Case, Ctx, all_cases  # noqa: E402

OUTCOMES = ("clean error", "success", "traceback", "crash", "hang", "silent wrong",
            "misleading", "data loss")
GOOD = ("clean error", "success")


def _hashes(roots: list[Path]) -> dict[str, str]:
    out = {}
    for root in roots:
        if root.is_file():
            files = [root]
        elif root.is_dir():
            files = [p for p in root.rglob("*") if p.is_file() and not p.is_symlink()]
        else:
            continue
        for p in files:
            try:
                out[str(p)] = hashlib.sha256(p.read_bytes()).hexdigest()
            except OSError:
                continue
    return out


def _classify(case: Case, ctx: Ctx, value: Any, exc: BaseException | None) -> tuple[str, str]:
    from tam_engine.core.errors import TamError

    if exc is not None:
        if isinstance(exc, TamError):
            text = f"{exc.message} | {exc.hint}"
            if not exc.message.strip():
                return "misleading", "an empty message"
        else:
            tb = "".join(traceback.format_exception_only(type(exc), exc)).strip()
            return "traceback", tb[-300:]
    elif isinstance(value, tuple) and len(value) == 3 and value[0] == "cli":
        _, code, err = value
        if "Traceback" in err:
            return "traceback", err.strip().splitlines()[-1][-300:]
        # The message: from the first line tam or argparse wrote (a progress bar may precede).
        lines = err.splitlines()
        first = next((i for i, line in enumerate(lines)
                      if line.startswith(("tam:", "usage:"))), None)
        if code == 0:
            text = ""
        elif first is not None:
            text = "\n".join(lines[first:]).strip()
        else:
            return "misleading", f"exit {code} without a message: {err[-200:]!r}"
        if code != 0:
            exc = RuntimeError("cli error")  # an error, with text
    else:
        text = ""
    if exc is None:  # it worked: was it supposed to?
        if case.expect == "error":
            return "silent wrong", "accepted what should be refused"
        if case.verify is not None:
            problem = case.verify(ctx, value)
            if problem:
                return "silent wrong", problem
        return "success", ""
    if case.expect == "success":
        return "misleading", f"refused what should work: {text[:300]}"
    low = text.lower()
    missing = [w for w in case.mention if w.lower() not in low]
    if missing:
        return "misleading", f"message lacks {missing}: {text[:300]}"
    return "clean error", text[:300]


def run_in_process(case: Case, ctx: Ctx, timeout: float) -> tuple[str, str]:
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = case.run(ctx, ctx.case_dir(case.name))
        except BaseException as exc:  # noqa: BLE001 - classified below
            box["exc"] = exc

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        return "hang", f"still running after {timeout:.0f} s"
    return _classify(case, ctx, box.get("value"), box.get("exc"))


def run_forked(case: Case, ctx: Ctx, timeout: float) -> tuple[str, str]:
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: run, report one JSON line, leave without clean-up handlers
        os.close(r)
        try:
            result = run_in_process(case, ctx, timeout)
        except BaseException as exc:  # noqa: BLE001
            result = ("traceback", f"harness: {exc!r}")
        os.write(w, json.dumps(result).encode())
        os.close(w)
        os._exit(0)
    os.close(w)
    deadline = time.monotonic() + timeout + 30
    status = None
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        time.sleep(0.05)
    else:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(r)
        return "hang", f"the process did not end within {timeout + 30:.0f} s"
    data = b""
    while chunk := os.read(r, 65536):
        data += chunk
    os.close(r)
    if status is not None and os.WIFSIGNALED(status):
        return "crash", f"killed by signal {os.WTERMSIG(status)}"
    try:
        outcome, detail = json.loads(data.decode())
    except ValueError:
        return "crash", f"no report (status {status})"
    return outcome, detail


def run_case(case: Case, ctx: Ctx, fork: bool = False, timeout: float = 120.0
             ) -> tuple[str, str]:
    """``(outcome, detail)`` of one case, with the hash check of every existing file."""
    work = ctx.case_dir(case.name)
    case.setup(ctx, work)
    roots = [work, *ctx.shared_roots()]
    before = _hashes(roots)
    with contextlib.redirect_stdout(io.StringIO()):
        outcome, detail = (run_forked if fork else run_in_process)(case, ctx, timeout)
    after = _hashes(roots)
    allowed = {str(work / p) for p in case.may_change} if outcome == "success" else set()
    changed = [p for p, h in before.items() if after.get(p) != h and p not in allowed]
    if changed:
        return "data loss", f"changed or removed: {', '.join(Path(p).name for p in changed[:5])}"
    return outcome, detail


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fast", action="store_true", help="only the fast subset (as in CI)")
    ap.add_argument("--no-fork", action="store_true", help="run the cases in this process")
    ap.add_argument("--only", default="", help="run the cases whose name contains this")
    ap.add_argument("--json", default="", help="also write the results to this file")
    ap.add_argument("--timeout", type=float, default=120.0)
    args = ap.parse_args(argv)
    cases = [c for c in all_cases() if (c.fast or not args.fast) and args.only in c.name]
    if not args.no_fork:
        import torch

        torch.set_num_threads(1)  # no thread pool to inherit half-initialised across fork
    results = []
    counts: Counter[str] = Counter()
    by_group: dict[str, Counter[str]] = {}
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tam-fuzz-") as root:
        ctx = Ctx(Path(root))
        for case in cases:
            outcome, detail = run_case(case, ctx, fork=not args.no_fork, timeout=args.timeout)
            counts[outcome] += 1
            by_group.setdefault(case.group, Counter())[outcome] += 1
            results.append({"case": case.name, "group": case.group, "outcome": outcome,
                            "detail": detail})
            mark = "ok " if outcome in GOOD else "BAD"
            print(f"{mark} {outcome:13s} {case.name}: {detail[:160]}", flush=True)
    print(f"\n{len(cases)} cases in {time.perf_counter() - t0:.0f} s\n")
    cols = [o for o in OUTCOMES]
    print("| group | " + " | ".join(cols) + " |")
    print("|---|" + "---|" * len(cols))
    for group, c in sorted(by_group.items()):
        print(f"| {group} | " + " | ".join(str(c.get(o, 0)) for o in cols) + " |")
    print("| **all** | " + " | ".join(str(counts.get(o, 0)) for o in cols) + " |")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0 if all(r["outcome"] in GOOD for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
