"""``tam explain``: run a model on images/videos and a prompt, and save the explanation."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tam_engine.batch.items import is_batch_source
from tam_engine.cli import batch as cli_batch
from tam_engine.cli import export as cli_export
from tam_engine.cli.exitcodes import ExitCode, UsageError
from tam_engine.cli.options import (
    add_media_options,
    add_model_options,
    check_media_options,
    load_kwargs,
    settings_kwargs,
)

EXPLANATION_FILE = "explanation.tam.npz"
DEMO_MODEL = "demo"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "explain", help="explain each generated token of a multimodal model",
        description="Generate an answer to PROMPT about the given images/videos with a Hugging "
        "Face vision-language model, and write the Token Activation Maps of every token to "
        f"OUT_DIR/{EXPLANATION_FILE}.")
    p.add_argument("media", nargs="*", metavar="MEDIA",
                   help="image or video files, in order (default: the bundled sample image)")
    p.add_argument("--model", default=DEMO_MODEL, metavar="ID_OR_PATH",
                   help="Hugging Face model id (cache/offline aware) or local model folder "
                   "(default: the bundled demo model)")
    p.add_argument("--prompt", default=None, metavar="TEXT",
                   help="question or instruction (default: 'Describe this image.', or "
                   "'What is happening in this video?' for a video)")
    p.add_argument("--out", default="tam-out", metavar="DIR",
                   help="output folder (created; default: ./tam-out)")
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
        args.prompt = "What is happening in this video?" if video else "Describe this image."


def run(args: argparse.Namespace) -> int:
    if is_batch_source(args.media):  # a folder, a glob or a manifest: many items
        return cli_batch.run(args)
    from tqdm import tqdm

    from tam_engine.core.explanation import TamOptions
    from tam_engine.inference.loading import load_model
    from tam_engine.inference.pipeline import run_and_explain
    from tam_engine.inference.settings import GenerationSettings
    from tam_engine.media.io import load_media

    _resolve_defaults(args)
    if args.max_new_tokens < 1:
        raise UsageError("--max-new-tokens must be at least 1.")
    check_media_options(args)
    media = load_media(args.media, fps=args.fps, max_frames=args.max_frames)
    settings = GenerationSettings(max_new_tokens=args.max_new_tokens, top_k=args.top_k,
                                  **settings_kwargs(args))
    tam_options = TamOptions(eci=not args.no_eci, filter=not args.no_filter)
    export_options = cli_export.ExportOptions.from_args(args)
    print(f"loading {args.model} ...", file=sys.stderr)
    loaded = load_model(args.model, **load_kwargs(args))
    with tqdm(total=args.max_new_tokens, unit="tok", desc="generating", file=sys.stderr,
              dynamic_ncols=True) as bar:
        def on_token(step: int, text: str) -> None:
            bar.update(1)
            bar.set_postfix_str(repr(text)[1:-1][:20])

        expl = run_and_explain(loaded, media, args.prompt, settings, tam_options,
                               on_token=on_token)
        bar.total = bar.n
        bar.refresh()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = expl.save(out / EXPLANATION_FILE)
    for what in args.export:
        written = cli_export.write_export(expl, what, cli_export.beside(path, what),
                                           export_options)
        print(f"wrote {written}", file=sys.stderr)
    print(expl.answer_text)
    print(f"wrote {path} ({expl.n_answer} tokens, {len(expl.grids)} vision grid(s))",
          file=sys.stderr)
    return ExitCode.OK
