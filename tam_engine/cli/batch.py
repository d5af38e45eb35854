"""``tam explain`` over many items: a folder, a quoted glob, or a JSONL/CSV manifest.

:mod:`tam_engine.cli.explain` hands over here when its media argument names many items
(:func:`~tam_engine.batch.items.is_batch_source`); the work is :mod:`tam_engine.batch`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tam_engine.cli.exitcodes import ExitCode, Interrupted, UsageError
from tam_engine.cli.options import check_media_options, load_kwargs, settings_kwargs

DEFAULT_BATCH_OUT = "tam-batch"


def add_batch_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group(
        "many items (MEDIA is a folder, a quoted glob such as 'data/*.jpg', or a manifest "
        ".jsonl/.csv with media, prompt, id, answer)",
        "One .tam.npz per item under OUT_DIR/items and OUT_DIR/index.jsonl. Resumable: run the "
        "same command again. Data-parallel: accelerate launch -m tam_engine.cli explain ...")
    g.add_argument("--retry-errors", action="store_true",
                   help="when resuming, run again the items that failed")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    out = Path(getattr(args, "out", None) or DEFAULT_BATCH_OUT)
    try:
        return _run(args, out)
    except KeyboardInterrupt:
        raise Interrupted(f"Finished items are kept in {out}; run the same command again to "
                          "continue.") from None


def _explain_fn(args: argparse.Namespace, device: str):
    from tam_engine.batch.items import BatchItem
    from tam_engine.core.explanation import Explanation, TamOptions
    from tam_engine.inference.loading import load_model
    from tam_engine.inference.pipeline import run_and_explain
    from tam_engine.inference.settings import GenerationSettings
    from tam_engine.media.io import load_media

    settings = GenerationSettings(max_new_tokens=args.max_new_tokens, top_k=args.top_k,
                                  **settings_kwargs(args, device))
    options = TamOptions(eci=not args.no_eci, filter=not args.no_filter)
    loaded = load_model(args.model, **load_kwargs(args, device))

    def explain(item: BatchItem) -> Explanation:
        media = load_media(list(item.media), fps=args.fps, max_frames=args.max_frames)
        # A manifest's answer is explained as given (teacher forcing), not generated.
        return run_and_explain(loaded, media, item.prompt, settings, options,
                               answer=item.answer)

    return explain


def _run(args: argparse.Namespace, out: Path) -> int:
    from tam_engine.batch.items import collect_items
    from tam_engine.batch.runner import run_batch
    from tam_engine.core import resources
    from tam_engine.eval.explainers import process_layout

    if args.max_new_tokens < 1:
        raise UsageError("--max-new-tokens must be at least 1.")
    if args.export:
        raise UsageError("--export writes the exports of one run.",
                         f"For a batch, write a report afterwards: tam export {out} report")
    check_media_options(args)
    items = collect_items(args.media[0], args.prompt)
    if args.model == "demo":
        args.model = str(resources.demo_model_path())
    layout = process_layout()
    device = layout.device if layout.world_size > 1 and args.device == "auto" else args.device
    # What makes two runs' items comparable: a resume with other settings is refused.
    config = {"model": args.model, "max_new_tokens": args.max_new_tokens, "top_k": args.top_k,
              "eci": not args.no_eci, "filter": not args.no_filter, "dtype": args.dtype,
              "min_pixels": args.min_pixels, "max_pixels": args.max_pixels, "fps": args.fps,
              "max_frames": args.max_frames}
    if layout.rank == 0:
        print(f"{len(items)} item(s); loading {args.model} ...", file=sys.stderr)
    explain = _explain_fn(args, device)
    summary = run_batch(items, explain, out, config=config, rank=layout.rank,
                        world_size=layout.world_size, barrier=layout.barrier,
                        progress=not args.no_progress, retry_errors=args.retry_errors)
    if summary is not None:
        print(f"{summary.n_ok} of {summary.n_items} item(s) explained, {summary.n_errors} "
              f"failed (see 'error' in the index); index: {summary.index}", file=sys.stderr)
    return ExitCode.OK


def run_report(args: argparse.Namespace) -> int:
    """``tam export BATCH report``: the batch as one self-contained HTML page."""
    from tqdm import tqdm

    from tam_engine.batch.report import write_report

    folder = Path(args.explanation)
    if args.what != "report":
        raise UsageError(f"{folder} is a folder: only a report is written for a batch.",
                         f"tam export {folder} report")
    if not folder.is_dir():
        raise UsageError(f"a report is written for a batch folder, and {folder} is not one.",
                         "Give the --out folder of `tam explain FOLDER|GLOB|MANIFEST`.")
    out = Path(args.out) if args.out else folder / "report.html"
    with tqdm(unit="item", desc="report", file=sys.stderr, dynamic_ncols=True) as bar:
        def tick(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        try:
            path = write_report(folder, out, cmap=args.export_cmap,
                                opacity=args.export_opacity, tick=tick)
        except KeyboardInterrupt:
            raise Interrupted("Nothing was written.") from None  # written atomically
    print(f"wrote {path}", file=sys.stderr)
    return ExitCode.OK
