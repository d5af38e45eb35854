"""Options shared by the commands that run a model (``tam explain``, ``tam eval``).

One definition each, so the two commands spell, default and document them the same way, and
one place turns them into :func:`~tam_engine.inference.loading.load_model` arguments and
:class:`~tam_engine.inference.settings.GenerationSettings`.
"""

from __future__ import annotations

import argparse
from typing import Any

from tam_engine.cli.exitcodes import UsageError
from tam_engine.inference.model_placement import ModelPlacement, Quantization, parse_max_memory

#: accelerate's automatic device maps.
DEVICE_MAPS = ("auto", "balanced", "balanced_low_0", "sequential")


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
    big = p.add_argument_group(
        "big models", "split a model over the GPUs, CPU memory and disk (accelerate), or load "
        "it in 4/8 bits (bitsandbytes; lm_head stays unquantised); `tam models --plan MODEL` "
        "proposes one")
    big.add_argument("--device-map", choices=DEVICE_MAPS, default=None,
                     help="split the model: auto fills the GPUs in order, then CPU memory, then "
                     "disk (overrides --device)")
    big.add_argument("--max-memory", metavar="DEV=SIZE[,...]", default=None,
                     help="memory each device may take, e.g. 0=20GiB,1=20GiB,cpu=64GiB "
                     "(implies --device-map auto)")
    big.add_argument("--offload-folder", metavar="DIR", default=None,
                     help="folder for the weights offloaded to disk (implies --device-map auto)")
    bits = big.add_mutually_exclusive_group()
    bits.add_argument("--load-in-4bit", action="store_true",
                      help="quantise the linear layers to 4 bits (NF4; needs tam-desktop[quant])")
    bits.add_argument("--load-in-8bit", action="store_true",
                      help="quantise the linear layers to 8 bits (needs tam-desktop[quant])")


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
    kwargs: dict[str, Any] = {"device": device or args.device, "dtype": args.dtype,
                              "trust_remote_code": args.trust_remote_code,
                              "allow_pickle": args.allow_pickle}
    placement = placement_from_args(args)
    if not placement.is_single_device:
        kwargs["placement"] = placement
    return kwargs


def placement_from_args(args: argparse.Namespace) -> ModelPlacement:
    """The big-model options as a :class:`ModelPlacement` (one device when none is given)."""
    from tam_engine.core.errors import TamError

    try:
        max_memory = (parse_max_memory(args.max_memory)
                      if getattr(args, "max_memory", None) else None)
    except TamError as exc:
        raise UsageError(exc.message, exc.hint) from exc
    device_map = getattr(args, "device_map", None)
    folder = getattr(args, "offload_folder", None)
    if device_map is None and (max_memory or folder):
        device_map = "auto"
    quant: Quantization | None = ("4bit" if getattr(args, "load_in_4bit", False) else
             "8bit" if getattr(args, "load_in_8bit", False) else None)
    return ModelPlacement(device_map=device_map, max_memory=max_memory, offload_folder=folder,
                          quantization=quant)


def settings_kwargs(args: argparse.Namespace, device: str | None = None) -> dict[str, Any]:
    """The :class:`~tam_engine.inference.settings.GenerationSettings` fields the shared options set."""
    return {"device": device or args.device, "dtype": args.dtype,
            "trust_remote_code": args.trust_remote_code, "video_fps": args.fps,
            "max_frames": args.max_frames, "min_pixels": args.min_pixels,
            "max_pixels": args.max_pixels}
