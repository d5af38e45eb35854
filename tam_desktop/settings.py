"""One typed, versioned settings object, stored as JSON in the user's config directory.

The location is ``platformdirs.user_config_dir("tam-desktop")``; the environment variable
``TAM_DESKTOP_CONFIG_DIR`` points it elsewhere (tests use a temporary directory). A missing or
unreadable file gives the defaults: a broken settings file must never stop the app from starting.
Every field is checked on load (type and range); a bad one falls back to its default alone, and
:attr:`AppSettings.problems` says which, so the window tells the user once.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from tam_engine.core.atomic import atomic_write_bytes
from tam_engine.core.errors import TamError
from tam_engine.core.placement import LAYERS
from tam_engine.inference.settings import IMAGE_PROMPT, VIDEO_PROMPT, GenerationSettings
from tam_engine.render.colormaps import COLORMAPS
from tam_engine.render.scale import MAP_SCALES

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
    #: What was wrong with the stored file (one line per field reset); never stored.
    problems: list[str] = field(default_factory=list, compare=False, repr=False)

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
        del out["problems"]
        out["generation"] = {k: out["generation"][k] for k in STORED_GENERATION_FIELDS}
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AppSettings:
        """Build from stored JSON, keeping the default of anything missing, of the wrong type or
        out of range (each such field is named in :attr:`problems`)."""
        out = cls()
        if not isinstance(data, dict):
            out.problems.append("the file does not hold a settings object")
            return out
        gen = data.get("generation")
        if isinstance(gen, dict):
            stored = {k: v for k, v in gen.items() if k in STORED_GENERATION_FIELDS}
            out.generation = _fill(GenerationSettings(), stored, out.problems, "generation.")
        elif gen is not None:
            out.problems.append("generation: not a group of settings")
        rest = {k: v for k, v in data.items()
                if k not in ("generation", "version", "problems")}
        return _fill(out, rest, out.problems)


def recent_entry_paths(entry: str) -> list[str]:
    """The files of one Open Recent entry (see :meth:`AppSettings.add_recent_media`)."""
    return [p for p in entry.split(RECENT_SEPARATOR) if p]


def _push(items: list[str], item: str) -> list[str]:
    return ([item] + [x for x in items if x != item])[:MAX_RECENT]


def _in(choices: tuple[str, ...]) -> Callable[[Any], bool]:
    return lambda v: v in choices


def _between(lo: float, hi: float) -> Callable[[Any], bool]:
    return lambda v: v is None or (math.isfinite(v) and lo <= v <= hi)


def _generation_ok(name: str) -> Callable[[Any], bool]:
    """The engine's own range check of one generation field (one owner of the limits)."""
    def ok(value: Any) -> bool:
        try:
            GenerationSettings(**{name: value}).check()
        except TamError:
            return False
        return True
    return ok


#: Range checks beyond the type (the type is checked against the default's for every field).
_VALID: dict[str, Callable[[Any], bool]] = {
    "colormap": _in(COLORMAPS),
    "combine": _in(("mean", "max")),
    "layer": _in(LAYERS),
    "scale": _in(MAP_SCALES),
    "opacity": _between(0.0, 1.0),
    **{name: _generation_ok(name) for name in ("max_new_tokens", "video_fps", "max_frames",
                                               "min_pixels", "max_pixels")},
    "dtype": _in(("auto", "float32", "bfloat16", "float16")),
    "device": lambda v: bool(v.strip()) and len(v) < 64,
}


def _fill(obj: Any, values: dict[str, Any], problems: list[str] | None = None,
          prefix: str = "") -> Any:
    """Copy values whose type matches the default's type (ints accepted for floats) and that
    pass the field's check; note every other one in ``problems``."""
    for f in fields(obj):
        if f.name not in values or f.name in ("generation", "problems"):
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
        if ok and f.name in _VALID:
            ok = _VALID[f.name](new)
        if ok:
            setattr(obj, f.name, float(new) if isinstance(old, float) else new)
        elif problems is not None:
            problems.append(f"{prefix}{f.name}: {_short(new)} (kept the default, {old!r})")
    return obj


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


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
    except FileNotFoundError:
        return AppSettings()
    except (OSError, ValueError, RecursionError) as exc:
        out = AppSettings()
        out.problems.append(f"the file cannot be read ({type(exc).__name__}); all defaults")
        return out
    return AppSettings.from_dict(data)


def save_settings(settings: AppSettings, path: Path | None = None) -> Path:
    path = path or settings_path()
    text = json.dumps(settings.to_dict(), indent=2, sort_keys=True)
    atomic_write_bytes(path, text.encode("utf-8"))
    return path
