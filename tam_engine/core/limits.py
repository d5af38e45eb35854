"""How much one request may ask for: every size read from an argument or a file is checked
against one of these limits before anything is allocated.

A careless script or a hostile file can ask for a 30000-pixel-wide figure, a million frames per
token or an array "of 1 TB": refused at once with the limit and the way to raise it, instead of
a machine swapping for minutes or a crash. The defaults are generous for real use; each can be
raised with an environment variable ``TAM_LIMIT_<NAME>`` (e.g. ``TAM_LIMIT_EXPORT_WIDTH=16384``).
"""

from __future__ import annotations

import math
import os

from tam_engine.core.errors import TamError

__all__ = ["LIMITS", "LimitError", "check_count", "check_positive_number", "limit"]


#: name -> (default, what it bounds)
LIMITS: dict[str, tuple[int, str]] = {
    "max_new_tokens": (4096, "new tokens generated in one run"),
    "max_frames": (1024, "video frames sampled per video"),
    "video_fps": (60, "video sampling rate (frames per second)"),
    "pixels": (16_777_216, "resized image area in pixels (--min-pixels/--max-pixels)"),
    "prompt_chars": (20_000, "characters of a prompt"),
    "answer_chars": (20_000, "characters of a given answer (teacher forcing)"),
    "export_width": (8192, "width of an exported image in pixels"),
    "export_frames": (100_000, "frames of an exported MP4"),
    "export_fps": (240, "frame rate of an exported MP4"),
    "frame_pixels": (100_000_000, "pixels of one media frame"),
    "media_frames": (100_000, "frames of one media item"),
    "tokens": (1_000_000, "tokens of an explanation"),
    "map_cells": (1_000_000, "cells of one token's map grid"),
    "array_bytes": (8 * 2**30, "bytes of one array in an explanation file"),
    "json_bytes": (64 * 2**20, "bytes of an explanation file's JSON header"),
    "synth_size": (4096, "frame size of a synthetic dataset in pixels"),
    "synth_items": (100_000, "images or videos of a synthetic dataset"),
}


class LimitError(TamError):
    """A request (an argument or a file's content) exceeds one of the :data:`LIMITS`."""


def _env_name(name: str) -> str:
    return f"TAM_LIMIT_{name.upper()}"


def limit(name: str) -> int:
    """The limit called ``name``: its default, or ``TAM_LIMIT_<NAME>`` when that is a whole
    number (a malformed value is ignored rather than lifting the limit)."""
    default = LIMITS[name][0]
    raw = os.environ.get(_env_name(name), "").strip()
    try:
        value = int(raw)
    except ValueError:
        return default
    return value if value > 0 else default


def _too_large(name: str, what: str, value: object) -> LimitError:
    n = limit(name)
    return LimitError(f"{what} is {value}, more than the limit of {n:,} "
                      f"({LIMITS[name][1]}).",
                      f"Ask for less, or raise the limit with {_env_name(name)}=<number> if "
                      "the machine has the memory and time for it.")


def check_count(value: object, name: str, what: str, minimum: int = 0) -> int:
    """``value`` as an int in ``minimum .. limit(name)``; a :class:`LimitError` otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (
            isinstance(value, float) and not value.is_integer()):
        raise LimitError(f"{what} must be a whole number, not {value!r}.")
    if value < minimum:
        raise LimitError(f"{what} must be at least {minimum}, not {value}.")
    if value > limit(name):
        raise _too_large(name, what, value)
    return int(value)


def check_positive_number(value: float, name: str, what: str) -> float:
    """``value`` as a finite float in ``(0, limit(name)]``; a :class:`LimitError` otherwise."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise LimitError(f"{what} must be a number, not {value!r}.") from None
    if not math.isfinite(number) or number <= 0:
        raise LimitError(f"{what} must be a positive, finite number, not {value!r}.")
    if number > limit(name):
        raise _too_large(name, what, value)
    return number
