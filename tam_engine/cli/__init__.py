"""The ``tam`` command line: explain, export and evaluate without the GUI."""

from __future__ import annotations

import argparse
import sys

from tam_engine import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tam",
        description="Token Activation Maps for multimodal LLMs: explain which pixels (and "
        "which frames) each generated token drew on.",
    )
    parser.add_argument("--version", action="version", version=f"tam {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    from tam_engine.cli import synth as cli_synth

    cli_synth.register(sub)
    from tam_engine.cli import eval as cli_eval

    cli_eval.register(sub)
    from tam_engine.cli import export as cli_export

    cli_export.register(sub)  # before explain: it adds --export to `tam explain`
    from tam_engine.cli import explain as cli_explain

    cli_explain.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
