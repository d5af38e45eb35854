"""``tam explain``: run a model on images/videos and a prompt, and save the explanation."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tam_engine.batch.items import is_batch_source
from tam_engine.cli import batch as cli_batch
from tam_engine.cli import export as cli_export
from tam_engine.cli.download import fetch_model
from tam_engine.cli.exitcodes import ExitCode, UsageError
from tam_engine.cli.options import (
    add_media_options,
    add_model_options,
    check_media_options,
    load_kwargs,
    settings_kwargs,
)
from tam_engine.core.errors import TamError
from tam_engine.inference.settings import IMAGE_PROMPT, VIDEO_PROMPT, default_prompt

EXPLANATION_FILE = "explanation.tam.npz"
DEMO_MODEL = "demo"
#: Without --out, each run gets a new numbered folder here: run-001, run-002, ...
RUNS_ROOT = "tam-out"
RUN_PREFIX = "run-"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "explain", help="explain each generated token of a multimodal model",
        description="Generate an answer to PROMPT about the given images/videos with a Hugging "
        "Face vision-language model, and write the Token Activation Maps of every token to "
        f"OUT_DIR/{EXPLANATION_FILE} (by default a new folder {RUNS_ROOT}/{RUN_PREFIX}NNN for "
        "each run). Nothing is overwritten without --force.")
    p.add_argument("media", nargs="*", metavar="MEDIA",
                   help="image or video files, in order (default: the bundled sample image)")
    p.add_argument("--model", default=DEMO_MODEL, metavar="ID_OR_PATH",
                   help="Hugging Face model id (cache/offline aware) or local model folder "
                   "(default: the bundled demo model)")
    p.add_argument("--prompt", default=None, metavar="TEXT",
                   help=f"question or instruction (default: {IMAGE_PROMPT!r}, or "
                   f"{VIDEO_PROMPT!r} for a video)")
    p.add_argument("--answer", default=None, metavar="TEXT",
                   help="explain this given answer by teacher forcing (one forward pass, no "
                        "generation); each token's probability is recorded in the explanation")
    p.add_argument("--out", default=None, metavar="DIR",
                   help=f"output folder (created; default: a new numbered folder "
                   f"./{RUNS_ROOT}/{RUN_PREFIX}NNN, printed at the end)")
    p.add_argument("--force", action="store_true",
                   help="overwrite the explanation and exports of an earlier run in --out")
    p.add_argument("--max-new-tokens", type=int, default=64, metavar="N")
    p.add_argument("--top-k", type=int, default=5, metavar="K", help="candidates kept per token")
    p.add_argument("--no-eci", action="store_true", help="skip estimated causal inference")
    p.add_argument("--no-filter", action="store_true", help="skip the rank Gaussian filter")
    add_media_options(p)
    add_model_options(p)
    p.add_argument("--export", type=cli_export.export_list, default=[], metavar="WHAT[,WHAT]",
                   help="also write exports into OUT_DIR: " + ", ".join(cli_export.WHATS)
                   + " (e.g. --export sequence,html,json), rendered as the --export-* options "
                   "say")
    cli_export.add_export_options(p, prefix="export-",
                                  title="export options (for --export; as in `tam export`)")
    cli_batch.add_batch_options(p)
    p.set_defaults(func=run)


def _resolve_defaults(args: argparse.Namespace) -> None:
    """Fill in the bundled demo model, sample image and a default prompt where not given."""
    from tam_engine.core import resources
    from tam_engine.media.files import VIDEO_EXTENSIONS

    if not args.media:
        args.media = [str(resources.sample_image_path())]
    if args.model == DEMO_MODEL:
        args.model = str(resources.demo_model_path())
    if args.prompt is None:
        video = any(Path(m).suffix.lower() in VIDEO_EXTENSIONS for m in args.media)
        args.prompt = default_prompt(video)


def _targets(folder: Path, exports: list[str]) -> list[Path]:
    """The files a run writes into ``folder``."""
    main = folder / EXPLANATION_FILE
    return [main, *(cli_export.beside(main, what) for what in exports)]


def check_free(folder: Path, exports: list[str], force: bool) -> None:
    """Refuse to overwrite an earlier run's files (checked before the model is loaded)."""
    taken = [p for p in _targets(folder, exports) if p.exists()]
    if taken and not force:
        names = ", ".join(str(p) for p in taken[:3]) + (" ..." if len(taken) > 3 else "")
        raise TamError(f"{names} already exist{'s' if len(taken) == 1 else ''} (an earlier "
                       "run); nothing was overwritten.",
                       "Pass --force to overwrite, choose another --out, or leave --out out to "
                       f"write a new numbered folder under ./{RUNS_ROOT}.")


def new_run_folder(root: Path) -> Path:
    """A new, empty ``root/run-NNN`` (one past the highest number there), created now so that
    two runs at once never share one."""
    root.mkdir(parents=True, exist_ok=True)
    numbers = [int(p.name[len(RUN_PREFIX):]) for p in root.iterdir()
               if p.name.startswith(RUN_PREFIX) and p.name[len(RUN_PREFIX):].isdigit()]
    n = max(numbers, default=0) + 1
    while True:
        folder = root / f"{RUN_PREFIX}{n:03d}"
        try:
            folder.mkdir()
            return folder
        except FileExistsError:
            n += 1


def run(args: argparse.Namespace) -> int:
    if is_batch_source(args.media):  # a folder, a glob or a manifest: many items
        return cli_batch.run(args)
    from tqdm import tqdm

    from tam_engine.core.explanation import TamOptions
    from tam_engine.inference.loading import load_model
    from tam_engine.inference.pipeline import run_and_explain
    from tam_engine.inference.prompt import check_prompt
    from tam_engine.inference.settings import GenerationSettings
    from tam_engine.media.io import load_media

    _resolve_defaults(args)
    check_media_options(args)
    settings = GenerationSettings(max_new_tokens=args.max_new_tokens, top_k=args.top_k,
                                  **settings_kwargs(args))
    export_options = cli_export.ExportOptions.from_args(args).check(prefix="export-")
    try:
        settings.check()
        check_prompt(args.prompt)
    except TamError as exc:  # refused before any media or model is read
        raise UsageError(exc.message, exc.hint) from None
    if args.out is not None and Path(args.out).exists() and not Path(args.out).is_dir():
        # found now, not after the model has run
        raise UsageError(f"--out {args.out} is a file; it must be a folder (created if missing).",
                         "Give the name of a new or existing folder.")
    media = load_media(args.media, fps=args.fps, max_frames=args.max_frames)
    tam_options = TamOptions(eci=not args.no_eci, filter=not args.no_filter)
    if args.out is not None:
        check_free(Path(args.out), args.export, args.force)
    fetch_model(args.model, args.allow_pickle)
    print(f"loading {args.model} ...", file=sys.stderr)
    loaded = load_model(args.model, **load_kwargs(args))
    with tqdm(total=args.max_new_tokens, unit="tok", desc="generating", file=sys.stderr,
              dynamic_ncols=True) as bar:
        def on_token(step: int, text: str) -> None:
            bar.update(1)
            bar.set_postfix_str(repr(text)[1:-1][:20])

        expl = run_and_explain(loaded, media, args.prompt, settings, tam_options,
                               on_token=on_token, answer=args.answer)
        bar.total = bar.n
        bar.refresh()
    if args.out is None:
        out = new_run_folder(Path(RUNS_ROOT))
    else:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        check_free(out, args.export, args.force)  # again: another run may have written since
    path = expl.save(out / EXPLANATION_FILE)
    for what in args.export:
        written = cli_export.write_export(expl, what, cli_export.beside(path, what),
                                           export_options)
        print(f"wrote {written}", file=sys.stderr)
    print(expl.answer_text)
    print(f"wrote {path} ({expl.n_answer} tokens, {len(expl.grids)} vision grid(s))",
          file=sys.stderr)
    print(f"run folder: {out}", file=sys.stderr)
    return ExitCode.OK
