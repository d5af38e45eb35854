"""Corpus: damaged and hostile explanation files, and bad media files."""

from __future__ import annotations

import io
import json
import os
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from fuzz_corpus import Case, Ctx, cli

BAD = "bad.tam.npz"


# ---------------------------------------------------------------------- explanation files
def _members(src: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(src) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def _npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


def _npy_claiming(shape: tuple[int, ...], descr: str, payload: bytes = b"") -> bytes:
    header = repr({"descr": descr, "fortran_order": False, "shape": shape}).encode()
    header += b" " * (63 - (len(header) + 10) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + payload


def _write_zip(dst: Path, members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED
               ) -> None:
    with zipfile.ZipFile(dst, "w", method) as zf:
        for name, data in members.items():
            zf.writestr(name, data)


def _patch_field(path: Path, member: str, local: int, value: int, merge: bool = False) -> None:
    """Set a 2-byte field of a member's local header (at ``local``) and of its central
    directory entry (2 bytes further on): the compression method (8) or the flags (6)."""
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(member)

    def put(at: int) -> None:
        old = struct.unpack_from("<H", data, at)[0]
        struct.pack_into("<H", data, at, (old | value) if merge else value)
    put(info.header_offset + local)
    i = data.find(b"PK\x01\x02")
    while i >= 0:
        n = struct.unpack_from("<H", data, i + 28)[0]
        if data[i + 46:i + 46 + n].decode() == member:
            put(i + local + 2)
        i = data.find(b"PK\x01\x02", i + 4)
    path.write_bytes(bytes(data))


def _mutated(kind: str = "image", arrays: dict[str, Any] | None = None,
             header: Callable[[dict], Any] | None = None, raw: dict[str, bytes] | None = None
             ) -> Callable[[Ctx, Path], None]:
    def setup(ctx: Ctx, work: Path) -> None:
        members = _members(ctx.explanation(kind))
        for name, value in (arrays or {}).items():
            if value is None:
                members.pop(f"{name}.npy", None)
            else:
                members[f"{name}.npy"] = _npy(np.asarray(value))
        if header is not None:
            h = json.loads(np.load(io.BytesIO(members["header.npy"])).tobytes())
            new = header(h)
            text = new if isinstance(new, str) else json.dumps(new if new is not None else h)
            members["header.npy"] = _npy(np.frombuffer(text.encode(), np.uint8))
        members.update(raw or {})
        _write_zip(work / BAD, members)
    return setup


def _export(what: str = "png", *extra: str) -> Callable[[Ctx, Path], Any]:
    def run(ctx: Ctx, work: Path) -> Any:
        return cli("export", work / BAD, what, "--out", work / f"out.{what}", *extra)
    return run


def _load(ctx: Ctx, work: Path) -> Any:
    from tam_engine.core.explanation import Explanation

    return Explanation.load(work / BAD)


def _set(h: dict, key: str, value: Any) -> dict:
    h[key] = value
    return h


def _explanation_cases() -> list[Case]:
    n, v = 10, 48  # the synthetic image explanation: 10 answer tokens, 48 vision cells
    mut: dict[str, Callable[[Ctx, Path], None]] = {
        "short-answer-texts": _mutated(header=lambda h: _set(h, "answer_texts", ["a"])),
        "maps-1d": _mutated(arrays={"answer_maps": np.zeros(v, np.uint8)}),
        "maps-too-few-rows": _mutated(arrays={"answer_maps": np.zeros((3, v), np.uint8)}),
        "maps-strings": _mutated(arrays={"answer_maps": np.full((n, v), "x")}),
        "raw-nan": _mutated(arrays={"answer_raw": np.full((n, v), np.nan, np.float32)}),
        "positions-out-of-range": _mutated(arrays={"answer_positions": np.full(n, 10**6)}),
        "grid-positions-negative": _mutated(arrays={"grid0_positions": -np.ones(v, np.int64)}),
        "frame-slot-beyond-grid": _mutated(arrays={"media0_frame_slot": np.array([7])}),
        "ids-2d": _mutated(arrays={"ids": np.zeros((8, 8), np.int64)}),
        "frames-2d": _mutated(arrays={"media0_frames": np.zeros((48, 64), np.uint8)}),
        "candidate-texts-short": _mutated(header=lambda h: _set(h, "cand_texts", [["a"]])),
        "missing-array": _mutated(arrays={"answer_eci": None}),
        "no-grids-key": _mutated(header=lambda h: {k: x for k, x in h.items() if k != "grids"}),
        "grids-not-a-list": _mutated(header=lambda h: _set(h, "grids", 5)),
        "grid-zero-size": _mutated(header=lambda h: _set(h, "grids", [dict(
            h["grids"][0], h=0)])),
        "input-len-negative": _mutated(header=lambda h: _set(h, "input_len", -5)),
        "options-unknown": _mutated(header=lambda h: _set(h, "options", {"bogus": 1})),
        "newer-version": _mutated(header=lambda h: _set(h, "version", 99)),
        "other-format": _mutated(header=lambda h: _set(h, "format", "something-else")),
        "header-not-json": _mutated(header=lambda h: "{not json"),
        "header-deep-json": _mutated(header=lambda h: "[" * 100_000 + "]" * 100_000),
        "header-missing": _mutated(raw={}, arrays={"header": None}),
        "npy-claims-1tb": _mutated(raw={"answer_raw.npy": _npy_claiming((2**38,), "<f4")}),
        "npy-bad-header": _mutated(raw={"ids.npy": b"\x93NUMPY\x01\x00\x10\x00{'descr': '<i8'"}),
        "frames-20000x50000": _mutated(raw={"media0_frames.npy": _npy_claiming(
            (1, 20000, 50000, 3), "|u1", b"\0" * 4096)}),
        "frames-million": _mutated(raw={"media0_frames.npy": _npy_claiming(
            (10**6, 4, 4, 3), "|u1")}),
    }
    cases = [Case(f"explanation/{name}", "explanation-file", _export("png"), setup=setup,
                  mention=("bad.tam.npz",)) for name, setup in mut.items()]
    cases += [Case(f"explanation/{name}/api", "explanation-file", _load, setup=mut[name],
                   mention=("bad.tam.npz",))
              for name in ("maps-1d", "npy-claims-1tb", "header-deep-json", "raw-nan")]

    def zip_variant(method: int = zipfile.ZIP_DEFLATED, encrypt: bool = False,
                    patch: int = 0) -> Callable[[Ctx, Path], None]:
        def setup(ctx: Ctx, work: Path) -> None:
            _write_zip(work / BAD, _members(ctx.explanation()), method)
            if patch:
                _patch_field(work / BAD, "ids.npy", 8, patch)
            if encrypt:
                _patch_field(work / BAD, "ids.npy", 6, 0x1, merge=True)
        return setup

    def raw_file(data: Callable[[Ctx], bytes]) -> Callable[[Ctx, Path], None]:
        def setup(ctx: Ctx, work: Path) -> None:
            (work / BAD).write_bytes(data(ctx))
        return setup

    special: dict[str, Callable[[Ctx, Path], None]] = {
        "encrypted-member": zip_variant(encrypt=True),
        "ppmd-compression": zip_variant(patch=98),
        "bzip2-compression": zip_variant(method=zipfile.ZIP_BZIP2),
        "empty-file": raw_file(lambda ctx: b""),
        "random-bytes": raw_file(lambda ctx: np.random.default_rng(0).bytes(5000)),
        "truncated": raw_file(lambda ctx: ctx.explanation().read_bytes()[:3000]),
        "png-renamed": raw_file(lambda ctx: ctx.image().read_bytes()),
        "zip-of-text": raw_file(lambda ctx: _zip_bytes({"a.txt": b"hello"})),
    }
    for name, setup in special.items():
        expect = "either" if name == "bzip2-compression" else "error"
        cases.append(Case(f"explanation/{name}", "explanation-file", _export("json"),
                          setup=setup, expect=expect, mention=("bad.tam.npz",)))

    def folder(ctx: Ctx, work: Path) -> None:
        (work / BAD).mkdir(exist_ok=True)

    def fifo(ctx: Ctx, work: Path) -> None:
        if not (work / BAD).exists():
            os.mkfifo(work / BAD)

    cases.append(Case("explanation/is-a-folder", "explanation-file", _export("json"),
                      setup=folder, mention=("folder",)))
    cases.append(Case("explanation/is-a-fifo", "explanation-file", _export("json"),
                      setup=fifo, mention=("regular file",)))
    cases.append(Case("explanation/missing", "explanation-file", _export("json"),
                      mention=("does not exist",)))
    return cases


def _zip_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


# ---------------------------------------------------------------------- media files
def _tiff(array: np.ndarray, mode: str) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array, mode=mode).save(buf, format="TIFF")
    return buf.getvalue()


def _media_cases() -> list[Case]:
    from tam_engine.demo import synth

    png = synth.encode_png(synth.make_image_scene(1, size=64).image)
    mp4 = synth.encode_mp4(synth.make_video_scene(1, size=64, n_frames=4).frames)
    grad = np.linspace(0, 1, 64 * 64, dtype=np.float32).reshape(64, 64)
    files: dict[str, tuple[str, bytes | None]] = {
        "empty-png": ("x.png", b""),
        "random-png": ("x.png", np.random.default_rng(1).bytes(3000)),
        "truncated-png": ("x.png", png[: len(png) // 2]),
        "text-as-jpg": ("x.jpg", b"hello, this is text\n" * 10),
        "empty-mp4": ("x.mp4", b""),
        "garbage-mp4": ("x.mp4", np.random.default_rng(2).bytes(20000)),
        "truncated-mp4": ("x.mp4", mp4[: len(mp4) // 3]),
        "unknown-extension": ("x.xyz", b"abc"),
        "float-tiff-nan": ("x.tif", _tiff(np.full((8, 8), np.nan, np.float32), "F")),
        "float-tiff-wide": ("x.tif", _tiff(grad * 1e6 - 5e5, "F")),
        "int32-tiff-negative": ("x.tif", _tiff((np.arange(64 * 64, dtype=np.int32)
                                                 .reshape(64, 64) - 2000), "I")),
    }
    cases = []
    for name, (fname, data) in files.items():
        def setup(ctx: Ctx, work: Path, fname: str = fname, data: bytes | None = data) -> None:
            if data is not None:
                (work / fname).write_bytes(data)

        def run(ctx: Ctx, work: Path, fname: str = fname) -> Any:
            from tam_engine.media.io import load_media

            return load_media([work / fname])
        cases.append(Case(f"media/{name}", "media", run, setup=setup, mention=("x.",)))

    def good_tiff(name: str, data: bytes, lo: int, hi: int) -> Case:
        def setup(ctx: Ctx, work: Path) -> None:
            (work / "x.tif").write_bytes(data)

        def run(ctx: Ctx, work: Path) -> Any:
            from tam_engine.media.io import load_media

            return load_media([work / "x.tif"])

        def verify(ctx: Ctx, items: Any) -> str | None:
            f = items[0].frames[0]
            if int(f.min()) > lo or int(f.max()) < hi:
                return f"grey range {f.min()}..{f.max()}, expected about {lo}..{hi}"
            return None
        return Case(f"media/{name}", "media", run, setup=setup, expect="success", verify=verify)

    cases += [
        good_tiff("float32-tiff-0-1", _tiff(grad, "F"), 5, 250),
        good_tiff("int32-tiff-full-range", _tiff((grad.astype(np.float64) * (2**31 - 1))
                                                 .astype(np.int32), "I"),
                  5, 250),
        good_tiff("int32-tiff-8bit-values", _tiff((grad * 255).astype(np.int32), "I"), 5, 250),
    ]

    def directory(ctx: Ctx, work: Path) -> None:
        (work / "x.png").mkdir(exist_ok=True)

    def fifo(ctx: Ctx, work: Path) -> None:
        if not (work / "x.png").exists():
            os.mkfifo(work / "x.png")

    def load_x(ctx: Ctx, work: Path) -> Any:
        from tam_engine.media.io import load_media

        return load_media([work / "x.png"])

    cases.append(Case("media/folder-as-image", "media", load_x, setup=directory,
                      mention=("x.png",)))
    cases.append(Case("media/fifo-as-image", "media", load_x, setup=fifo, mention=("x.png",)))
    cases.append(Case("media/missing", "media", load_x, mention=("x.png",)))
    return cases


def cases() -> list[Case]:
    return _explanation_cases() + _media_cases()
