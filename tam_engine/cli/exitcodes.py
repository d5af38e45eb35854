"""How a ``tam`` command ends: its exit status, and the two errors that choose one.

:func:`tam_engine.cli.main` is the only place that turns an outcome into a status and an error
into text; commands return :attr:`ExitCode.OK` or raise. The table is shown by ``tam --help``
and in README.md ("Command line").
"""

from __future__ import annotations

from enum import IntEnum

from tam_engine.core.errors import Cancelled, TamError


class ExitCode(IntEnum):
    OK = 0
    FAILURE = 1
    USAGE = 2
    INTERRUPTED = 130  # 128 + SIGINT, as shells report a Ctrl+C
    TERMINATED = 143  # 128 + SIGTERM


MEANING: dict[ExitCode, str] = {
    ExitCode.OK: "success",
    ExitCode.FAILURE: "failed: the message says why, the hint what to do",
    ExitCode.USAGE: "bad command line: unknown option, missing or invalid value",
    ExitCode.INTERRUPTED: "interrupted (Ctrl+C)",
    ExitCode.TERMINATED: "terminated (SIGTERM); cleaned up like Ctrl+C",
}
#: main() lets any other exception propagate: its traceback is the bug report.
BUG_NOTE = "A Python traceback (exit status 1) instead of a message is a bug: please report it."


class UsageError(TamError):
    """An option's value is refused (checked before any model or file is loaded): exit 2."""


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived: raised like a Ctrl+C, so every clean-up written for one runs."""


class Interrupted(Cancelled):
    """The run was interrupted; ``hint`` says what was kept or how to go on: exit 130.

    A command raises it (from the ``KeyboardInterrupt``) only when it has something to add.
    """

    def __init__(self, hint: str = "") -> None:
        super().__init__("interrupted", hint)


def exit_status_help() -> str:
    """The table for ``tam --help``."""
    rows = [f"  {int(code):>3}  {MEANING[code]}" for code in ExitCode]
    return "\n".join(["exit status:", *rows, BUG_NOTE])
