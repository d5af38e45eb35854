"""``tam models``: the supported model families and the media each one takes."""

from __future__ import annotations

import argparse

from tam_engine.cli.exitcodes import ExitCode


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "models", help="list the supported model families and the media each one takes",
        description="List the model families tam explains (chosen from a model's config "
        "model_type), with example checkpoints and the media each takes: one image, several "
        "images in one prompt, a video, and whether large images are tiled. Other "
        "image-text-to-text models are explained only where their vision tokens can be "
        "checked; otherwise they are refused with a message.")
    p.add_argument("--markdown", action="store_true",
                   help="print the table as Markdown (README's model table)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tam_engine.inference.catalog import markdown_table, text_table

    print(markdown_table() if args.markdown else text_table(), end="")
    return ExitCode.OK
