"""``tam export``: turn a saved explanation into PNG, MP4, HTML, JSON or NPZ files.

:class:`ExportOptions` is the one definition of how an export is rendered: its defaults, flags
and help. ``tam export`` adds them as ``--width`` etc.; ``tam explain`` adds the same ones as
``--export-width`` etc. for its ``--export`` outputs (its own ``--fps`` and MEDIA mean something
else), through :func:`add_export_options` both.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tam_engine.cli.exitcodes import ExitCode, Interrupted, UsageError
from tam_engine.core.errors import ExplanationFileError
from tam_engine.core.limits import LimitError, check_count, check_positive_number, limit
from tam_engine.core.placement import DEFAULT_LAYER, LAYERS, Layer
from tam_engine.export.common import (
    DEFAULT_CRF,
    DEFAULT_PRESET,
    SWEEP_FPS,
    VIDEO_FPS,
)
from tam_engine.render.colormaps import COLORMAPS, DEFAULT_COLORMAP, DEFAULT_OPACITY
from tam_engine.render.mp4 import X264_PRESETS
from tam_engine.render.scale import DEFAULT_SCALE, MAP_SCALES, SCALE_NAMES, MapScale

if TYPE_CHECKING:
    from tam_engine.core.explanation import Explanation
    from tam_engine.core.token_maps import TokenKind
    from tam_engine.export import Layout

WHATS = ("png", "textmap", "sequence", "sheet", "sweep", "video", "html", "json", "npz")
#: What an export is named after when no --out is given: ``<stem><suffix>`` beside the input.
SUFFIX = {"png": ".png", "textmap": "_textmap.png", "sequence": "_tokens", "sheet": "_sheet.png",
          "sweep": "_sweep.mp4", "video": "_video.mp4", "html": ".html", "json": ".json",
          "npz": "_maps.npz"}


def _option(default: Any, help: str | None = None, **argparse_kwargs: Any) -> Any:
    """A field with its default and the rest of its ``add_argument`` call."""
    return field(default=default, metadata={"help": help, **argparse_kwargs})


@dataclass(frozen=True)
class ExportOptions:
    """How an export is rendered; each field is one command-line option of the same name."""

    token: int | None = _option(None, "token number, from 1 (default 1; for video: follow the "
                                "answer when omitted)", type=int, metavar="N")
    kind: TokenKind = _option("answer", choices=("answer", "prompt"))
    layout: Layout = _option("figure", "png/sequence: the paper figure, the captioned overlay, "
                             "or the text map; sweep: figure (with the text map) or overlay "
                             "(the media's own size)", choices=("figure", "overlay", "textmap"))
    media: int = _option(1, "media item, from 1", type=int, metavar="I")
    frame: int = _option(1, "video frame, from 1", type=int, metavar="F")
    cmap: str = _option(DEFAULT_COLORMAP, choices=COLORMAPS)
    opacity: float = _option(DEFAULT_OPACITY, type=float)
    width: int | None = _option(None, "image width in pixels", type=int, metavar="PX")
    fps: float | None = _option(None, "MP4 frame rate (sweep 2, video 10)", type=float)
    frames_per_token: int = _option(1, "sweep: frames each token is held", type=int,
                                    metavar="N")
    source: str | None = _option(None, "video: play this original file at its full frame rate "
                                 "(without a value: the path stored in the explanation)",
                                 nargs="?", const="", metavar="VIDEO")
    crf: int = _option(DEFAULT_CRF, "H.264 quality (lower = better)", type=int)
    preset: str = _option(DEFAULT_PRESET, "x264 speed preset", choices=X264_PRESETS)
    layer: Layer = _option(DEFAULT_LAYER, "a tiled image's map: its tiles stitched, its "
                           "thumbnail, or both fused (their mean where both cover)",
                           choices=LAYERS)
    tile_borders: bool = _option(False, "outline the tiles (and cropped or padded grids) of "
                                 "the media", action="store_true")
    scale: MapScale = _option(DEFAULT_SCALE, "which map value the top colour stands for: "
                              + "; ".join(f"{k}: the {v}" for k, v in SCALE_NAMES.items())
                              + f" (default {DEFAULT_SCALE}, as the paper)", choices=MAP_SCALES)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> ExportOptions:
        """The options :func:`add_export_options` parsed into ``args``."""
        return cls(**{f.name: getattr(args, _DEST + f.name) for f in fields(cls)})

    def check(self, prefix: str = "") -> ExportOptions:
        """Refuse out-of-range values before anything is read or rendered (a
        :class:`UsageError` naming the option, its range and, for sizes, how to raise it)."""
        def opt(name: str) -> str:
            return f"--{prefix}{name}"

        try:
            for name in ("token", "media", "frame"):  # numbered from 1; 0 or -1 used to wrap
                value = getattr(self, name)
                if value is not None:
                    check_count(value, "tokens", f"{opt(name)}", 1)
            if self.width is not None:
                check_count(self.width, "export_width", opt("width"), _MIN_WIDTH)
            if self.fps is not None:
                check_positive_number(self.fps, "export_fps", opt("fps"))
            check_count(self.frames_per_token, "export_frames", opt("frames-per-token"), 1)
        except LimitError as exc:
            raise UsageError(exc.message, exc.hint) from None
        if not (0.0 <= self.opacity <= 1.0):  # also refuses NaN
            raise UsageError(f"{opt('opacity')} must be between 0 and 1, not {self.opacity}.")
        if not 0 <= self.crf <= 51:
            raise UsageError(f"{opt('crf')} must be between 0 (lossless) and 51, not "
                             f"{self.crf}.", "18 to 28 is sensible; the default is "
                             f"{DEFAULT_CRF}.")
        if self.preset not in X264_PRESETS:
            raise UsageError(f"{opt('preset')} {self.preset!r} is not an x264 preset.",
                             f"Choose one of {', '.join(X264_PRESETS)}.")
        return self


#: The narrowest exported image: a caption and a map still fit.
_MIN_WIDTH = 32


_DEST = "export_"  # namespace prefix: `tam explain` has its own `media` and `fps`


def add_export_options(p: argparse.ArgumentParser, prefix: str = "",
                       title: str = "export options") -> None:
    """Add ``--PREFIXNAME`` for each field of :class:`ExportOptions`, with the field's default."""
    group = p.add_argument_group(title)
    for f in fields(ExportOptions):
        spec = dict(f.metadata)
        if "choices" not in spec and "action" not in spec:
            spec.setdefault("metavar", f.name.upper())
        group.add_argument(f"--{prefix}{f.name.replace('_', '-')}", dest=_DEST + f.name,
                           default=f.default, **spec)


def export_list(text: str) -> list[str]:
    """The value of ``tam explain --export``: WHATs separated by commas."""
    whats = [w.strip() for w in text.split(",") if w.strip()]
    bad = [w for w in whats if w not in WHATS]
    if bad:
        raise argparse.ArgumentTypeError(f"unknown export {', '.join(bad)} (choose from "
                                         f"{', '.join(WHATS)})")
    return whats


def register(subparsers: argparse._SubParsersAction) -> None:
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
    p.add_argument("explanation", metavar="EXPLANATION", help="a .tam.npz file (for report: "
                   "the output folder of a batch `tam explain`)")
    p.add_argument("what", choices=(*WHATS, "report", "region"), metavar="WHAT",
                   help=", ".join(WHATS) + "; report (of a batch folder: one HTML page); "
                   "region (the tokens ranked by how much of their map lies inside --box)")
    p.add_argument("--out", metavar="PATH", help="output file or folder (default: beside the "
                   "explanation, named after it; region: printed unless given)")
    p.add_argument("--box", nargs=4, type=float, metavar=("X0", "Y0", "X1", "Y1"),
                   help="region: the box in pixels of the media (of --media, on --frame)")
    p.add_argument("--csv", action="store_true",
                   help="region: print CSV instead of JSON (an --out path ending in .csv "
                   "is written as CSV)")
    add_export_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tam_engine.core.explanation import Explanation

    if args.what == "report" or Path(args.explanation).is_dir():
        from tam_engine.cli.batch import run_report

        return run_report(args)
    options = ExportOptions.from_args(args).check()
    src = Path(args.explanation)
    try:
        expl = Explanation.load(src)
    except ExplanationFileError:
        raise  # already says what is wrong with the file, and what to do
    except (ValueError, OSError, KeyError) as exc:
        raise ExplanationFileError(f"cannot read {src.name}: {exc}", "Give a .tam.npz file "
                                   "written by `tam explain` or the app.") from exc
    if args.what == "region":
        return _region(args, expl, options)
    out = Path(args.out) if args.out else beside(src, args.what)
    if out.exists() and out.resolve() == src.resolve():
        raise UsageError(f"--out {out} is the explanation being exported; writing there would "
                         "replace it.", "Choose another output path.")
    try:
        path = write_export(expl, args.what, out, options)
    except KeyboardInterrupt:
        raise Interrupted("Nothing was written.") from None  # exports are atomic
    print(f"wrote {path}", file=sys.stderr)
    return ExitCode.OK


def _region(args: argparse.Namespace, expl: Explanation, o: ExportOptions) -> int:
    """``tam export FILE region --box X0 Y0 X1 Y1``: the ranking printed or written."""
    from tam_engine.core.region import RegionError, rank_region
    from tam_engine.export.region import export_region, region_text

    if args.box is None:
        raise UsageError("region needs --box X0 Y0 X1 Y1 (pixels of the media).",
                         "For example: --box 0 0 100 80")
    try:
        ranking = rank_region(expl, args.box, media_index=o.media - 1, frame=o.frame - 1,
                              layer=o.layer, kind=o.kind)
    except RegionError as exc:   # what was asked for does not exist: a usage error
        raise UsageError(exc.message, exc.hint) from None
    if args.out:
        print(f"wrote {export_region(expl, ranking, args.out)}", file=sys.stderr)
    else:
        sys.stdout.write(region_text(expl, ranking, args.csv))
    return ExitCode.OK


def beside(explanation_file: Path, what: str) -> Path:
    """Where an export goes by default: beside the explanation, named after it."""
    stem = explanation_file.name.removesuffix(".npz").removesuffix(".tam")
    return explanation_file.with_name(stem + SUFFIX[what])


def write_export(expl: Explanation, what: str, out: Path, options: ExportOptions) -> Path:
    """Write ``expl`` as ``what`` to ``out``, with a progress bar on a terminal."""
    from tqdm import tqdm

    from tam_engine import export as ex

    o = options
    k = (o.token or 1) - 1
    if expl.media and 0 <= o.media - 1 < len(expl.media):
        n_frames = expl.media[o.media - 1].n_frames
        if o.frame > n_frames:
            raise UsageError(f"--frame {o.frame}: media {o.media} has {n_frames} frame(s).",
                             f"Choose a frame between 1 and {n_frames}.")
    if what == "sweep":  # the MP4's frame count, known before anything is rendered
        n_out = len(expl.tokens(o.kind)) * o.frames_per_token
        if n_out > limit("export_frames"):
            raise UsageError(
                f"The sweep would have {n_out:,} frames ({len(expl.tokens(o.kind))} tokens x "
                f"--frames-per-token {o.frames_per_token}), more than the limit of "
                f"{limit('export_frames'):,}.",
                "Use fewer frames per token, or raise the limit with "
                "TAM_LIMIT_EXPORT_FRAMES=<number>.")
    common: dict[str, Any] = {"kind": o.kind, "media_index": o.media - 1, "cmap": o.cmap,
                              "opacity": o.opacity, "layer": o.layer,
                              "tile_borders": o.tile_borders, "scale": o.scale}
    width: dict[str, Any] = {"width": o.width} if o.width else {}
    if what in ("png", "textmap"):
        layout: Layout = "textmap" if what == "textmap" else o.layout
        return ex.export_token_png(expl, out, k, layout, frame=o.frame - 1, **common, **width)
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
            paths = ex.export_png_sequence(expl, out, o.layout, frame=o.frame - 1,
                                           progress=progress, **common, **width)
            return paths[0].parent if paths else out
        if what == "sheet":
            return ex.export_contact_sheet(expl, out, frame=o.frame - 1, progress=progress,
                                           **common)
        if what == "sweep":
            return ex.export_sweep_mp4(expl, out, frame=o.frame - 1, fps=o.fps or SWEEP_FPS,
                                       frames_per_token=o.frames_per_token, crf=o.crf,
                                       layout="figure" if o.layout == "figure" else "overlay",
                                       preset=o.preset, progress=progress, **common, **width)
        if what == "video":
            source = o.source
            if source == "" and expl.media and 0 <= o.media - 1 < len(expl.media):
                source = expl.media[o.media - 1].path
            return ex.export_video_mp4(expl, out, token=None if o.token is None else k,
                                       fps=o.fps or VIDEO_FPS, crf=o.crf, preset=o.preset,
                                       source=source or None, progress=progress, **common,
                                       **width)
        if what == "html":
            return ex.export_html(expl, out, media_index=o.media - 1, frame=o.frame - 1,
                                  cmap=o.cmap, opacity=o.opacity, progress=progress,
                                  layer=o.layer, tile_borders=o.tile_borders, scale=o.scale)
    raise ValueError(what)
