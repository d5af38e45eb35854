"""``tam export``: turn a saved explanation into PNG, MP4, HTML, JSON or NPZ files.

It also adds ``--export`` to ``tam explain`` (through that command's hooks), so a run can write
its figures next to the ``.tam.npz`` in one go.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Literal

from tam_engine.core.errors import ExplanationFileError, TamError

WHATS = ("png", "textmap", "sequence", "sheet", "sweep", "video", "html", "json", "npz")
_SUFFIX = {"png": ".png", "textmap": "_textmap.png", "sequence": "_tokens", "sheet": "_sheet.png",
           "sweep": "_sweep.mp4", "video": "_video.mp4", "html": ".html", "json": ".json",
           "npz": "_maps.npz"}


def register(subparsers: argparse._SubParsersAction) -> None:
    from tam_engine.render.colormaps import COLORMAPS

    p = subparsers.add_parser(
        "export", help="export a saved explanation as images, video, HTML, JSON or NPZ",
        description="Render a saved explanation (.tam.npz, written by `tam explain` or the app) "
        "with the same renderer the app uses. WHAT: png (one token's figure), textmap (one "
        "token's text map), sequence (every token as PNGs in a folder), sheet (all tokens on "
        "one contact sheet), sweep (MP4 stepping through the tokens over the image), video "
        "(MP4 playing a video with one token's map, or following the answer), html (one "
        "self-contained page: hover a token to see its map), json (tokens, ids, relevances, "
        "candidates), npz (the maps as arrays).",
        epilog="Example: tam export run/explanation.tam.npz sweep --fps 4 --out sweep.mp4")
    p.add_argument("explanation", metavar="EXPLANATION", help="a .tam.npz file")
    p.add_argument("what", choices=WHATS, metavar="WHAT", help=", ".join(WHATS))
    p.add_argument("--out", metavar="PATH", help="output file or folder (default: beside the "
                   "explanation, named after it)")
    p.add_argument("--token", type=int, metavar="N", help="token number, from 1 (default 1; "
                   "for video: follow the answer when omitted)")
    p.add_argument("--kind", choices=("answer", "prompt"), default="answer")
    p.add_argument("--layout", choices=("figure", "overlay", "textmap"), default="figure",
                   help="png/sequence: the paper figure, the captioned overlay, or the text "
                   "map; sweep: figure (with the text map) or overlay (the media's own size)")
    p.add_argument("--media", type=int, default=1, metavar="I", help="media item, from 1")
    p.add_argument("--frame", type=int, default=1, metavar="F", help="video frame, from 1")
    p.add_argument("--cmap", choices=COLORMAPS, default="jet")
    p.add_argument("--opacity", type=float, default=0.5)
    p.add_argument("--width", type=int, metavar="PX", help="image width in pixels")
    p.add_argument("--fps", type=float, help="MP4 frame rate (sweep 2, video 10)")
    p.add_argument("--frames-per-token", type=int, default=1, metavar="N",
                   help="sweep: frames each token is held")
    p.add_argument("--source", nargs="?", const="", metavar="VIDEO",
                   help="video: play this original file at its full frame rate (without a "
                   "value: the path stored in the explanation)")
    p.add_argument("--crf", type=int, default=23, help="H.264 quality (lower = better)")
    p.add_argument("--preset", default="veryfast", help="x264 speed preset")
    p.set_defaults(func=run)
    _hook_into_explain()


def _hook_into_explain() -> None:
    from tam_engine.cli import explain as cli_explain

    if _add_explain_option in cli_explain.ARGUMENT_HOOKS:
        return
    cli_explain.ARGUMENT_HOOKS.append(_add_explain_option)
    cli_explain.OUTPUT_HOOKS.append(_explain_outputs)


def _add_explain_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--export", metavar="WHAT[,WHAT]", default="",
                   help="also write exports into OUT_DIR: " + ", ".join(WHATS)
                   + " (e.g. --export sequence,html,json)")


def _explain_outputs(expl, out_dir: Path, args: argparse.Namespace) -> None:
    whats = [w.strip() for w in (getattr(args, "export", "") or "").split(",") if w.strip()]
    bad = [w for w in whats if w not in WHATS]
    if bad:
        raise TamError(f"unknown export {', '.join(bad)}", f"choose from {', '.join(WHATS)}")
    for what in whats:
        path = out_dir / ("explanation" + _SUFFIX[what])
        _export(expl, what, path, argparse.Namespace(**_defaults()))
        print(f"wrote {path}", file=sys.stderr)


def _defaults() -> dict:
    return {"token": None, "kind": "answer", "layout": "figure", "media": 1, "frame": 1,
            "cmap": "jet", "opacity": 0.5, "width": None, "fps": None, "frames_per_token": 1,
            "crf": 23, "preset": "veryfast", "source": None}


def run(args: argparse.Namespace) -> int:
    from tam_engine.core.explanation import Explanation

    try:
        src = Path(args.explanation)
        try:
            expl = Explanation.load(src)
        except (ValueError, OSError, KeyError) as exc:
            raise ExplanationFileError(f"cannot read {src.name}: {exc}",
                                       "Give a .tam.npz file written by `tam explain` or the "
                                       "app.") from exc
        stem = src.name.removesuffix(".npz").removesuffix(".tam")
        out = Path(args.out) if args.out else src.with_name(stem + _SUFFIX[args.what])
        path = _export(expl, args.what, out, args)
    except TamError as exc:
        print(f"tam export: {exc.message}" + (f"\n  hint: {exc.hint}" if exc.hint else ""),
              file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("tam export: cancelled (nothing written)", file=sys.stderr)
        return 130
    print(f"wrote {path}", file=sys.stderr)
    return 0


def _export(expl, what: str, out: Path, args: argparse.Namespace) -> Path:
    from tqdm import tqdm

    from tam_engine import export as ex
    from tam_engine.export import Layout

    k = (args.token or 1) - 1
    common = {"kind": args.kind, "media_index": args.media - 1, "cmap": args.cmap,
              "opacity": args.opacity}
    width = {"width": args.width} if args.width else {}
    if what in ("png", "textmap"):
        layout: Layout = "textmap" if what == "textmap" else args.layout
        return ex.export_token_png(expl, out, k, layout, frame=args.frame - 1, **common, **width)
    if what == "json":
        return ex.export_json(expl, out)
    if what == "npz":
        return ex.export_npz(expl, out)
    with tqdm(unit="frame", desc=what, file=sys.stderr, dynamic_ncols=True, leave=False,
              disable=None) as bar:  # no bar when stderr is not a terminal
        def progress(i: int, n: int) -> None:
            bar.total = n
            bar.n = i
            bar.refresh()

        if what == "sequence":
            paths = ex.export_png_sequence(expl, out, args.layout, frame=args.frame - 1,
                                           progress=progress, **common, **width)
            return paths[0].parent if paths else out
        if what == "sheet":
            return ex.export_contact_sheet(expl, out, frame=args.frame - 1, progress=progress,
                                           **common)
        if what == "sweep":
            sweep_layout: Literal["overlay", "figure"] = (
                "figure" if args.layout == "figure" else "overlay")
            return ex.export_sweep_mp4(expl, out, frame=args.frame - 1, fps=args.fps or 2.0,
                                       frames_per_token=args.frames_per_token, crf=args.crf,
                                       layout=sweep_layout,
                                       preset=args.preset, progress=progress, **common, **width)
        if what == "video":
            token = None if args.token is None else k
            source = args.source
            if source == "" and expl.media and 0 <= args.media - 1 < len(expl.media):
                source = expl.media[args.media - 1].path
            return ex.export_video_mp4(expl, out, token=token, fps=args.fps or 10.0,
                                       crf=args.crf, preset=args.preset, source=source or None,
                                       progress=progress, **common, **width)
        if what == "html":
            return ex.export_html(expl, out, media_index=args.media - 1,
                                  frame=args.frame - 1, cmap=args.cmap, opacity=args.opacity,
                                  progress=progress)
    raise ValueError(what)
