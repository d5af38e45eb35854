"""The chunked ``.tam.npz`` layout (format 3) for long explanations: small, quick to write, and
readable a token or a frame at a time.

The file is still a zip archive, so ``numpy.load`` and :func:`explanation_file.read_header`
read its header. Members:

- ``header.npy``: the JSON header (as in formats 1-2) plus ``"layout"``: each token set's map
  tiling, each media item's frame codec, and whether the float stages were kept;
- arrays as ``.npy`` members named as in formats 1-2 (``ids``, ``answer_alpha``,
  ``grid0_positions``, ``media0_frame_slot``, ...): deflated up to 256 KiB, above it a zlib
  stream (level 1, compressed on the thread pool) in a stored ``.npy.z`` member;
- ``{kind}_maps/{r}_{c}.z``: the uint8 maps cut into tiles of ``row_block`` tokens (the
  header's; :data:`ROW_BLOCK` when written now, 16 in files written before) by
  ``cols`` (whole temporal slots of one grid, about :data:`TILE_CELLS` cells), each tile a zlib
  stream in a stored member, so one token (one row of tiles) or one frame (one column) is read
  without the rest;
- the float stages' source (:class:`~tam_engine.core.stages.StageSource`: the float32 vision
  scores, each token's class and ECI weights) when it is at most :data:`STAGE_LIMIT` bytes:
  every stage then reopens bit-identical; otherwise only the final maps are kept and asking
  for a float stage says so (:class:`~tam_engine.core.token_maps.StagesUnavailable`);
- frames: one deflated ``media{i}_frames.npy`` (exact) up to :data:`LOSSLESS_FRAMES_LIMIT`
  bytes, above it one JPEG (quality :data:`JPEG_QUALITY`, 4:4:4) per frame,
  ``media{i}_frames/{f}.jpg``, decoded on demand.

Tiles and frames are compressed on several threads (zlib and OpenCV release the GIL).
"""

from __future__ import annotations

import io
import json
import os
import struct
import threading
import zipfile
import zlib
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from tam_engine.core.atomic import atomic_write_bytes
from tam_engine.core.errors import ExplanationFileError
from tam_engine.core.explanation_file import (
    check_npy_member,
    header_fields,
    json_default,
)
from tam_engine.core.inputs import Candidates
from tam_engine.core.limits import limit
from tam_engine.core.media import LazyFrames, MediaItem
from tam_engine.core.spans import FULL_BOX, VisionGrid, grid_slices
from tam_engine.core.stages import StageSource
from tam_engine.core.token_maps import FLOAT_STAGES, TokenKind, TokenMaps
from tam_engine.core.tokens import special_from_texts

if TYPE_CHECKING:
    from tam_engine.core.explanation import Explanation

CHUNKED_VERSION = 3
# Tokens per row of tiles. Reading one token inflates its whole row of tiles, so the row is
# short: 4 tokens of 128 slots x 18 x 18 inflate in ~0.5 ms (16 took 2 ms of every token
# switch in the app); the compressed size does not depend on it (each tile is ~16 KiB or more).
ROW_BLOCK = 4
#: Inflated row blocks kept per token set (bytes): a few hundred tokens of a long video.
BLOCK_CACHE_BYTES = 16 * 2**20
TILE_CELLS = 16_384
STAGE_LIMIT = 32 * 2**20
LOSSLESS_FRAMES_LIMIT = 32 * 2**20
JPEG_QUALITY = 95
_THREADS = max(1, min(4, os.cpu_count() or 1))
_BIG_ARRAY = 256 * 1024
_SCALARS = ("token_ids", "positions", "alpha", "relevance", "context", "norm_lo", "norm_hi")
_SOURCE = ("raw_class", "weights", "rel_lo", "rel_hi")


def column_blocks(grids: list[VisionGrid]) -> list[tuple[int, int]]:
    """Column ranges of the map tiles: whole temporal slots of one grid, ~TILE_CELLS cells."""
    out = []
    for g, s in zip(grids, grid_slices(grids)):
        per = g.h * g.w
        slots = max(1, TILE_CELLS // max(per, 1))
        for t0 in range(0, g.t, slots):
            out.append((s.start + t0 * per, s.start + min(g.t, t0 + slots) * per))
    return out


def _npy(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.ascontiguousarray(arr), allow_pickle=False)
    return buf.getvalue()


def _jpeg(frame: np.ndarray) -> bytes:
    import cv2

    ok, data = cv2.imencode(".jpg", np.ascontiguousarray(frame[..., ::-1]),
                            [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY,
                             cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444])
    if not ok:
        raise ValueError("a frame could not be encoded as JPEG")
    return data.tobytes()


def _stage_arrays(tm: TokenMaps, limit: int) -> tuple[str, dict[str, np.ndarray]]:
    """What to keep of a set's float stages: its source, given arrays, or nothing."""
    src = tm.source
    if src is not None and src.vision.nbytes + src.weights.nbytes <= limit:
        return "source", {n: np.asarray(getattr(src, n)) for n in _SOURCE}
    if src is None and tm.has_float_stages and 3 * tm.maps.size * 4 <= limit:
        return "arrays", {n: tm.stage(n) for n in FLOAT_STAGES}
    return "none", {}


def save_chunked(expl: Explanation, path: str | os.PathLike, *,
                 stage_limit: int | None = None,
                 lossless_frames_limit: int | None = None) -> Path:
    """Write ``expl`` in the chunked layout, atomically (limits default to the module's)."""
    path = Path(path)
    stage_limit = STAGE_LIMIT if stage_limit is None else stage_limit
    if lossless_frames_limit is None:
        lossless_frames_limit = LOSSLESS_FRAMES_LIMIT
    small: dict[str, np.ndarray] = {
        "ids": expl.ids.astype(np.int64),
        "prompt_positions": expl.prompt_positions.astype(np.int64),
        "is_special": expl.is_special.astype(bool),
    }
    for gi, g in enumerate(expl.grids):
        small[f"grid{gi}_positions"] = g.positions
    cols = column_blocks(expl.grids)
    jobs: list[tuple[str, object]] = []  # (member, callable giving its bytes)
    sets, vision_saved = {}, False
    for tm in (expl.answer, expl.prompt):
        if tm is None:
            continue
        for name in _SCALARS:
            small[f"{tm.kind}_{name}"] = np.asarray(getattr(tm, name))
        maps = tm.maps
        small[f"{tm.kind}_visual_strength"] = tm.visual_strength()
        for r0 in range(0, len(tm), ROW_BLOCK):
            for ci, (c0, c1) in enumerate(cols):
                tile = maps[r0:r0 + ROW_BLOCK, c0:c1]
                jobs.append((f"{tm.kind}_maps/{r0 // ROW_BLOCK}_{ci}.z",
                             lambda t=tile: zlib.compress(np.ascontiguousarray(t).data, 1)))
        kept, arrays = _stage_arrays(tm, stage_limit)
        for name, arr in arrays.items():
            small[f"{tm.kind}_{'src_' if kept == 'source' else ''}{name}"] = arr
        if kept == "source" and not vision_saved:
            assert tm.source is not None
            small["stage_vision"] = tm.source.vision
            vision_saved = True
        sets[tm.kind] = {"n": len(tm), "stages": kept,
                         "chunk_tokens": tm.source.chunk_tokens if tm.source else 0}
    media_meta = []
    for mi, m in enumerate(expl.media):
        small[f"media{mi}_frame_slot"] = m.frame_slot
        small[f"media{mi}_timestamps"] = m.timestamps
        n, h, w, _ = m.frames.shape
        codec = "npy" if m.kind == "image" or n * h * w * 3 <= lossless_frames_limit else "jpeg"
        if codec == "npy":
            small[f"media{mi}_frames"] = np.asarray(m.frames)
        else:
            for f in range(n):
                # Frames reopened from a file keep their JPEG bytes: no second generation loss.
                enc = (m.frames.blob if isinstance(m.frames, JpegFrames)
                       else lambda f, m=m: _jpeg(m.frames[f]))
                jobs.append((f"media{mi}_frames/{f}.jpg", lambda enc=enc, f=f: enc(f)))
        media_meta.append({"kind": m.kind, "path": m.path, "fps": m.fps, "codec": codec,
                           "shape": [n, h, w, 3]})
    header = header_fields(expl, CHUNKED_VERSION, media_meta)
    header["layout"] = {"row_block": ROW_BLOCK, "cols": [list(c) for c in cols], "sets": sets}
    if expl.candidates is not None:
        small["cand_ids"] = expl.candidates.ids
        small["cand_logits"] = expl.candidates.logits
        small["cand_probs"] = expl.candidates.probs
    text = json.dumps(header, default=json_default).encode("utf-8")
    small["header"] = np.frombuffer(text, dtype=np.uint8)

    # Large arrays (the stage source, relevances) are compressed with the tiles, on the pool,
    # at zlib level 1; small ones stay plain deflated .npy members.
    for name in [n for n, a in small.items() if a.nbytes > _BIG_ARRAY and n != "header"]:
        big = small.pop(name)
        jobs.append((name + ".npy.z", lambda a=big: zlib.compress(_npy(a), 1)))
    buf = io.BytesIO()
    with ThreadPoolExecutor(_THREADS) as pool, \
            zipfile.ZipFile(buf, "w", allowZip64=True) as zf:
        # The pool compresses while this thread writes the small members, then each blob as
        # it comes (in order): the archive is written alongside the compression, not after.
        blobs = pool.map(lambda job: job[1](), jobs)
        for name, arr in small.items():
            zf.writestr(zipfile.ZipInfo(name + ".npy"), _npy(arr), zipfile.ZIP_DEFLATED, 6)
        for (name, _), blob in zip(jobs, blobs):
            zf.writestr(zipfile.ZipInfo(name), blob, zipfile.ZIP_STORED)
    atomic_write_bytes(path, buf.getbuffer())
    return path


# ---------------------------------------------------------------------- reading
class _Archive:
    """Stored members of one file read on demand, by offset: the zip directory (hundreds of
    tiles and frames) is parsed once, and each read opens the file, seeks and checks the CRC.
    Refuses once the file changed on disk."""

    def __init__(self, path: Path, infos: list[zipfile.ZipInfo]) -> None:
        self.path = path
        st = path.stat()
        self.signature = (st.st_size, st.st_mtime_ns)
        self.members = {i.filename: i for i in infos if i.compress_type == zipfile.ZIP_STORED}

    def read(self, names: list[str]) -> list[bytes]:
        try:
            st = self.path.stat()
            if (st.st_size, st.st_mtime_ns) != self.signature:
                raise ExplanationFileError(
                    f"{self.path.name} changed on disk after it was opened.",
                    "Open it again.")
            out = []
            with open(self.path, "rb") as fh:
                for name in names:
                    info = self.members[name]
                    fh.seek(info.header_offset)
                    local = fh.read(30)
                    if local[:4] != b"PK\x03\x04":
                        raise zipfile.BadZipFile(f"no local header for {name}")
                    n, m = struct.unpack("<HH", local[26:30])
                    fh.seek(info.header_offset + 30 + n + m)
                    data = fh.read(info.compress_size)
                    if zlib.crc32(data) != info.CRC:
                        raise zipfile.BadZipFile(f"bad CRC for {name}")
                    out.append(data)
            return out
        except (OSError, KeyError, zipfile.BadZipFile, struct.error) as exc:
            if isinstance(exc, ExplanationFileError):
                raise
            raise ExplanationFileError(
                f"{self.path.name} cannot be read any more ({type(exc).__name__}: {exc}).",
                "Open it again, or save the explanation again.") from exc


class StoredMaps:
    """One token set's uint8 maps in a file, read a row block at a time (with a small cache)."""

    def __init__(self, archive: _Archive, kind: str, n: int, n_vision: int, row_block: int,
                 cols: list[tuple[int, int]]) -> None:
        self.archive, self.kind = archive, kind
        self.shape = (n, n_vision)
        self.row_block, self.cols = row_block, cols
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()  # views and exports may read from different threads

    def _block(self, rb: int) -> np.ndarray:
        with self._lock:
            if rb in self._cache:
                self._cache.move_to_end(rb)
                return self._cache[rb]
        names = [f"{self.kind}_maps/{rb}_{ci}.z" for ci in range(len(self.cols))]
        out = self._decode(rb, self.archive.read(names))
        with self._lock:
            self._cache[rb] = out
            keep = max(8, BLOCK_CACHE_BYTES // max(out.nbytes, 1))
            while len(self._cache) > keep:
                self._cache.popitem(last=False)
        return out

    def _decode(self, rb: int, blobs: list[bytes]) -> np.ndarray:
        r0 = rb * self.row_block
        rows = min(self.shape[0], r0 + self.row_block) - r0
        out = np.empty((rows, self.shape[1]), np.uint8)
        for (c0, c1), blob in zip(self.cols, blobs):
            try:
                tile = np.frombuffer(inflate(blob, rows * (c1 - c0)), np.uint8)
                out[:, c0:c1] = tile.reshape(rows, c1 - c0)
            except (zlib.error, ValueError) as exc:
                raise ExplanationFileError(
                    f"{self.archive.path.name} is damaged ({self.kind} maps: {exc}).",
                    "Save the explanation again, or explain the media again.") from exc
        return out

    def rows(self, idx: np.ndarray) -> np.ndarray:
        out = np.empty((idx.size, self.shape[1]), np.uint8)
        for rb in np.unique(idx // self.row_block):
            sel = np.flatnonzero(idx // self.row_block == rb)
            out[sel] = self._block(int(rb))[idx[sel] - int(rb) * self.row_block]
        return out

    def full(self) -> np.ndarray:
        n_blocks = -(-self.shape[0] // self.row_block)
        names = [f"{self.kind}_maps/{rb}_{ci}.z" for rb in range(n_blocks)
                 for ci in range(len(self.cols))]
        blobs = self.archive.read(names)
        k = len(self.cols)
        with ThreadPoolExecutor(_THREADS) as pool:
            parts = list(pool.map(lambda rb: self._decode(rb, blobs[rb * k:(rb + 1) * k]),
                                  range(n_blocks)))
        return (np.concatenate(parts) if parts
                else np.zeros(self.shape, np.uint8))


class JpegFrames(LazyFrames):
    """A video's frames stored as JPEGs, decoded on demand (the last few kept)."""

    def __init__(self, archive: _Archive, mi: int, shape: tuple[int, int, int, int]) -> None:
        self.archive, self.mi = archive, mi
        self.shape = shape
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._keep = 32  # frames kept decoded (~0.75 MB each at 504 x 504)
        # The view reads frames on the UI thread while thumbnails are made on another.
        self._lock = threading.Lock()

    def blob(self, f: int) -> bytes:
        """Frame ``f``'s JPEG bytes as stored."""
        (blob,) = self.archive.read([f"media{self.mi}_frames/{f}.jpg"])
        return blob

    def _frame(self, f: int) -> np.ndarray:
        import cv2

        with self._lock:
            if f in self._cache:
                self._cache.move_to_end(f)
                return self._cache[f]
        img = cv2.imdecode(np.frombuffer(self.blob(f), np.uint8), cv2.IMREAD_COLOR)
        if img is None or img.shape != self.shape[1:]:
            raise ExplanationFileError(f"{self.archive.path.name} is damaged (frame {f}).",
                                       "Save the explanation again, or explain the media again.")
        # BGR to RGB: cv2 swaps the channels in a tenth of numpy's reversed-view copy time
        # (the view reads a frame per switch; thumbnails read them all on another thread).
        out = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
        out.flags.writeable = False
        with self._lock:
            self._cache[f] = out
            while len(self._cache) > self._keep:
                self._cache.popitem(last=False)
        return out

    def __getitem__(self, index):
        n = self.shape[0]
        if isinstance(index, (int, np.integer)):
            f = int(index) + n if index < 0 else int(index)
            if not 0 <= f < n:
                raise IndexError(f"frame {index} out of range for {n} frames")
            return self._frame(f)
        picks = np.arange(n)[index]
        return np.stack([self._frame(int(f)) for f in picks]) if picks.size else \
            np.zeros((0, *self.shape[1:]), np.uint8)


def inflate(blob: bytes, max_bytes: int) -> bytes:
    """``zlib.decompress`` that stops at ``max_bytes``: a member that inflates beyond what it
    may hold (a zip bomb, or damage) raises ``zlib.error`` instead of filling the memory."""
    d = zlib.decompressobj()
    out = d.decompress(blob, max_bytes)
    if d.unconsumed_tail or not d.eof:
        raise zlib.error(f"a member inflates beyond {max_bytes:,} bytes or is truncated")
    return out


def load_chunked(path: Path, header: dict, explanation_cls: type[Explanation],
                 options_cls) -> Explanation:
    """Read a format-3 file (its header already checked by ``read_header``). The classes are
    passed in by :meth:`Explanation.load` (this module is below it: no import cycle)."""
    with zipfile.ZipFile(path) as zf:
        archive = _Archive(path, zf.infolist())
        names = set(zf.namelist())

        def arr(name: str) -> np.ndarray:
            if name + ".npy.z" in names:
                raw = inflate(zf.read(name + ".npy.z"), limit("array_bytes"))
                check_npy_member(path, name, io.BytesIO(raw), len(raw))
                return np.lib.format.read_array(io.BytesIO(raw), allow_pickle=False)
            with zf.open(name + ".npy") as fh:
                return np.lib.format.read_array(fh, allow_pickle=False)

        grids = [
            VisionGrid(kind=gm["kind"], media_index=gm["media_index"], t=gm["t"], h=gm["h"],
                       w=gm["w"], positions=arr(f"grid{gi}_positions"),
                       box=tuple(gm.get("box", FULL_BOX)), role=gm.get("role", "full"))
            for gi, gm in enumerate(header["grids"])
        ]
        layout = header["layout"]
        cols = [(int(a), int(b)) for a, b in layout["cols"]]
        n_vision = sum(g.size for g in grids)
        vision = arr("stage_vision") if names & {"stage_vision.npy", "stage_vision.npy.z"} \
            else None
        options = options_cls(**header["options"])

        def token_maps(kind: TokenKind, texts: list[str]) -> TokenMaps:
            info = layout["sets"][kind]
            maps = StoredMaps(archive, kind, int(info["n"]), n_vision,
                              int(layout["row_block"]), cols)
            stages: dict = {}
            source = None
            if info["stages"] == "arrays":
                stages = {n: arr(f"{kind}_{n}") for n in FLOAT_STAGES}
            elif info["stages"] == "source" and vision is not None:
                source = StageSource(vision=vision, raw_class=arr(f"{kind}_src_raw_class"),
                                     weights=arr(f"{kind}_src_weights"),
                                     rel_lo=arr(f"{kind}_src_rel_lo"),
                                     rel_hi=arr(f"{kind}_src_rel_hi"), grids=grids,
                                     eci=options.eci, filter=options.filter,
                                     kernel_size=options.kernel_size,
                                     chunk_tokens=int(info["chunk_tokens"]))
            out = TokenMaps(kind=kind, texts=list(texts), maps=maps, source=source,
                            **{n: arr(f"{kind}_{n}") for n in _SCALARS}, **stages)
            if names & {f"{kind}_visual_strength.npy", f"{kind}_visual_strength.npy.z"}:
                out.stored_strength = arr(f"{kind}_visual_strength")
            return out

        answer = token_maps("answer", header["answer_texts"])
        prompt = (None if header["prompt_texts"] is None
                  else token_maps("prompt", header["prompt_texts"]))
        cands = None
        if header["cand_texts"] is not None:
            cands = Candidates(ids=arr("cand_ids"), logits=arr("cand_logits"),
                               probs=arr("cand_probs"), texts=header["cand_texts"])
        media = []
        for mi, mm in enumerate(header["media"]):
            n, h, w, _ = (int(x) for x in mm["shape"])
            frames: np.ndarray | LazyFrames = (
                arr(f"media{mi}_frames") if mm["codec"] == "npy"
                else JpegFrames(archive, mi, (n, h, w, 3)))
            media.append(MediaItem(kind=mm["kind"], path=mm["path"], frames=frames,
                                   frame_slot=arr(f"media{mi}_frame_slot"),
                                   timestamps=arr(f"media{mi}_timestamps"),
                                   fps=float(mm["fps"])))
        is_special = (arr("is_special") if names & {"is_special.npy", "is_special.npy.z"}
                      else special_from_texts(header["token_texts"]))
        return explanation_cls(ids=arr("ids"), input_len=int(header["input_len"]),
                           token_texts=list(header["token_texts"]), grids=grids,
                           prompt_positions=arr("prompt_positions"), answer=answer,
                           prompt=prompt, candidates=cands, options=options, media=media,
                           meta=dict(header.get("meta") or {}), is_special=is_special)


def wants_chunked(expl: Explanation) -> bool:
    """Whether ``expl`` is long enough for this layout: its float stages (as formats 1-2 store
    them) or its frames exceed the limits. Short explanations keep the older formats, which
    older releases open."""
    tokens = sum(len(tm) for tm in (expl.answer, expl.prompt) if tm is not None)
    frames = sum(int(np.prod(m.frames.shape)) for m in expl.media)
    return (3 * 4 * tokens * expl.n_vision > STAGE_LIMIT or frames > LOSSLESS_FRAMES_LIMIT
            or any(tm is not None and not tm.has_float_stages
                   for tm in (expl.answer, expl.prompt)))
