"""Download a model from the Hugging Face Hub into its cache, with progress, cancel and resume.

The Hub's own API gives the file list and sizes (``model_info`` with file metadata) and each
file's commit, ETag, size and final location (``get_hf_file_metadata``, a HEAD request); the
bytes are fetched here with ``Range`` requests into ``blobs/<etag>.incomplete`` in the standard
cache layout, so that an interrupted or cancelled download resumes where it stopped (the
library's own ``hf_hub_download`` discards a partial file). A file enters the cache only when
complete: it is renamed to ``blobs/<etag>`` and linked from ``snapshots/<commit>/``; the
revision's ref is written once every file is there. So a cancel never leaves a broken entry,
and transformers then loads the model from the cache as it always does.

Offline mode (``HF_HUB_OFFLINE=1``) downloads nothing: loading behaves as before. The standard
Hugging Face login (``hf auth login``, ``HF_TOKEN``) is used for gated and private models;
tam never asks for or stores a token.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tam_engine.core.errors import Cancelled, ModelLoadError

__all__ = ["DownloadProgress", "download_model", "is_hub_id"]

#: What a model needs: configs, tokenizer and processor files, chat templates, safetensors
#: weights and (for trust_remote_code models) their code. Pickled weights only when allowed.
_WANTED = ("*.json", "*.safetensors", "*.txt", "*.model", "*.jinja", "*.tiktoken", "*.py",
           "*.tokenizer")
_PICKLES = ("*.bin", "*.pt")
_CHUNK = 1 << 20
_RETRIES = 3
#: Kept free beyond the download: the filesystem's own needs and the files' metadata.
DISK_MARGIN = 256 * 1024 ** 2
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")
_LOGIN_HINT = ("tam uses the standard Hugging Face login and never stores a token: run "
               "`hf auth login` (or set HF_TOKEN) in this environment, then try again.")

OnProgress = Callable[["DownloadProgress"], None]
ShouldStop = Callable[[], bool]


@dataclass(frozen=True)
class DownloadProgress:
    """Where a download stands: bytes and files, speed and time left."""

    repo_id: str
    file: str
    files_done: int
    files_total: int
    bytes_done: int
    bytes_total: int
    bytes_per_s: float

    @property
    def eta_s(self) -> float | None:
        if self.bytes_per_s <= 0:
            return None
        return max(0.0, (self.bytes_total - self.bytes_done) / self.bytes_per_s)

    def describe(self) -> str:
        eta = self.eta_s
        left = "" if eta is None else f", {int(eta) // 60}:{int(eta) % 60:02d} left"
        return (f"{self.files_done}/{self.files_total} files, {_size(self.bytes_done)} of "
                f"{_size(self.bytes_total)}, {_size(self.bytes_per_s)}/s{left}")


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1000:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def is_hub_id(name: str) -> bool:
    """``org/name`` that is not a local path."""
    from tam_engine.inference.loading import _looks_local

    return bool(_HUB_ID.match(name)) and not _looks_local(name)


def disk_free(path: Path) -> int:
    """Free bytes on the filesystem that holds (or will hold) ``path``."""
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return shutil.disk_usage(probe).free


class _Tracker:
    """Counts bytes and files, reports progress, and stops when asked (between chunks)."""

    def __init__(self, repo_id: str, files_total: int, bytes_total: int,
                 on_progress: OnProgress | None, should_stop: ShouldStop | None) -> None:
        self.repo_id, self.files_total, self.bytes_total = repo_id, files_total, bytes_total
        self.on_progress, self.should_stop = on_progress, should_stop
        self.files_done = self.bytes_done = self.fetched = 0
        self.base = 0  # bytes of the files finished before the current one
        self.file = ""
        self.t0 = time.monotonic()
        self._last = 0.0

    def check(self) -> None:
        if self.should_stop is not None and self.should_stop():
            raise Cancelled("Download cancelled; what was downloaded is kept and the next "
                            "download resumes from there.")

    def start_file(self, name: str) -> None:
        self.file, self.base = name, self.bytes_done

    def file_bytes(self, n: int, fetched: int = 0) -> None:
        """``n`` bytes of the current file are on disk, ``fetched`` of them just arrived."""
        self.bytes_done = self.base + n
        self.fetched += fetched
        now = time.monotonic()
        if now - self._last >= 0.1 or self.bytes_done >= self.bytes_total:
            self._last = now
            self.report()
        self.check()

    def report(self) -> None:
        if self.on_progress is None:
            return
        elapsed = max(time.monotonic() - self.t0, 1e-6)
        self.on_progress(DownloadProgress(self.repo_id, self.file, self.files_done,
                                          self.files_total, self.bytes_done, self.bytes_total,
                                          self.fetched / elapsed))


def download_model(repo_id: str, revision: str = "main", *, allow_pickle: bool = False,
                   on_progress: OnProgress | None = None, should_stop: ShouldStop | None = None,
                   cache_dir: str | os.PathLike | None = None, endpoint: str | None = None
                   ) -> Path | None:
    """Make sure the files ``repo_id`` needs are in the Hub cache; return its snapshot folder.

    ``None`` in offline mode (nothing is fetched; loading then uses the cache as before).
    ``on_progress`` is called from this thread as bytes arrive; ``should_stop()`` is checked
    between chunks and a ``True`` raises :class:`~tam_engine.core.errors.Cancelled`, keeping
    the partial file for the next call to resume. The free disk is checked before any byte is
    fetched. Hub errors (gated, private, missing) become a :class:`ModelLoadError` that says
    what to do.
    """
    from huggingface_hub import HfApi, constants

    from tam_engine.inference.loading import is_offline

    if is_offline():
        return None
    endpoint = (endpoint or os.environ.get("HF_ENDPOINT") or constants.ENDPOINT).rstrip("/")
    cache = Path(cache_dir or constants.HF_HUB_CACHE)
    with _hub_errors(repo_id, endpoint):
        info = HfApi(endpoint=endpoint).model_info(repo_id, revision=revision,
                                                   files_metadata=True)
    sha = str(info.sha)
    files = _wanted_files(info.siblings or [], allow_pickle)
    storage = cache / ("models--" + repo_id.replace("/", "--"))
    snapshot = storage / "snapshots" / sha
    missing = [(f, size) for f, size in files if not (snapshot / f).is_file()]
    need = sum(size for _, size in missing)
    free = disk_free(storage)
    if missing and need + DISK_MARGIN > free:
        raise ModelLoadError(
            f"Downloading {repo_id} needs {_size(need)} of disk, but only {_size(free)} is free "
            f"where the Hugging Face cache is ({cache}).",
            "Free some disk space, or point HF_HUB_CACHE (or HF_HOME) at a larger disk.")
    tracker = _Tracker(repo_id, len(files), sum(size for _, size in files), on_progress,
                       should_stop)
    tracker.files_done = len(files) - len(missing)
    tracker.bytes_done = tracker.bytes_total - need
    tracker.report()
    for filename, size in missing:
        tracker.check()
        tracker.start_file(filename)
        _download_file(repo_id, sha, filename, storage, snapshot, endpoint, tracker)
        tracker.base += size
        tracker.bytes_done = tracker.base
        tracker.files_done += 1
        tracker.report()
    _write_ref(storage, revision, sha)
    return snapshot


def _wanted_files(siblings: list[Any], allow_pickle: bool) -> list[tuple[str, int]]:
    names = {s.rfilename: int(s.size if s.size is not None else
                              getattr(getattr(s, "lfs", None), "size", 0) or 0)
             for s in siblings}
    patterns = _WANTED + (_PICKLES if allow_pickle and not any(
        n.endswith(".safetensors") for n in names) else ())
    return sorted((n, size) for n, size in names.items()
                  if any(fnmatch.fnmatch(Path(n).name, p) for p in patterns))


def _download_file(repo_id: str, sha: str, filename: str, storage: Path, snapshot: Path,
                   endpoint: str, tracker: _Tracker) -> None:
    from filelock import FileLock
    from huggingface_hub import get_hf_file_metadata, hf_hub_url

    url = hf_hub_url(repo_id, filename, revision=sha, endpoint=endpoint)
    with _hub_errors(repo_id, endpoint):
        meta = get_hf_file_metadata(url)
    etag = str(meta.etag or sha + "-" + filename.replace("/", "_"))
    size = int(meta.size or 0)
    blob = storage / "blobs" / etag
    blob.parent.mkdir(parents=True, exist_ok=True)
    part = blob.with_name(etag + ".incomplete")
    with FileLock(str(blob) + ".lock"):
        if not blob.is_file():
            for attempt in range(_RETRIES + 1):
                try:
                    _fetch(meta.location or url, part, size, repo_id, endpoint, tracker)
                    break
                except _Interrupted:
                    if attempt == _RETRIES:
                        raise ModelLoadError(
                            f"The download of {filename} from {repo_id} keeps breaking off.",
                            "Check the network and download again: it resumes where it "
                            "stopped.") from None
                    time.sleep(0.2 * (attempt + 1))
            got = part.stat().st_size
            if size and got != size:
                part.unlink(missing_ok=True)
                raise ModelLoadError(
                    f"{filename} of {repo_id} arrived with {got} bytes instead of {size}.",
                    "Download it again.")
            os.replace(part, blob)
    _link(blob, snapshot / filename)


class _Interrupted(Exception):
    """The connection broke off mid-file; the partial file is kept for the next try."""


def _fetch(url: str, part: Path, size: int, repo_id: str, endpoint: str,
           tracker: _Tracker) -> None:
    """Append the missing bytes of ``url`` to ``part`` (resuming with a Range request)."""
    import httpx2
    from huggingface_hub import get_session
    from huggingface_hub.utils import build_hf_headers, hf_raise_for_status

    have = part.stat().st_size if part.is_file() else 0
    if size and have > size:
        part.unlink()
        have = 0
    headers = build_hf_headers()
    headers["Accept-Encoding"] = "identity"
    if have:
        headers["Range"] = f"bytes={have}-"
    try:
        with get_session().stream("GET", url, headers=headers,
                                  follow_redirects=True) as response:
            with _hub_errors(repo_id, endpoint):
                hf_raise_for_status(response)
            if have and response.status_code != 206:  # the server ignored the Range: restart
                have = 0
            tracker.file_bytes(have)
            with part.open("ab" if have else "wb") as fh:
                for chunk in response.iter_bytes(_CHUNK):
                    fh.write(chunk)
                    have += len(chunk)
                    tracker.file_bytes(have, len(chunk))
    except (httpx2.TransportError, httpx2.StreamError) as exc:
        raise _Interrupted() from exc  # what arrived is on disk; the next try asks for the rest


def _link(blob: Path, link: Path) -> None:
    """``snapshots/<commit>/<file>`` -> ``blobs/<etag>``, relative as the Hub library links it
    (a copy where the filesystem has no symlinks)."""
    link.parent.mkdir(parents=True, exist_ok=True)
    tmp = link.with_name(link.name + ".tam-link")
    tmp.unlink(missing_ok=True)
    try:
        os.symlink(os.path.relpath(blob, link.parent), tmp)
    except OSError:
        shutil.copy2(blob, tmp)
    os.replace(tmp, link)


def _write_ref(storage: Path, revision: str, sha: str) -> None:
    """``refs/<revision>`` holds the commit: written last, once every file is in place."""
    if revision == sha:
        return
    from tam_engine.core.atomic import atomic_write_bytes

    ref = storage / "refs" / revision
    ref.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(ref, sha.encode())


@contextmanager
def _hub_errors(repo_id: str, endpoint: str) -> Iterator[None]:
    """Hub errors as messages that say what to do (gated, private, missing, unreachable)."""
    import httpx2
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        RemoteEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    page = f"{endpoint}/{repo_id}"
    try:
        yield
    except GatedRepoError as exc:
        raise ModelLoadError(
            f"{repo_id} is gated: its authors ask you to accept their licence before "
            "downloading it.",
            f"Open {page}, accept the licence while logged in there, then log in here. "
            + _LOGIN_HINT) from exc
    except RevisionNotFoundError as exc:
        raise ModelLoadError(f"{repo_id} has no such revision on the Hub.",
                             "Check the branch, tag or commit.") from exc
    except RemoteEntryNotFoundError as exc:
        raise ModelLoadError(f"A file listed by {repo_id} is missing on the Hub: {exc}",
                             "Try again later, or choose another revision.") from exc
    except (RepositoryNotFoundError, HfHubHTTPError) as exc:
        status = getattr(getattr(exc, "response", None), "status_code", None)
        if status == 401:
            raise ModelLoadError(
                f"The Hub refused {repo_id} without a login (401): it is private or gated, "
                "or its id is wrong.",
                f"Check the id; if it is gated, accept its licence at {page}. " + _LOGIN_HINT
            ) from exc
        if status == 403:
            raise ModelLoadError(
                f"The Hub refused access to {repo_id} (403): the licence is not accepted "
                "for your account, or your token lacks permission to read it.",
                f"Accept the licence at {page} (or ask its owner for access). "
                + _LOGIN_HINT) from exc
        if status == 404 or isinstance(exc, RepositoryNotFoundError):
            raise ModelLoadError(f"{repo_id} was not found on the Hub (404).",
                                 "Check the model id (organisation/name), or give a local "
                                 "model folder.") from exc
        raise ModelLoadError(f"The Hub answered {status} for {repo_id}: {exc}",
                             "Try again later; the download resumes where it stopped."
                             ) from exc
    except (httpx2.ConnectError, httpx2.TimeoutException) as exc:
        raise ModelLoadError(f"Cannot reach the Hugging Face Hub at {endpoint}.",
                             "Check the network (and proxy), or set HF_HUB_OFFLINE=1 to use "
                             "only models already in the cache.") from exc
