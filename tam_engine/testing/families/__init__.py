"""The family matrix: every supported model family as a tiny random model with its real
processor, the media cases it must handle, and how to read, from the processor's own
``pixel_values``, which vision token saw which pixels (the geometry oracle's ground truth).

Each module of this package defines ``SPECS: list[FamilySpec]`` for a group of families; the
modules are found by listing the package, so adding a family never edits a shared list.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

#: The media cases of the matrix (see :mod:`tam_engine.testing.geometry` for the media).
CASES = ("square", "wide", "tall", "two", "large", "video")


@dataclass(frozen=True)
class FamilySpec:
    """One family of the matrix.

    Attributes
    ----------
    name
        The family key (the config's ``model_type`` where that is unambiguous).
    build
        ``build(out_dir)`` writes a loadable tiny model folder (``save_pretrained`` of the model
        and its real processor).
    cases
        The cases this family supports; the others must be refused with a clear message.
    vision_brightness
        ``vision_brightness(prepared) -> (n_vision,)``: the mean brightness of the pixels each
        vision token saw, in the flattened vision order of ``prepared.spans``, computed from the
        processor's own per-patch input in ``prepared.model_inputs`` (never from the adapter's
        geometry). ``None`` where the family is only refused.
    refused
        Cases refused on purpose, with the reason the refusal names.
    """

    name: str
    build: Callable[[Path], Any]
    cases: tuple[str, ...]
    vision_brightness: Callable[[Any], np.ndarray] | None = None
    refused: dict[str, str] = field(default_factory=dict)


def family_specs() -> list[FamilySpec]:
    """Every family of the matrix, from every module of this package."""
    specs: list[FamilySpec] = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        specs.extend(getattr(module, "SPECS", []))
    return specs


def family_spec(name: str) -> FamilySpec:
    """The spec of family ``name``; ``ValueError`` listing the known ones otherwise."""
    specs = {s.name: s for s in family_specs()}
    if name not in specs:
        raise ValueError(f"unknown tiny family {name!r}; known: {', '.join(sorted(specs))}")
    return specs[name]
