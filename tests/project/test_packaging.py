"""Packaging: bundled resources, desktop integration files, version and command-line flags."""

from __future__ import annotations

import configparser
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from PIL import Image

import tam_desktop
import tam_engine
from tam_engine.core import resources
from tam_engine.core.errors import TamError

REPO = Path(__file__).resolve().parents[2]
PACKAGING = REPO / "packaging"
APP_ID = "io.github.tam_desktop.TamDesktop"


def _pyproject() -> dict:
    import tomllib

    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))


def test_versions_agree():
    version = _pyproject()["project"]["version"]
    assert tam_desktop.__version__ == version
    assert tam_engine.__version__ == version


def test_resources_are_found_in_the_top_level_folder_of_a_checkout():
    assert resources.resources_dir() == REPO / "resources"
    setuptools = _pyproject()["tool"]["setuptools"]
    # The wheel carries the folder as the data-only package tam_engine._resources.
    assert setuptools["package-dir"]["tam_engine._resources"] == "resources"
    assert setuptools["package-data"]["tam_engine._resources"] == ["**/*"]


def test_every_python_package_is_listed_for_the_wheel():
    listed = set(_pyproject()["tool"]["setuptools"]["packages"])
    on_disk = {
        ".".join(init.parent.relative_to(REPO).parts)
        for top in ("tam_engine", "tam_desktop")
        for init in (REPO / top).rglob("__init__.py")
    }
    assert on_disk <= listed, f"add to [tool.setuptools] packages: {sorted(on_disk - listed)}"
    assert listed - on_disk == {"tam_engine._resources"}


@pytest.mark.parametrize("size", resources.ICON_SIZES)
def test_png_icons_have_their_size(size):
    path = resources.icon_path(size)
    with Image.open(path) as im:
        assert im.format == "PNG"
        assert im.size == (size, size)
        assert im.mode == "RGBA"
        # Transparent corners: the icon is a rounded square, not a filled tile.
        assert im.getpixel((0, 0))[3] == 0


def test_svg_icon_is_valid_xml():
    root = ET.parse(resources.icon_path()).getroot()
    assert root.tag.endswith("svg")
    assert root.get("viewBox") == "0 0 512 512"


def test_unknown_icon_size_and_bad_names_are_refused():
    with pytest.raises(ValueError):
        resources.icon_path(17)
    with pytest.raises(ValueError):
        resources.resource_path("../pyproject.toml")
    with pytest.raises(ValueError):
        resources.resource_path("/etc/passwd")


def test_missing_resource_names_the_file_and_the_way_out():
    with pytest.raises(resources.ResourceMissingError) as err:
        resources.resource_path("no_such_file.bin")
    assert isinstance(err.value, TamError)
    assert "no_such_file.bin" in err.value.message
    assert "pip install" in err.value.hint
    assert not resources.resource_path("no_such_file.bin", must_exist=False).exists()


def test_frozen_bundle_lookup_uses_meipass(tmp_path, monkeypatch):
    bundled = tmp_path / "resources"
    (bundled / "icons").mkdir(parents=True)
    (bundled / "demo_model").mkdir()
    (bundled / "demo_model" / "config.json").write_text("{}", encoding="utf-8")
    (bundled / "icons" / "tam-desktop.svg").write_text("<svg/>", encoding="utf-8")
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    assert resources.resources_dir() == bundled
    assert resources.icon_path() == bundled / "icons" / "tam-desktop.svg"
    # A bundle without the resources folder falls back to the checkout, not to a dead path.
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path / "elsewhere"), raising=False)
    assert resources.resources_dir() == REPO / "resources"


def test_desktop_entry():
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str  # keys are case-sensitive in desktop entries
    parser.read(PACKAGING / f"{APP_ID}.desktop", encoding="utf-8")
    entry = parser["Desktop Entry"]
    assert entry["Type"] == "Application"
    assert entry["Exec"].split()[0] == "tam-desktop"
    assert entry["Icon"] == "tam-desktop"
    assert entry["Categories"].endswith(";")
    scripts = _pyproject()["project"]["gui-scripts"]
    assert "tam-desktop" in scripts


def test_appstream_metainfo():
    root = ET.parse(PACKAGING / f"{APP_ID}.metainfo.xml").getroot()
    assert root.get("type") == "desktop-application"
    assert root.findtext("id") == APP_ID
    assert root.find("launchable").text == f"{APP_ID}.desktop"
    assert root.find("provides/binary").text == "tam-desktop"
    versions = [r.get("version") for r in root.findall("releases/release")]
    assert versions[0] == tam_desktop.__version__


def _run_app(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tam_desktop", *args],
        capture_output=True, text=True, timeout=120, check=False,
    )


def test_version_flag():
    out = _run_app("--version")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"tam-desktop {tam_desktop.__version__}"


def test_help_flag_lists_self_test():
    out = _run_app("--help")
    assert out.returncode == 0, out.stderr
    assert "--self-test" in out.stdout
    assert "--version" in out.stdout


def _bundle_config():
    sys.path.insert(0, str(PACKAGING))
    try:
        import bundle_config
    finally:
        sys.path.remove(str(PACKAGING))
    return bundle_config


def test_pyinstaller_spec_is_valid_python_and_prints():
    spec = (PACKAGING / "tam-desktop.spec").read_text(encoding="utf-8")
    compile(spec, "tam-desktop.spec", "exec")
    assert "cfg.resource_files()" in spec
    assert "console=True" in spec  # --self-test must be able to print its report


def test_bundle_collects_every_resource_under_the_frozen_lookup_path():
    cfg = _bundle_config()
    files = cfg.resource_files()
    root = resources.resources_dir()
    for src, dest in files:
        # Where tam_engine.core.resources will look inside the bundle (sys._MEIPASS/...).
        rel = src.relative_to(root)
        assert f"{dest}/{rel.name}" == f"resources/{rel.as_posix()}"
        assert "__pycache__" not in src.parts and src.suffix not in (".py", ".pyc")
    collected = {src for src, _ in files}
    assert resources.icon_path() in collected
    assert all(resources.icon_path(n) in collected for n in resources.ICON_SIZES)


def test_bundle_keeps_what_loading_a_model_imports():
    # Found by running the bundle: torch.utils.checkpoint imports torch.testing._internal and
    # transformers' processors import torch.onnx; excluding them breaks every model load.
    cfg = _bundle_config()
    needed = ("torch.testing", "torch.onnx", "torch.distributed", "transformers", "torchvision")
    assert not [e for e in cfg.EXCLUDES if e.startswith(needed)]
    spec = (PACKAGING / "tam-desktop.spec").read_text(encoding="utf-8")
    assert 'collect_dynamic_libs(\n    "torchvision"' in spec


def test_bundle_refuses_real_model_weights(monkeypatch):
    cfg = _bundle_config()
    monkeypatch.setattr(cfg, "MAX_RESOURCE_BYTES", 1000)
    with pytest.raises(SystemExit, match="real model weights must not be bundled"):
        cfg.resource_files()


def test_packaging_extra_pins_pyinstaller_outside_the_main_dependencies():
    project = _pyproject()["project"]
    assert any(d.startswith("pyinstaller") for d in project["optional-dependencies"]["packaging"])
    assert not any(d.lower().startswith("pyinstaller") for d in project["dependencies"])
