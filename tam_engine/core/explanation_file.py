"""The ``.tam.npz`` file's header: its format name and version, how it is checked on opening, and
how ``meta`` values are written into it. :meth:`Explanation.save` and :meth:`Explanation.load`
are the readers and writers."""

from __future__ import annotations

import json
import zipfile
import zlib
from pathlib import Path

import numpy as np

from tam_engine.core.errors import ExplanationFileError

FORMAT_NAME = "tam-explanation"
#: The newest format this code reads and writes. Version 2 added each grid's geometry (``box``,
#: ``role``); a file whose grids all show their whole media item is still written as version 1,
#: which older releases open, while a cropped or tiled one is version 2, which they refuse rather
#: than draw its maps over the wrong region.
#: Version 3 is the chunked layout of long explanations (core.explanation_store).
FORMAT_VERSION = 3
GEOMETRY_VERSION = 2
PLAIN_GEOMETRY_VERSION = 1

_OPEN_HINT = "Open a .tam.npz file saved by tam-desktop or by `tam explain`."


def not_an_explanation(path: Path, why: str) -> ExplanationFileError:
    return ExplanationFileError(f"{path.name} is not a TAM explanation file ({why}).",
                                _OPEN_HINT)


def read_header(npz, path: Path) -> dict:
    """The JSON header, checked for our format name and a version this code can read."""
    if "header" not in npz.files:
        raise not_an_explanation(path, "no header")
    try:
        header = json.loads(bytes(npz["header"]).decode("utf-8"))
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise not_an_explanation(path, f"unreadable header: {exc}") from exc
    if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
        raise not_an_explanation(path, "another kind of .npz file")
    try:
        version = int(header.get("version", 0))
    except (TypeError, ValueError) as exc:
        raise not_an_explanation(path, "no valid format version") from exc
    if version > FORMAT_VERSION:
        raise ExplanationFileError(
            f"{path.name} was written by a newer tam-desktop (file format {version}; this "
            f"version reads format {FORMAT_VERSION} and older).",
            "Upgrade tam-desktop to open it.")
    return header


def json_default(obj):
    """Let ``meta`` hold numpy scalars and arrays (saved as plain numbers and lists)."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"meta value of type {type(obj).__name__} cannot be saved")
