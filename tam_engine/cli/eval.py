"""``tam eval``: the paper's evaluation (Obj-IoU, Func-IoU, F1-IoU, ROUGE-L, METEOR), the
pointing game, and (``--faithfulness``) deletion/insertion AUC by teacher forcing."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tam_engine.cli.exitcodes import ExitCode, Interrupted, UsageError
from tam_engine.cli.options import (
    add_media_options,
    add_model_options,
    check_media_options,
    load_kwargs,
    settings_kwargs,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "eval", help="evaluate a model's token activation maps against segmentation masks",
        description="Caption every item of a dataset with the model, explain every generated "
        "token, and score the maps word by word: Obj-IoU for nouns naming a dataset category, "
        "Func-IoU for function words, their F1-IoU, pixel precision/recall, and ROUGE-L and "
        "(exact-match) METEOR of the caption; the pointing game; and with --faithfulness "
        "the deletion/insertion AUC of the object tokens' maps. Each beside chance lines "
        "(uniform, centre prior, random smooth maps). Resumable: run the same command again "
        "after an "
        "interruption. Data-parallel: accelerate launch -m tam_engine.cli eval ...",
        epilog="Example: tam eval data/coco2014 --model Qwen/Qwen2-VL-2B-Instruct --limit 100")
    p.add_argument("dataset", metavar="DATASET_DIR", help="dataset folder")
    p.add_argument("--model", required=True, metavar="ID_OR_PATH",
                   help="Hugging Face model id (from the local cache) or model folder")
    p.add_argument("--format", choices=("synthetic", "coco", "grandf", "openpsg"),
                   help="dataset layout (detected when omitted)")
    p.add_argument("--limit", type=int, metavar="N", help="evaluate only the first N items")
    p.add_argument("--out", default="results.json", metavar="PATH",
                   help="results file (default: results.json); partial results go beside it")
    p.add_argument("--no-eci", action="store_true", help="ablation: without ECI")
    p.add_argument("--no-filter", action="store_true",
                   help="ablation: without the rank Gaussian filter")
    p.add_argument("--ablation", action="store_true",
                   help="report all four: neither / ECI / filter / both (one generation each)")
    p.add_argument("--prompt", metavar="TEXT",
                   help="caption prompt (default: 'Describe this image in one sentence.')")
    p.add_argument("--max-new-tokens", type=int, default=64, metavar="N")
    p.add_argument("--pointing-tolerance", type=float, default=15.0, metavar="PX",
                   help="pointing game: a map's maximum within PX pixels of the object's mask "
                   "is a hit (default: 15, the usual tolerance)")
    p.add_argument("--faithfulness", metavar="METRICS",
                   help="also measure deletion and/or insertion AUC (comma-separated): the "
                   "most activated cells are deleted from the image (or inserted into a flat "
                   "copy of its mean colour) in steps, and the object token's probability "
                   "recorded, the same answer teacher-forced; for every variant and chance line")
    p.add_argument("--faithfulness-steps", type=int, default=10, metavar="K",
                   help="steps of the deletion/insertion curves (default: 10)")
    p.add_argument("--faithfulness-batch", type=int, default=16, metavar="N",
                   help="perturbed images per forward pass (default: 16)")
    add_media_options(p)
    add_model_options(p)
    p.add_argument("--retry-errors", action="store_true",
                   help="when resuming, run again the items that failed (e.g. unreadable media)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except KeyboardInterrupt:
        raise Interrupted(f"Finished items are kept beside {args.out}; run the same command "
                          "again to continue.") from None


def _run(args: argparse.Namespace) -> int:
    from tam_engine.eval.datasets import open_dataset
    from tam_engine.eval.explainers import model_explain_fn, process_layout
    from tam_engine.eval.faithfulness import FaithfulnessSpec, parse_metrics
    from tam_engine.eval.forcing import model_prob_factory
    from tam_engine.eval.runner import format_summary, run_eval, variants_for
    from tam_engine.inference.loading import load_model
    from tam_engine.inference.settings import GenerationSettings

    if args.limit is not None and args.limit < 1:
        raise UsageError("--limit must be at least 1.")
    check_media_options(args)
    if args.pointing_tolerance < 0:
        raise UsageError("--pointing-tolerance must be at least 0.")
    spec = None
    if args.faithfulness is not None:
        try:
            spec = FaithfulnessSpec(parse_metrics(args.faithfulness), args.faithfulness_steps,
                                    args.faithfulness_batch)
        except ValueError as exc:
            raise UsageError(f"--faithfulness: {exc}.",
                             "Example: --faithfulness deletion,insertion --faithfulness-steps "
                             "10") from None
    elif args.faithfulness_steps != 10 or args.faithfulness_batch != 16:
        raise UsageError("--faithfulness-steps and --faithfulness-batch need --faithfulness.",
                         "Add --faithfulness deletion,insertion.")
    if args.ablation and (args.no_eci or args.no_filter):
        raise UsageError("--ablation already reports the runs without ECI and without the "
                         "filter", "Drop --no-eci/--no-filter.")
    layout = process_layout()
    dataset = open_dataset(args.dataset, args.format)
    variants = variants_for(args.no_eci, args.no_filter, args.ablation)
    device = layout.device if layout.world_size > 1 and args.device == "auto" else args.device
    settings = GenerationSettings(max_new_tokens=args.max_new_tokens,
                                  **settings_kwargs(args, device))
    loaded = load_model(args.model, **load_kwargs(args, device))
    explain_fn = model_explain_fn(loaded, settings, args.prompt)
    faithfulness = (spec, model_prob_factory(loaded, settings, args.prompt or "")
                    ) if spec is not None else None
    # What makes two runs' records comparable (--limit is not: raising it resumes a run).
    config = {"model": args.model, "prompt": args.prompt, "max_new_tokens": args.max_new_tokens,
              "dtype": args.dtype, "min_pixels": args.min_pixels, "max_pixels": args.max_pixels,
              "fps": args.fps, "max_frames": args.max_frames}
    if layout.rank == 0 and dataset.skipped:
        print(f"tam eval: {dataset.skipped} annotated image(s) were not found and are skipped",
              file=sys.stderr)
    summary = run_eval(dataset, explain_fn, variants, Path(args.out), config=config,
                       limit=args.limit, rank=layout.rank, world_size=layout.world_size,
                       barrier=layout.barrier, progress=not args.no_progress,
                       retry_errors=args.retry_errors, faithfulness=faithfulness,
                       pointing_tolerance=args.pointing_tolerance)
    if summary is not None:
        print(format_summary(summary))
        print(f"results: {args.out}")
    return ExitCode.OK
