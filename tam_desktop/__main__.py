"""Entry point of ``tam-desktop`` and ``python -m tam_desktop``."""

from __future__ import annotations

import argparse
import sys

from tam_desktop import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tam-desktop",
        description="Open images or a video, run a multimodal LLM and see, for every generated "
        "token, which pixels were its visual evidence (Token Activation Maps). A saved "
        "explanation (.tam.npz) opens without a model.",
    )
    parser.add_argument("--version", action="version", version=f"tam-desktop {__version__}")
    parser.add_argument(
        "--self-test",
        action="store_true",
        help="load the bundled demo model, explain the sample image offscreen, open the main "
        "window with it, print a report and exit (0 = everything works)",
    )
    parser.add_argument("media", nargs="*",
                        help="images, a video, or one saved explanation (.tam.npz) to open")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.self_test:
        from tam_desktop.self_test import run

        return run()
    from tam_desktop.app import run_app

    return run_app(args.media)


if __name__ == "__main__":
    sys.exit(main())
