"""One typed, versioned settings object, stored as JSON in the user's config directory.

The location is ``platformdirs.user_config_dir("tam-desktop")``; the environment variable
``TAM_DESKTOP_CONFIG_DIR`` points it elsewhere (tests use a temporary directory). A missing or
unreadable file gives the defaults: a broken settings file must never stop the app from starting.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from tam_engine.core.atomic import atomic_write_bytes
from tam_engine.inference.settings import IMAGE_PROMPT, VIDEO_PROMPT, GenerationSettings

SETTINGS_VERSION = 1
CONFIG_DIR_ENV = "TAM_DESKTOP_CONFIG_DIR"
MAX_RECENT = 10
#: Joins the files of one Open Recent entry (a newline: no file name a user picks has one).
RECENT_SEPARATOR = "\n"

PROMPT_PRESETS = (
    IMAGE_PROMPT,
    VIDEO_PROMPT,
    "What objects are in this image?",
    "Describe the scene in one sentence.",
    "What is the person doing?",
    "Answer the question about the picture: what colour is the main object?",
)


#: The generation fields the user sets in the app and that settings.json keeps, under these
#: names. ``top_k`` keeps its default. ``trust_remote_code`` is never read from a file: it runs
#: code from a model's repository, so it must stay a deliberate choice, never a stored one.
STORED_GENERATION_FIELDS = ("max_new_tokens", "video_fps", "max_frames", "min_pixels",
                            "max_pixels", "device", "dtype")


@dataclass
class AppSettings:
    """Everything tam-desktop remembers between sessions."""

    version: int = SETTINGS_VERSION
    geometry: str = ""          # QMainWindow.saveGeometry(), base64
    compare_geometry: str = ""  # the compare window's saveGeometry(), base64
    splitter_state: str = ""
    last_model: str = ""
    recent_models: list[str] = field(default_factory=list)
    recent_files: list[str] = field(default_factory=list)
    last_dir: str = ""          # where the last Open dialog was left
    last_save_dir: str = ""     # where the last save or export went (never the Open folder)
    prompt: str = PROMPT_PRESETS[0]
    colormap: str = "jet"
    opacity: float = 0.5
    overlay_visible: bool = True
    scale: str = "joint"        # DisplayOptions.scale (tam_engine.render.scale.MAP_SCALES)
    combine: str = "mean"
    layer: str = "fused"
    tile_borders: bool = False
    generation: GenerationSettings = field(default_factory=GenerationSettings)

    # ------------------------------------------------------------------ recents
    def add_recent_file(self, path: str) -> None:
        self.recent_files = _push(self.recent_files, path)

    def add_recent_media(self, paths: list[str]) -> None:
        """Files opened together (several images) make one entry that reopens them all."""
        self.add_recent_file(RECENT_SEPARATOR.join(paths))

    def add_recent_model(self, name: str) -> None:
        self.recent_models = _push(self.recent_models, name)

    # ------------------------------------------------------------------ (de)serialise
    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["generation"] = {k: out["generation"][k] for k in STORED_GENERATION_FIELDS}
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AppSettings:
        """Build from stored JSON, keeping defaults for anything missing or of the wrong type."""
        out = cls()
        if not isinstance(data, dict):
            return out
        gen = data.get("generation")
        if isinstance(gen, dict):
            stored = {k: v for k, v in gen.items() if k in STORED_GENERATION_FIELDS}
            out.generation = _fill(GenerationSettings(), stored)
        rest = {k: v for k, v in data.items() if k not in ("generation", "version")}
        return _fill(out, rest)


def recent_entry_paths(entry: str) -> list[str]:
    """The files of one Open Recent entry (see :meth:`AppSettings.add_recent_media`)."""
    return [p for p in entry.split(RECENT_SEPARATOR) if p]


def _push(items: list[str], item: str) -> list[str]:
    return ([item] + [x for x in items if x != item])[:MAX_RECENT]


def _fill(obj: Any, values: dict[str, Any]) -> Any:
    """Copy values whose type matches the default's type (ints accepted for floats)."""
    for f in fields(obj):
        if f.name not in values or f.name == "generation":
            continue
        new, old = values[f.name], getattr(obj, f.name)
        if old is None:  # an optional int (pixel limits)
            ok = new is None or (isinstance(new, int) and not isinstance(new, bool))
        elif new is None:
            ok = False
        elif isinstance(old, bool):
            ok = isinstance(new, bool)
        elif isinstance(old, float):
            ok = isinstance(new, (int, float)) and not isinstance(new, bool)
        elif isinstance(old, list):
            ok = isinstance(new, list) and all(isinstance(x, str) for x in new)
        else:
            ok = isinstance(new, type(old)) and not isinstance(new, bool)
        if ok:
            setattr(obj, f.name, float(new) if isinstance(old, float) else new)
    return obj


def config_dir() -> Path:
    override = os.environ.get(CONFIG_DIR_ENV)
    if override:
        return Path(override)
    import platformdirs

    return Path(platformdirs.user_config_dir("tam-desktop", appauthor=False))


def settings_path() -> Path:
    return config_dir() / "settings.json"


def load_settings(path: Path | None = None) -> AppSettings:
    path = path or settings_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return AppSettings()
    return AppSettings.from_dict(data)


def save_settings(settings: AppSettings, path: Path | None = None) -> Path:
    path = path or settings_path()
    text = json.dumps(settings.to_dict(), indent=2, sort_keys=True)
    atomic_write_bytes(path, text.encode("utf-8"))
    return path
