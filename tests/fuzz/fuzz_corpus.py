"""The hostile-input corpus of issue 14: deterministic cases, built from nothing but the
project (a synthetic explanation, a tiny random model, generated media).

A :class:`Case` builds its inputs in its own folder (``setup``), does one thing through the CLI,
the Python API or the app's settings loader (``run``), and says what should happen: an error
(``expect="error"``, whose message must mention ``mention``), a success (checked by ``verify``)
or either. The groups live in ``fuzz_files`` (explanation files, media), ``fuzz_cli`` (values,
disks, settings), ``fuzz_models`` (model folders, prompts, concurrency) and ``fuzz_payloads``
(pickles and remote code).
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Runner = Callable[["Ctx", Path], Any]


def _nothing(ctx: Ctx, work: Path) -> None:
    return None


@dataclass
class Case:
    name: str
    group: str
    run: Runner
    setup: Callable[[Ctx, Path], None] = _nothing
    expect: str = "error"               # "error", "success" or "either"
    mention: tuple[str, ...] = ()       # words an error message must hold
    verify: Callable[[Ctx, Any], str | None] | None = None  # a success's problem, or None
    fast: bool = True                   # part of the CI subset
    may_change: tuple[str, ...] = ()    # files of the case's folder a success may replace


class Ctx:
    """Shared inputs (built once, read-only for every case) and one folder per case."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.shared = root / "shared"
        self.shared.mkdir(parents=True, exist_ok=True)
        self.markers = root / "markers"
        self.markers.mkdir(exist_ok=True)
        self._model: Path | None = None
        self._loaded: Any = None

    def case_dir(self, name: str) -> Path:
        d = self.root / "cases" / name.replace("/", "__")
        d.mkdir(parents=True, exist_ok=True)
        return d

    def shared_roots(self) -> list[Path]:
        return [self.shared]

    # ------------------------------------------------------------------ shared inputs
    def explanation(self, kind: str = "image") -> Path:
        path = self.shared / f"{kind}.tam.npz"
        if not path.exists():
            from tam_engine.testing.synthetic import synthetic_explanation

            synthetic_explanation(kind).save(path)
        return path

    def image(self) -> Path:
        path = self.shared / "shapes.png"
        if not path.exists():
            from tam_engine.demo import synth

            path.write_bytes(synth.encode_png(synth.make_image_scene(3, size=112).image))
        return path

    def model_dir(self) -> Path:
        if self._model is None:
            from tam_engine.testing.tiny_models import build_tiny_model

            self._model = build_tiny_model("qwen2_vl", self.root / "model")
        return self._model

    def model_copy(self, work: Path) -> Path:
        dst = work / "model"
        if not dst.exists():
            shutil.copytree(self.model_dir(), dst)
        return dst

    def loaded(self) -> Any:
        if self._loaded is None:
            from tam_engine.inference.loading import load_model

            self._loaded = load_model(self.model_dir(), device="cpu")
        return self._loaded


# ---------------------------------------------------------------------- helpers for cases
def cli(*argv: object) -> tuple[str, int, str]:
    """Run ``tam`` in this process: ``("cli", exit status, stderr)``. An exception escaping
    ``main`` is a traceback and propagates."""
    from tam_engine.cli import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return ("cli", int(code), err.getvalue())


@contextlib.contextmanager
def failing_writes(code: int) -> Iterator[None]:
    """Make the project's writes fail with ``code`` (ENOSPC: a full disk; EROFS/EACCES: a
    read-only folder, which root would otherwise write anyway)."""
    real_mkstemp, real_mkdtemp, real_fsync = tempfile.mkstemp, tempfile.mkdtemp, os.fsync

    def fail(*args: Any, **kwargs: Any) -> Any:
        where = [kwargs["dir"]] if kwargs.get("dir") else []  # a failed write() names nothing
        raise OSError(code, os.strerror(code), *where)

    if code == errno.ENOSPC:
        os.fsync = fail  # the data do not fit: fails after the temporary file exists
    else:
        tempfile.mkstemp = fail  # type: ignore[assignment]
        tempfile.mkdtemp = fail  # type: ignore[assignment]
    try:
        yield
    finally:
        tempfile.mkstemp, tempfile.mkdtemp, os.fsync = real_mkstemp, real_mkdtemp, real_fsync


def leftover_parts(folder: Path) -> list[str]:
    return [p.name for p in folder.rglob("*") if ".part" in p.name]


def all_cases() -> list[Case]:
    import fuzz_cli
    import fuzz_files
    import fuzz_models
    import fuzz_payloads

    cases = [*fuzz_files.cases(), *fuzz_cli.cases(), *fuzz_models.cases(),
             *fuzz_payloads.cases()]
    names = [c.name for c in cases]
    assert len(names) == len(set(names)), "case names must be unique"
    return cases
