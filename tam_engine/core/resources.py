"""Files shipped with tam-desktop: the demo model, sample media, icons and fonts.

They live in the repository's top-level ``resources/`` folder, and one lookup finds them in every
kind of installation:

- a source checkout or an editable install: ``<repository>/resources``;
- an installed wheel: ``pyproject.toml`` maps the folder to the data-only package
  ``tam_engine._resources``, so it sits at ``site-packages/tam_engine/_resources``;
- the PyInstaller one-folder bundle: collected under ``<bundle>/_internal/resources``.

Layout (relative to that folder)::

    demo_model/          a tiny, honestly trained model loadable by ``load_model``
    demo_model_b/        its earlier 8 x 8-grid version: a second model to compare offline
    sample_image.png     the image the demo and the self-test explain
    sample_video.mp4     a short clip for the video demo
    icons/tam-desktop.svg, icons/tam-desktop-<N>.png   application icon (N = 16 ... 512)
    fonts/               fonts the renderer may bundle (optional)

Always go through these functions, never through a path relative to the repository: the
repository's layout is not the installed layout.
"""

from __future__ import annotations

import sys
from importlib import resources as _importlib_resources
from pathlib import Path, PurePosixPath

from tam_engine.core.errors import TamError

__all__ = [
    "ICON_SIZES",
    "ResourceMissingError",
    "demo_model_b_path",
    "demo_model_path",
    "font_path",
    "fonts_dir",
    "icon_path",
    "resource_path",
    "resources_dir",
    "sample_image_path",
    "sample_video_path",
]

#: Sizes of the PNG application icons (the SVG is the source).
ICON_SIZES: tuple[int, ...] = (16, 24, 32, 48, 64, 128, 256, 512)


class ResourceMissingError(TamError):
    """A file that should ship with tam-desktop is not where the installation put it."""


#: A file every complete resources folder holds; it tells the real folder from a stray one.
_MARKER = "demo_model/config.json"


def resources_dir() -> Path:
    """Directory holding the bundled resources, whatever the kind of installation."""
    candidates: list[Path] = []
    meipass = getattr(sys, "_MEIPASS", None)
    if meipass:
        candidates.append(Path(meipass) / "resources")
    # A source checkout or an editable install: tam_engine/core/resources.py -> <repo>/resources.
    candidates.append(Path(__file__).resolve().parents[2] / "resources")
    # An installed wheel: the data-only package beside this one. Wheels install plain files, so
    # the Traversable is a real directory and a Path to it stays valid for the process's life.
    candidates.append(Path(str(_importlib_resources.files("tam_engine"))) / "_resources")
    for candidate in candidates:
        if (candidate / _MARKER).is_file():
            return candidate
    # Nothing complete was found: name the most likely place so the error message points there.
    return candidates[-1] if not meipass else candidates[0]


def resource_path(name: str, *, must_exist: bool = True) -> Path:
    """Path of the bundled resource ``name`` (a POSIX-style relative path).

    Raises
    ------
    ResourceMissingError
        If ``must_exist`` and the file or directory is not there.
    """
    posix = PurePosixPath(name)
    if posix.is_absolute() or ".." in posix.parts or "\\" in name or ":" in name:
        raise ValueError(f"resource names are relative paths inside the package: {name!r}")
    path = resources_dir().joinpath(*posix.parts)
    if must_exist and not path.exists():
        raise ResourceMissingError(
            f"The bundled resource {name!r} is missing (looked in {path}).",
            "Reinstall tam-desktop; from a source checkout, run `pip install -e .` from the "
            "repository root so the package data is in place.",
        )
    return path


def demo_model_path() -> Path:
    """Directory of the bundled demo model (pass it to ``tam_engine.inference.loading.load_model``)."""
    return resource_path("demo_model")


def demo_model_b_path() -> Path:
    """Directory of the second bundled demo model (the earlier 224 px / 8 x 8 version), so that
    comparing two models works without a download."""
    return resource_path("demo_model_b")


def sample_image_path() -> Path:
    """The sample image used by the demo and by ``tam-desktop --self-test``."""
    return resource_path("sample_image.png")


def sample_video_path() -> Path:
    """The sample video clip used by the video demo."""
    return resource_path("sample_video.mp4")


def icon_path(size: int | None = None) -> Path:
    """The application icon: the SVG when ``size`` is None, else the ``size`` px PNG."""
    if size is None:
        return resource_path("icons/tam-desktop.svg")
    if size not in ICON_SIZES:
        raise ValueError(f"no {size} px icon; sizes are {ICON_SIZES}")
    return resource_path(f"icons/tam-desktop-{size}.png")


def fonts_dir() -> Path:
    """Directory of bundled fonts (may be empty: the renderer falls back to its own choice)."""
    return resource_path("fonts", must_exist=False)


def font_path(filename: str) -> Path:
    """Path of a bundled font file, e.g. ``font_path("DejaVuSans.ttf")``."""
    return resource_path(f"fonts/{filename}")
