"""``tam synth``: write a synthetic shapes dataset (images, videos, masks, captions)."""

from __future__ import annotations

import argparse

from tam_engine.cli.exitcodes import ExitCode, UsageError


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "synth", help="write a synthetic dataset of coloured shapes with masks and captions",
        description="Write N images and M short videos of coloured shapes, each object with an "
        "exact mask and each scene with a caption, in the tam-synthetic layout (meta.json) "
        "that `tam eval` reads. Deterministic by --seed.")
    p.add_argument("out", metavar="OUT_DIR", help="output folder (created if needed)")
    p.add_argument("--images", type=int, default=100, metavar="N", help="number of images")
    p.add_argument("--videos", type=int, default=10, metavar="M", help="number of videos")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="dataset seed")
    p.add_argument("--size", type=int, default=224, help="frame size in pixels (square)")
    p.add_argument("--frames", type=int, default=8, help="frames per video")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tam_engine.core.limits import LimitError, check_count
    from tam_engine.demo.synth import write_dataset

    try:
        check_count(args.images, "synth_items", "--images")
        check_count(args.videos, "synth_items", "--videos")
        check_count(args.size, "synth_size", "--size", 28)
        check_count(args.frames, "max_frames", "--frames", 1)
    except LimitError as exc:
        raise UsageError(exc.message, exc.hint) from None
    path = write_dataset(args.out, args.images, args.videos, args.seed, size=args.size,
                         n_frames=args.frames)
    print(f"wrote {args.images} images and {args.videos} videos; index: {path}")
    return ExitCode.OK
