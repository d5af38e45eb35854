"""Options shared by the commands that run a model (``tam explain``, ``tam eval``).

One definition each, so the two commands spell, default and document them the same way, and
one place turns them into :func:`~tam_engine.inference.loading.load_model` arguments and
:class:`~tam_engine.inference.settings.GenerationSettings`.
"""

from __future__ import annotations

import argparse
from typing import Any

from tam_engine.cli.exitcodes import UsageError


def add_media_options(p: argparse.ArgumentParser) -> None:
    """How videos are sampled and how large images are made before the model sees them."""
    p.add_argument("--fps", type=float, default=2.0, help="video sampling rate (default: 2)")
    p.add_argument("--max-frames", type=int, default=16, metavar="N",
                   help="at most N frames per video, spread over the clip (default: 16)")
    p.add_argument("--min-pixels", type=int, metavar="N",
                   help="smallest resized image area (Qwen2-VL family; default: the model's)")
    p.add_argument("--max-pixels", type=int, metavar="N",
                   help="largest resized image area (Qwen2-VL family; default: the model's)")


def add_model_options(p: argparse.ArgumentParser) -> None:
    """Where the model runs and what its loading may do."""
    p.add_argument("--device", default="auto", help="auto (cuda > mps > cpu), cpu, cuda, cuda:1, mps")
    p.add_argument("--dtype", default="auto", help="auto, float32, bfloat16, float16")
    p.add_argument("--trust-remote-code", action="store_true",
                   help="run the model repository's own code (only if you trust it)")
    p.add_argument("--allow-pickle", action="store_true",
                   help="accept pickled .bin weights when no safetensors exist")


def check_media_options(args: argparse.Namespace) -> None:
    """Refuse out-of-range media options before anything is loaded (the ranges and limits are
    :meth:`GenerationSettings.check`'s, named here as the options are spelled)."""
    from tam_engine.core.limits import LimitError, check_count, check_positive_number

    try:
        check_positive_number(args.fps, "video_fps", "--fps")
        check_count(args.max_frames, "max_frames", "--max-frames", 1)
        for name in ("min_pixels", "max_pixels"):
            value = getattr(args, name)
            if value is not None:
                check_count(value, "pixels", f"--{name.replace('_', '-')}", 1)
    except LimitError as exc:
        raise UsageError(exc.message, exc.hint) from None


def load_kwargs(args: argparse.Namespace, device: str | None = None) -> dict[str, Any]:
    """Keyword arguments of :func:`~tam_engine.inference.loading.load_model` from the model options."""
    return {"device": device or args.device, "dtype": args.dtype,
            "trust_remote_code": args.trust_remote_code, "allow_pickle": args.allow_pickle}


def settings_kwargs(args: argparse.Namespace, device: str | None = None) -> dict[str, Any]:
    """The :class:`~tam_engine.inference.settings.GenerationSettings` fields the shared options set."""
    return {"device": device or args.device, "dtype": args.dtype,
            "trust_remote_code": args.trust_remote_code, "video_fps": args.fps,
            "max_frames": args.max_frames, "min_pixels": args.min_pixels,
            "max_pixels": args.max_pixels}
