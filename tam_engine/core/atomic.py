"""Atomic file writes: every file the project writes goes through here.

A write goes to a hidden temporary file (or folder) beside its target, named
``.<target name>.tam<pid>-<random>.part``, and is renamed over the target when complete. A
process killed mid-write (SIGKILL, a power cut) leaves its ``.part`` behind; the next write into
that folder sweeps the ones whose process is gone (only names of this pattern: never a file of
anyone else's).
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import tempfile
import time
from pathlib import Path

from tam_engine.core.errors import TamError

__all__ = ["DiskError", "atomic_write_bytes", "disk_error", "sweep_stale_parts", "temp_dir",
           "temp_file"]

_PART = re.compile(r"^\..+\.tam(\d+)-[A-Za-z0-9_]+\.part(\.mp4)?$")
_STALE_S = 24 * 3600  # a .part this old is stale even if its pid was reused


class DiskError(TamError):
    """A file or folder cannot be read or written (permissions, full disk, something in the
    way)."""


def disk_error(exc: OSError, path: str | os.PathLike | None = None) -> DiskError:
    """What an ``OSError`` on ``path`` means for the user, and what to do."""
    where = str(exc.filename or path or "the file")
    code = exc.errno
    if code == errno.ENOSPC or code == getattr(errno, "EDQUOT", -1):
        return DiskError(f"The disk is full: cannot write {where}.",
                         "Free some space, or choose a folder on another disk.")
    if code == errno.EROFS:
        return DiskError(f"{where} is on a read-only disk.", "Choose a folder you can write to.")
    if code in (errno.EACCES, errno.EPERM):
        return DiskError(f"Permission denied: {where}.",
                         "Choose a file or folder you are allowed to use.")
    if code == errno.EISDIR:
        return DiskError(f"{where} is a folder, where a file is needed.",
                         "Give a file name (or a new path) instead.")
    if code == errno.ENOTDIR or isinstance(exc, FileExistsError):
        return DiskError(f"Something is in the way at {where}: a file where a folder is "
                         "needed (or the reverse).", "Choose another path, or move that file.")
    if code == errno.ENOENT:
        return DiskError(f"{where} does not exist.", "Check the path.")
    if code == errno.ENAMETOOLONG:
        return DiskError(f"The path is too long: {where}.", "Choose a shorter name.")
    return DiskError(f"Cannot use {where}: {exc.strerror or exc}.",
                     "Check the path, its permissions and the free disk space.")


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    except OSError:
        return False
    return True


def sweep_stale_parts(folder: str | os.PathLike) -> list[Path]:
    """Remove the ``.part`` leftovers of writes whose process is gone (or a day old)."""
    removed: list[Path] = []
    try:
        entries = list(os.scandir(os.fspath(folder)))
    except OSError:
        return removed
    now = time.time()
    for entry in entries:
        m = _PART.match(str(entry.name))
        if m is None:
            continue
        try:
            old = now - entry.stat(follow_symlinks=False).st_mtime > _STALE_S
            if _alive(int(m.group(1))) and not old:
                continue
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
            removed.append(Path(entry.path))
        except OSError:
            continue  # another process swept it, or it is not ours to remove after all
    return removed


def _prefix(target: Path) -> str:
    return f".{target.name}.tam{os.getpid()}-"


def temp_file(target: str | os.PathLike, suffix: str = ".part") -> str:
    """A new empty hidden temporary file beside ``target`` (readable by others), after sweeping
    stale ones; the caller renames it over ``target`` or removes it."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale_parts(target.parent)
    fd, tmp = tempfile.mkstemp(prefix=_prefix(target), suffix=suffix, dir=target.parent)
    os.close(fd)
    os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide the file from other users
    return tmp


def temp_dir(target: str | os.PathLike) -> Path:
    """A new hidden temporary folder beside ``target``, after sweeping stale ones."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    sweep_stale_parts(target.parent)
    tmp = Path(tempfile.mkdtemp(prefix=_prefix(target), suffix=".part", dir=target.parent))
    tmp.chmod(0o755)
    return tmp


def atomic_write_bytes(path: str | os.PathLike, data: bytes | memoryview) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never half."""
    path = Path(path)
    if path.is_dir():  # else os.replace would name the temporary file in its error
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
    tmp = temp_file(path)
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if isinstance(exc, OSError) and (not exc.filename or exc.filename == tmp):
            exc.filename = str(path)  # a full disk says no name: say which file it was
        raise
