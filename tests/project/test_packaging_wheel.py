"""The wheel carries everything: build it, install it into a fresh venv, run the self-test there.

Dependencies (torch alone is gigabytes) are borrowed from the test environment through a .pth
file added *after* the wheel is installed, so pip never sees the test environment's own
tam-desktop; the project itself must come from the wheel.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def _run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    out = subprocess.run(cmd, capture_output=True, text=True, check=False, **kwargs)
    assert out.returncode == 0, f"{cmd} failed ({out.returncode}):\n{out.stdout}\n{out.stderr}"
    return out


def _source_copy(dest: Path) -> Path:
    """The checkout's files as a clone would have them (no build/ leftovers, no venv)."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO, capture_output=True, check=False,
    )
    if listed.returncode == 0:
        for name in filter(None, listed.stdout.decode().split("\0")):
            src = REPO / name
            if src.is_file():
                (dest / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(src, dest / name)
    else:  # not a git checkout (an unpacked archive): copy it, minus what git would ignore
        shutil.copytree(REPO, dest, dirs_exist_ok=True, ignore=shutil.ignore_patterns(
            ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache"))
    return dest


def _isolation_args() -> list[str]:
    """Build without isolation (no download) when this environment meets the build-system
    requirement; a fresh venv's older setuptools gets an isolated build instead."""
    try:
        major = int(importlib.metadata.version("setuptools").split(".")[0])
    except (importlib.metadata.PackageNotFoundError, ValueError):
        return []
    return ["--no-build-isolation"] if major >= 77 else []


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    # Build from a copy: setuptools reuses build/lib, where files deleted from the checkout
    # would linger and slip into the wheel.
    source = _source_copy(tmp_path_factory.mktemp("source"))
    wheelhouse = tmp_path_factory.mktemp("wheelhouse")
    _run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", *_isolation_args(),
          "--quiet", "--wheel-dir", str(wheelhouse)], cwd=wheelhouse)
    wheels = list(wheelhouse.glob("tam_desktop-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


def test_wheel_contains_the_resources(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "tam_engine/_resources/icons/tam-desktop.svg" in names
    assert "tam_engine/_resources/icons/tam-desktop-256.png" in names
    assert "tam_engine/_resources/sample_image.png" in names
    assert "tam_engine/_resources/sample_video.mp4" in names
    for model in ("demo_model", "demo_model_b"):   # the second one: compare works offline
        for f in ("config.json", "model.safetensors", "MODEL_CARD.md"):
            assert f"tam_engine/_resources/{model}/{f}" in names
    assert not any("__pycache__" in n for n in names)
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "tam-desktop = tam_desktop.__main__:main" in text


@pytest.fixture(scope="module")
def fresh_venv(wheel, tmp_path_factory) -> Path:
    venv = tmp_path_factory.mktemp("fresh") / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    py = venv / "bin" / "python"
    # The test environment's pip installs into the fresh interpreter (pip >= 22.3: --python).
    _run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps",
          "--no-index", "--quiet", str(wheel)])
    site = Path(_run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]
                     ).stdout.strip())
    # Plain path lines only: the borrowed site-packages' own .pth files (among them the
    # editable install of this checkout) are not processed, so they cannot shadow the wheel.
    host_site = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (site / "zz_borrowed_dependencies.pth").write_text("\n".join(sorted(host_site)) + "\n")
    return venv


def _clean_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env["QT_QPA_PLATFORM"] = "offscreen"
    env["HOME"] = str(tmp_path)  # settings/caches of the run stay in the test's folder
    env["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")
    return env


def test_project_and_resources_come_from_the_wheel(fresh_venv, tmp_path):
    code = (
        "import json, tam_desktop, tam_engine, tam_engine.core.resources as r\n"
        "print(json.dumps({'desktop': tam_desktop.__file__, 'engine': tam_engine.__file__,\n"
        "  'resources': str(r.resources_dir()), 'demo': str(r.demo_model_path()),\n"
        "  'demo_b': str(r.demo_model_b_path()),\n"
        "  'image': str(r.sample_image_path()), 'video': str(r.sample_video_path()),\n"
        "  'icon': str(r.icon_path(256))}))\n"
    )
    out = _run([str(fresh_venv / "bin" / "python"), "-c", code], cwd=tmp_path,
               env=_clean_env(tmp_path))
    paths = json.loads(out.stdout)
    for name, value in paths.items():
        path = Path(value)
        assert path.is_relative_to(fresh_venv), f"{name} resolved outside the fresh venv: {path}"
        assert path.exists(), (name, path)


def test_self_test_passes_from_the_installed_wheel(fresh_venv, tmp_path):
    exe = fresh_venv / "bin" / "tam-desktop"
    assert exe.exists()
    out = subprocess.run([str(exe), "--self-test"], capture_output=True, text=True, check=False,
                         cwd=tmp_path, env=_clean_env(tmp_path), timeout=600)
    report = out.stdout + out.stderr
    assert out.returncode == 0, report
    assert "self-test passed" in out.stdout, report
    assert str(fresh_venv) in report  # the resources line names where they were found
