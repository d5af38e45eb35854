"""A small Hugging Face Hub on 127.0.0.1, for testing downloads without the network.

It serves local model folders in the Hub's layout, with the endpoints ``huggingface_hub`` and
:mod:`tam_engine.inference.hub` call:

- ``GET /api/models/<org>/<name>/revision/<rev>``: the model info (commit ``sha``, and
  ``siblings`` with each file's size; ``.safetensors`` files as LFS entries);
- ``HEAD`` and ``GET /<org>/<name>/resolve/<rev>/<file>``: ``X-Repo-Commit``, ``ETag`` (the
  content's sha256), ``Content-Length``, ``Accept-Ranges``, and ``Range`` requests answered
  with ``206`` and ``Content-Range``.

Test knobs: ``deny`` answers a repo with a status (401/403/404) and the Hub's ``X-Error-Code``;
``cut_after`` closes the connection after that many bytes of the first GET of each file (an
interrupted download); ``chunk_delay`` slows the body down (time to cancel); ``requests``
records what was asked.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

__all__ = ["FakeHub"]

SHA = "0123456789abcdef0123456789abcdef01234567"


class FakeHub:
    def __init__(self, repos: dict[str, Path], sha: str = SHA) -> None:
        self.repos = {k: Path(v) for k, v in repos.items()}
        self.sha = sha
        self.deny: dict[str, tuple[int, str | None]] = {}
        self.cut_after: int | None = None
        self.chunk_delay = 0.0
        self.chunk = 16 * 1024
        self.requests: list[tuple[str, str, str | None]] = []
        self._cut_done: set[str] = set()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> FakeHub:
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> FakeHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ content
    def files(self, repo: str) -> dict[str, Path]:
        root = self.repos[repo]
        return {p.relative_to(root).as_posix(): p for p in sorted(root.rglob("*")) if p.is_file()}

    def info(self, repo: str) -> dict[str, Any]:
        siblings = []
        for name, path in self.files(repo).items():
            data = path.read_bytes()
            entry: dict[str, Any] = {"rfilename": name, "size": len(data),
                                     "blobId": hashlib.sha1(data).hexdigest()}
            if name.endswith(".safetensors"):
                entry["lfs"] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data),
                                "pointerSize": 134}
            siblings.append(entry)
        return {"_id": repo, "id": repo, "modelId": repo, "sha": self.sha, "private": False,
                "siblings": siblings, "tags": [], "downloads": 0, "likes": 0}

    def should_cut(self, key: str) -> int | None:
        with self._lock:
            if self.cut_after is None or key in self._cut_done:
                return None
            self._cut_done.add(key)
            return self.cut_after


def _handler(hub: FakeHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def do_HEAD(self) -> None:
            self._serve(body=False)

        def do_GET(self) -> None:
            self._serve(body=True)

        def _error(self, status: int, code: str | None) -> None:
            self.send_response(status)
            if code:
                self.send_header("X-Error-Code", code)
            payload = json.dumps({"error": code or str(status)}).encode()
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)

        def _serve(self, body: bool) -> None:
            path = unquote(urlsplit(self.path).path)
            hub.requests.append((self.command, path, self.headers.get("Range")))
            parts = path.strip("/").split("/")
            if parts[:2] == ["api", "models"] and len(parts) >= 4:
                repo = "/".join(parts[2:4])
                if not self._allowed(repo):
                    return
                payload = json.dumps(hub.info(repo)).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if body:
                    self.wfile.write(payload)
                return
            if len(parts) >= 5 and parts[2] == "resolve":
                repo = "/".join(parts[:2])
                if not self._allowed(repo):
                    return
                files = hub.files(repo)
                name = "/".join(parts[4:])
                if name not in files:
                    self._error(404, "EntryNotFound")
                    return
                self._file(repo, name, files[name].read_bytes(), body)
                return
            self._error(404, None)

        def _allowed(self, repo: str) -> bool:
            if repo in hub.deny:
                self._error(*hub.deny[repo])
                return False
            if repo not in hub.repos:
                self._error(404, "RepoNotFound")
                return False
            return True

        def _file(self, repo: str, name: str, data: bytes, body: bool) -> None:
            start = 0
            ranged = self.headers.get("Range")
            if ranged and ranged.startswith("bytes="):
                start = int(ranged[6:].split("-")[0] or 0)
            self.send_response(206 if start else 200)
            self.send_header("X-Repo-Commit", hub.sha)
            self.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Length", str(len(data) - start))
            if start:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.end_headers()
            if not body:
                return
            cut = hub.should_cut(f"{repo}/{name}")
            end = len(data) if cut is None else min(len(data), start + cut)
            for pos in range(start, end, hub.chunk):
                try:
                    self.wfile.write(data[pos:min(end, pos + hub.chunk)])
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    return
                if hub.chunk_delay:
                    time.sleep(hub.chunk_delay)
            if end < len(data):  # an interrupted transfer: the connection drops mid-body
                self.close_connection = True
                self.connection.close()

    return Handler
