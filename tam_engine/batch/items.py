"""What a batch explains: items from a folder, a glob, or a JSONL/CSV manifest.

Every item has an id (unique in the batch; it also names the item's ``.tam.npz``), its media
paths in order, a prompt and, from a manifest, an optional given answer. Anything that cannot
be read as the user meant (an unknown manifest column, a duplicate id, no media) is refused
with a :class:`TamError` before a model is loaded: a batch that silently explains the wrong
thing is worse than one that does not start.
"""

from __future__ import annotations

import csv
import glob
import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from tam_engine.core.errors import TamError
from tam_engine.inference import settings
from tam_engine.media.files import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS

MANIFEST_SUFFIXES = (".jsonl", ".csv")
MANIFEST_FIELDS = ("id", "media", "prompt", "answer")
#: Several media of one CSV row are separated by this character.
CSV_MEDIA_SEPARATOR = "|"
_GLOB_CHARS = re.compile(r"[*?\[]")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class BatchInputError(TamError):
    """The list of items (folder, glob or manifest) cannot be read as given."""


@dataclass(frozen=True)
class BatchItem:
    id: str
    media: tuple[str, ...]
    prompt: str
    answer: str | None = None


def is_batch_source(media: list[str]) -> bool:
    """Whether ``tam explain``'s media argument names many items rather than one run's media:
    a single folder, a manifest, or a (quoted) glob pattern that is not itself a file."""
    if len(media) != 1:
        return False
    arg = media[0]
    path = Path(arg)
    if path.is_dir() or path.suffix.lower() in MANIFEST_SUFFIXES:
        return True
    return bool(_GLOB_CHARS.search(arg)) and not path.exists()


def default_prompt(media: tuple[str, ...], prompt: str | None) -> str:
    if prompt:
        return prompt
    video = any(Path(m).suffix.lower() in VIDEO_EXTENSIONS for m in media)
    return settings.default_prompt(video)


def _is_media(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS + VIDEO_EXTENSIONS


def _items_from_paths(paths: list[Path], root: Path, prompt: str | None) -> list[BatchItem]:
    """One item per file, id = its path below ``root`` (unique, stable across runs)."""
    items = []
    for p in sorted(paths, key=lambda q: q.relative_to(root).as_posix()):
        media = (str(p),)
        items.append(BatchItem(p.relative_to(root).as_posix(), media,
                               default_prompt(media, prompt)))
    return items


def from_folder(folder: Path, prompt: str | None = None) -> list[BatchItem]:
    """Every image and video below ``folder`` (recursively; hidden files skipped)."""
    paths = [p for p in folder.rglob("*") if _is_media(p)
             and not any(part.startswith(".") for part in p.relative_to(folder).parts)]
    if not paths:
        raise BatchInputError(f"{folder} holds no image or video files.",
                              "Supported: " + ", ".join(IMAGE_EXTENSIONS + VIDEO_EXTENSIONS))
    return _items_from_paths(paths, folder, prompt)


def from_glob(pattern: str, prompt: str | None = None) -> list[BatchItem]:
    paths = [Path(p) for p in glob.glob(pattern, recursive=True) if _is_media(Path(p))]
    if not paths:
        raise BatchInputError(f"no image or video file matches {pattern!r}.",
                              "Check the pattern (quote it so that the shell does not expand "
                              "it), or pass a folder.")
    root = Path(os.path.commonpath([str(p.parent.resolve()) for p in paths]))
    return _items_from_paths([p.resolve() for p in paths], root, prompt)


def _manifest_rows(path: Path) -> list[dict]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise BatchInputError(f"cannot read the manifest {path.name} ({exc}).",
                              "Write it as UTF-8 text.") from exc
    rows: list[dict] = []
    if path.suffix.lower() == ".jsonl":
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as exc:
                raise BatchInputError(f"{path.name}, line {n}: not JSON ({exc}).",
                                      "One JSON object per line.") from exc
            if not isinstance(row, dict):
                raise BatchInputError(f"{path.name}, line {n}: not a JSON object.",
                                      'Example: {"media": "a.jpg", "prompt": "What is it?"}')
            rows.append(row)
    else:
        reader = csv.DictReader(text.splitlines())
        for row in reader:
            if None in row:
                raise BatchInputError(f"{path.name}, line {reader.line_num}: more cells than "
                                      "columns.", "Quote cells that contain commas.")
            media = [m.strip() for m in (row.get("media") or "").split(CSV_MEDIA_SEPARATOR)]
            rows.append({k: v for k, v in row.items() if v not in ("", None)}
                        | ({"media": [m for m in media if m]} if "media" in row else {}))
    return rows


def from_manifest(path: Path, prompt: str | None = None) -> list[BatchItem]:
    """Rows of ``id`` (optional), ``media`` (a path or a list; CSV: paths separated by ``|``),
    ``prompt`` (optional: ``prompt`` or the default) and ``answer`` (optional). Relative media
    paths are relative to the manifest's folder."""
    items: list[BatchItem] = []
    for n, row in enumerate(_manifest_rows(path), 1):
        unknown = sorted(set(row) - set(MANIFEST_FIELDS))
        if unknown:
            raise BatchInputError(f"{path.name}, item {n}: unknown field(s) {', '.join(unknown)}.",
                                  "Fields: " + ", ".join(MANIFEST_FIELDS) + ".")
        media = row.get("media")
        media_list = [media] if isinstance(media, str) else media
        if (not isinstance(media_list, list) or not media_list
                or not all(isinstance(m, str) and m for m in media_list)):
            raise BatchInputError(f"{path.name}, item {n}: no media.",
                                  'Give "media" as a path or a list of paths.')
        resolved = tuple(str(p if p.is_absolute() else path.parent / p)
                         for p in map(Path, media_list))
        for key in ("id", "prompt", "answer"):
            if key in row and not isinstance(row[key], str):
                raise BatchInputError(f"{path.name}, item {n}: {key} must be text.")
        item_id = row.get("id") or "+".join(media_list)
        items.append(BatchItem(item_id, resolved, default_prompt(resolved, row.get("prompt")
                                                                 or prompt), row.get("answer")))
    if not items:
        raise BatchInputError(f"the manifest {path.name} has no items.")
    return items


def collect_items(source: str, prompt: str | None = None) -> list[BatchItem]:
    """The items of a folder, a manifest (``.jsonl`` / ``.csv``) or a glob pattern."""
    path = Path(source)
    if path.is_dir():
        items = from_folder(path, prompt)
    elif path.suffix.lower() in MANIFEST_SUFFIXES:
        if not path.is_file():
            raise BatchInputError(f"the manifest {source} does not exist.")
        items = from_manifest(path, prompt)
    else:
        items = from_glob(source, prompt)
    seen: set[str] = set()
    for it in items:
        if it.id in seen:
            raise BatchInputError(f"two items have the id {it.id!r}.",
                                  "Give every manifest row its own id.")
        seen.add(it.id)
    return items


def item_file_name(item_id: str) -> str:
    """The item's explanation file name: its id made safe for any file system, with a short
    hash of the exact id so that ids differing only in unsafe characters never collide."""
    safe = _UNSAFE.sub("_", item_id).strip("._")[:80] or "item"
    digest = hashlib.sha1(item_id.encode("utf-8")).hexdigest()[:8]
    return f"{safe}-{digest}.tam.npz"
