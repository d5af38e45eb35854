"""The ``tam`` command line: explain, export and evaluate without the GUI; list the models.

Each command module has ``register(subparsers)``, which adds its parser and sets ``func``:
``func(args)`` returns an :class:`~tam_engine.cli.exitcodes.ExitCode` or raises. :func:`main`
alone turns errors into text and exit codes (see :mod:`tam_engine.cli.exitcodes`).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from tam_engine import __version__
from tam_engine.cli.exitcodes import ExitCode, Terminated, UsageError, exit_status_help
from tam_engine.core.atomic import disk_error
from tam_engine.core.errors import Cancelled, TamError


def build_parser() -> argparse.ArgumentParser:
    # Imported here so that `from tam_engine.cli import main` stays cheap.
    from tam_engine.cli import eval as cli_eval
    from tam_engine.cli import explain as cli_explain
    from tam_engine.cli import export as cli_export
    from tam_engine.cli import models as cli_models
    from tam_engine.cli import synth as cli_synth

    parser = argparse.ArgumentParser(
        prog="tam",
        description="Token Activation Maps for multimodal LLMs: explain which pixels (and\n"
        "which frames) each generated token drew on.",
        epilog=exit_status_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,  # keeps the table's lines
    )
    parser.add_argument("--version", action="version", version=f"tam {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in (cli_explain, cli_export, cli_eval, cli_synth, cli_models):  # any order: independent
        command.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run ``tam`` on ``argv`` (default: the process's arguments); return the exit status.

    A :class:`TamError` is reported once, as ``tam: error: MESSAGE`` and its hint, on stderr.
    Any other exception is a bug and propagates with its traceback.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help/--version (0), or a usage error argparse reported (2)
        return int(exc.code or 0)
    if args.command is None:
        parser.print_help()
        return ExitCode.OK
    with _sigterm_as_interrupt() as terminated:
        try:
            status = _run(args)
        except Terminated:  # arrived outside any command's own Ctrl+C handling
            status = ExitCode.INTERRUPTED
        if terminated:
            return ExitCode.TERMINATED
        return status


def _run(args: argparse.Namespace) -> int:
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        _report("interrupted", "", newline=True)
        return ExitCode.INTERRUPTED
    except Cancelled as exc:
        _report(exc.message, exc.hint, newline=True)
        return ExitCode.INTERRUPTED
    except OSError as exc:  # a disk or file problem no command foresaw: still a message
        err = disk_error(exc)
        _report(f"error: {err.message}", err.hint)
        return ExitCode.FAILURE
    except UsageError as exc:
        _report(f"error: {exc.message}", exc.hint)
        return ExitCode.USAGE
    except TamError as exc:
        _report(f"error: {exc.message}", exc.hint)
        return ExitCode.FAILURE


@contextmanager
def _sigterm_as_interrupt() -> Iterator[list[bool]]:
    """SIGTERM (a service manager, ``kill``) handled like Ctrl+C: the command's clean-up runs
    (temporary files removed, nothing half-written) and the exit status is 143 (128 + 15).
    Yields a list that holds ``True`` once SIGTERM arrived."""
    seen: list[bool] = []
    if threading.current_thread() is not threading.main_thread():
        yield seen  # signals can only be handled in the main thread
        return

    def on_term(signum: int, frame: object) -> None:
        if not seen:
            seen.append(True)
            raise Terminated()

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        yield seen
    finally:
        signal.signal(signal.SIGTERM, previous)


def _report(text: str, hint: str, newline: bool = False) -> None:
    # After a Ctrl+C the terminal's cursor still sits after "^C" (or a progress bar).
    print(("\n" if newline else "") + f"tam: {text}", file=sys.stderr)
    if hint:
        print(f"hint: {hint}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
