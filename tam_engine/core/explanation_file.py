"""The ``.tam.npz`` file's header: its format name and version, how it is checked on opening, and
how ``meta`` values are written into it. :meth:`Explanation.save` and :meth:`Explanation.load`
are the readers and writers.

A file is checked twice when it is opened, so that a damaged or hostile one is refused with an
:class:`ExplanationFileError` instead of crashing later (in an export, when a token is picked, in
the painter): :func:`check_archive` looks at every member before anything is decompressed
(encryption, compression method, each array's declared dtype and shape against its real size and
the :mod:`~tam_engine.core.limits`), and :func:`check_explanation` checks the loaded arrays'
shapes, dtypes, counts and index ranges against each other, once.
"""

from __future__ import annotations

import json
import math
import zipfile
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from tam_engine.core.errors import ExplanationFileError
from tam_engine.core.limits import limit

if TYPE_CHECKING:
    from tam_engine.core.explanation import Explanation
    from tam_engine.core.token_maps import TokenMaps

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
_DAMAGED_HINT = "Save the explanation again, or explain the media again."
_ZIP_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
_NPY_HEADER_MAX = 10_000  # numpy's own default bound on an .npy header


def damaged(path: Path, why: str) -> ExplanationFileError:
    return ExplanationFileError(f"{path.name} is damaged: {why}.", _DAMAGED_HINT)


def too_large(path: Path, what: str, value: int, name: str) -> ExplanationFileError:
    return ExplanationFileError(
        f"{path.name} holds {what} of {value:,}, more than the limit of {limit(name):,}.",
        f"If the file is genuine and the machine has the memory, raise the limit with "
        f"TAM_LIMIT_{name.upper()}=<number>.")


def check_path(path: Path) -> None:
    """``path`` names an existing regular file (a folder or a FIFO is named as such)."""
    if path.is_dir():
        raise ExplanationFileError(f"{path.name} is a folder, not an explanation file.",
                                   "Choose the .tam.npz file inside it.")
    if path.exists() and not path.is_file():  # a FIFO or a device: reading could block
        raise ExplanationFileError(f"{path.name} is not a regular file.",
                                   "Choose a .tam.npz file.")
    if not path.is_file():
        raise ExplanationFileError(f"{path.name} does not exist.",
                                   "Choose an existing .tam.npz file.")


def check_archive(path: Path) -> None:
    """Check every member of the archive before anything is decompressed."""
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            name = info.filename
            if info.flag_bits & 0x1:
                raise damaged(path, f"its member {name} is encrypted")
            if info.compress_type not in _ZIP_METHODS:
                raise damaged(path, f"its member {name} uses an unsupported compression "
                                    f"(method {info.compress_type})")
            if info.file_size > limit("array_bytes"):
                raise too_large(path, f"an array ({name}) of bytes", info.file_size,
                                "array_bytes")
            if name.endswith((".z", ".jpg")):  # the chunked layout (format 3): zlib blobs and
                continue  # frames, bounded as they are inflated (explanation_store.inflate)
            if not name.endswith(".npy"):
                raise not_an_explanation(path, f"unexpected member {name}")
            with zf.open(info) as fh:
                check_npy_member(path, name.removesuffix(".npy"), fh, info.file_size)


def check_npy_member(path: Path, name: str, fh: Any, size: int) -> None:
    """The member's .npy header against its real size and the limits (a header may claim a
    1 TB array in a file of a few bytes: numpy would allocate it before reading)."""
    fmt = np.lib.format
    try:
        version = fmt.read_magic(fh)
        if version not in ((1, 0), (2, 0)):
            raise ValueError(f"unsupported .npy version {version}")
        reader = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
        shape, _fortran, dtype = reader(fh, max_header_size=_NPY_HEADER_MAX)
    except (ValueError, EOFError, OSError, SyntaxError, TypeError, zlib.error) as exc:
        raise damaged(path, f"the array {name} has an unreadable header ({exc})") from exc
    if dtype.hasobject:
        raise not_an_explanation(path, f"the array {name} holds Python objects, which are "
                                       "never loaded (they could run code)")
    if any(not isinstance(n, int) or n < 0 for n in shape):
        raise damaged(path, f"the array {name} has the shape {shape}")
    if name.endswith("_frames") and len(shape) == 4:
        if shape[0] > limit("media_frames"):
            raise too_large(path, f"a media item ({name}) with a number of frames", shape[0],
                            "media_frames")
        if shape[1] * shape[2] > limit("frame_pixels"):
            raise too_large(path, f"frames ({name}, {shape[2]} x {shape[1]}) with a number "
                            "of pixels", shape[1] * shape[2], "frame_pixels")
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes > size:
        raise damaged(path, f"the array {name} claims {nbytes:,} bytes but holds {size:,}")


def not_an_explanation(path: Path, why: str) -> ExplanationFileError:
    return ExplanationFileError(f"{path.name} is not a TAM explanation file ({why}).",
                                _OPEN_HINT)


def read_header(npz, path: Path) -> dict:
    """The JSON header, checked for our format name and a version this code can read."""
    if "header" not in npz.files:
        raise not_an_explanation(path, "no header")
    try:
        raw = npz["header"]
        if raw.size > limit("json_bytes"):
            raise too_large(path, "a header of bytes", raw.size, "json_bytes")
        header = json.loads(bytes(raw).decode("utf-8"))
    except RecursionError as exc:  # a deeply nested JSON header
        raise not_an_explanation(path, "its header is nested too deeply") from exc
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        if isinstance(exc, ExplanationFileError):
            raise
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


def header_fields(expl: Explanation, version: int, media_meta: list[dict]) -> dict[str, Any]:
    """The JSON header's fields that every layout writes (each adds its own after them)."""
    from dataclasses import asdict

    return {
        "format": FORMAT_NAME,
        "version": version,
        "input_len": int(expl.input_len),
        "token_texts": list(expl.token_texts),
        "grids": [g.to_meta() for g in expl.grids],
        "answer_texts": list(expl.answer.texts),
        "prompt_texts": None if expl.prompt is None else list(expl.prompt.texts),
        "cand_texts": None if expl.candidates is None else expl.candidates.texts,
        "options": asdict(expl.options),
        "media": media_meta,
        "meta": expl.meta,
    }


def json_default(obj):
    """Let ``meta`` hold numpy scalars and arrays (saved as plain numbers and lists)."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"meta value of type {type(obj).__name__} cannot be saved")


# ---------------------------------------------------------------------- the loaded arrays
def _bad(what: str) -> ValueError:
    return ValueError(what)  # Explanation.load turns it into "<file> is damaged: ..."


def _array(a: Any, name: str, ndim: int, kind: str, shape: tuple[int | None, ...] = ()
           ) -> np.ndarray:
    """``a`` as an array of ``ndim`` dimensions, numpy dtype kind in ``kind`` and, where
    ``shape`` gives a size, that size."""
    arr = np.asarray(a)
    if arr.ndim != ndim:
        raise _bad(f"{name} has {arr.ndim} dimension(s), expected {ndim}")
    if arr.dtype.kind not in kind:
        raise _bad(f"{name} holds {arr.dtype} values")
    for axis, want in enumerate(shape):
        if want is not None and arr.shape[axis] != want:
            raise _bad(f"{name} has {arr.shape[axis]} entries along axis {axis}, expected "
                       f"{want}")
    return arr


def _indices(a: np.ndarray, name: str, upper: int) -> None:
    if a.size and (int(a.min()) < 0 or int(a.max()) >= upper):
        raise _bad(f"{name} points outside 0 .. {upper - 1}")


def _finite(a: np.ndarray, name: str) -> None:
    if a.dtype.kind == "f" and a.size and not np.isfinite(a).all():
        raise _bad(f"{name} holds NaN or infinite values")


def _texts(texts: Any, name: str, n: int) -> None:
    if not isinstance(texts, list) or len(texts) != n or not all(isinstance(t, str)
                                                                 for t in texts):
        raise _bad(f"{name} must be {n} texts")


def _check_token_maps(tm: TokenMaps, n_ids: int, n_vision: int, n_columns: int) -> None:
    k = tm.kind
    ids = _array(tm.token_ids, f"{k} token ids", 1, "iu")
    n = ids.size
    _texts(tm.texts, f"{k} texts", n)
    _indices(_array(tm.positions, f"{k} positions", 1, "iu", (n,)), f"{k} positions", n_ids)
    # Stages derived on demand and maps still in the file (the chunked layout) are not read
    # here: the file's own reader checks each block's size as it inflates it.
    for name, stage in tm.stages_held().items():
        _finite(_array(stage, f"{k} {name}", 2, "f", (n, n_vision)), f"{k} {name}")
    if tm.maps_loaded:
        _array(tm.maps, f"{k} maps", 2, "u", (n, n_vision))
    elif tm.maps_shape != (n, n_vision):
        raise _bad(f"{k} maps are {tm.maps_shape}, expected {(n, n_vision)}")
    for name in ("alpha", "norm_lo", "norm_hi"):
        _finite(_array(getattr(tm, name), f"{k} {name}", 1, "f", (n,)), f"{k} {name}")
    _array(tm.relevance, f"{k} relevance", 2, "f", (n, n_columns))
    _array(tm.context, f"{k} context", 2, "b", (n, n_columns))


def check_explanation(ex: Explanation) -> None:
    """Refuse (``ValueError``) arrays whose shapes, dtypes, counts or indices disagree, so that
    nothing downstream (exports, token selection, painting) meets them."""
    ids = _array(ex.ids, "ids", 1, "iu")
    n_ids = ids.size
    if n_ids > limit("tokens"):
        raise _bad(f"{n_ids:,} tokens, more than the limit of {limit('tokens'):,}")
    if not 0 <= ex.input_len <= n_ids:
        raise _bad(f"input_len {ex.input_len} is outside 0 .. {n_ids}")
    _texts(ex.token_texts, "token_texts", n_ids)
    pp = _array(ex.prompt_positions, "prompt_positions", 1, "iu")
    _indices(pp, "prompt_positions", n_ids)
    for gi, g in enumerate(ex.grids):
        if min(g.t, g.h, g.w) < 1:
            raise _bad(f"grid {gi} is {g.t} x {g.h} x {g.w}")
        if g.h * g.w > limit("map_cells"):
            raise _bad(f"grid {gi} has {g.h * g.w:,} cells per frame, more than the limit of "
                       f"{limit('map_cells'):,}")
        _indices(g.positions, f"grid {gi} positions", n_ids)
        if ex.media and not 0 <= g.media_index < len(ex.media):
            raise _bad(f"grid {gi} belongs to media item {g.media_index}, which is missing")
    n_vision = ex.n_vision
    n_columns = pp.size + len(ex.answer)
    _check_token_maps(ex.answer, n_ids, n_vision, n_columns)
    if ex.prompt is not None:
        _check_token_maps(ex.prompt, n_ids, n_vision, n_columns)
    c = ex.candidates
    if c is not None:
        cids = _array(c.ids, "candidate ids", 2, "iu", (len(ex.answer),))
        _array(c.logits, "candidate logits", 2, "f", cids.shape)
        _array(c.probs, "candidate probabilities", 2, "f", cids.shape)
        if not isinstance(c.texts, list) or len(c.texts) != cids.shape[0] or not all(
                isinstance(row, list) and len(row) == cids.shape[1]
                and all(isinstance(t, str) for t in row) for row in c.texts):
            raise _bad("candidate texts do not match the candidate ids")
    for mi, m in enumerate(ex.media):
        slots = [g.t for g in ex.grids if g.media_index == mi]
        if slots:
            _indices(m.frame_slot, f"media {mi} frame slots", max(slots))
        _finite(m.timestamps, f"media {mi} timestamps")
        if not math.isfinite(m.fps) or m.fps < 0:
            raise _bad(f"media {mi} has the frame rate {m.fps}")
