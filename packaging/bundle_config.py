"""What goes into the PyInstaller bundle: read by ``tam-desktop.spec`` and by the tests.

Kept as plain functions (no PyInstaller import at module level) so the test suite can check the
bundle's contents list without building it.
"""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RESOURCES = REPO / "resources"
#: Where the resources land inside the bundle (tam_engine.core.resources looks there via sys._MEIPASS).
RESOURCES_DEST = "resources"

#: The demo model is tiny; anything this large means real weights slipped into the resources.
MAX_RESOURCE_BYTES = 150 * 1024 * 1024
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf", ".ckpt")

#: transformers imports model code lazily by name, which PyInstaller cannot follow: name the
#: families the adapters support (and the vision/text towers they are built from).
TRANSFORMERS_MODELS = (
    "auto", "qwen2", "qwen2_vl", "qwen2_5_vl", "llava", "llama", "clip", "siglip",
    "internvl", "qwen3", "mistral",
)

#: Modules the application never uses; leaving them out saves space and build time.
EXCLUDES = (
    # torch's GPU compiler and tooling (inference runs eagerly). Not torch.testing._internal,
    # torch.onnx or torch.distributed: torch and transformers import them while loading.
    "triton", "torch.utils.tensorboard", "tensorboard",
    # notebooks, other GUI toolkits and plotting
    "IPython", "ipykernel", "jupyter_client", "matplotlib", "tkinter", "_tkinter", "PyQt5", "PyQt6",
    "pyqtgraph.examples", "pyqtgraph.opengl", "pyqtgraph.jupyter", "OpenGL",
    # build and test tools
    "pytest", "_pytest", "hypothesis", "pytestqt", "setuptools", "pip", "PyInstaller",
)

#: Qt modules never imported by tam-desktop (WebEngine alone is hundreds of MB).
QT_EXCLUDES = tuple(
    f"PySide6.{m}" for m in (
        "QtWebEngineCore", "QtWebEngineWidgets", "QtWebEngineQuick", "QtWebChannel",
        "QtWebSockets", "QtWebView", "Qt3DCore", "Qt3DRender", "Qt3DInput", "Qt3DLogic",
        "Qt3DAnimation", "Qt3DExtras", "QtQuick", "QtQuick3D", "QtQuickControls2",
        "QtQuickWidgets", "QtQml", "QtMultimedia", "QtMultimediaWidgets", "QtCharts",
        "QtDataVisualization", "QtGraphs", "QtPdf", "QtPdfWidgets", "QtBluetooth", "QtNfc",
        "QtPositioning", "QtLocation", "QtSensors", "QtSerialPort", "QtSerialBus", "QtSql",
        "QtTest", "QtDesigner", "QtHelp", "QtScxml", "QtRemoteObjects", "QtSpatialAudio",
        "QtTextToSpeech", "QtHttpServer", "QtStateMachine", "QtAxContainer", "QtUiTools",
    )
)


def resource_files() -> list[tuple[Path, str]]:
    """Every file under the top-level ``resources/`` as ``(source, destination folder)``.

    Raises
    ------
    SystemExit
        If the resources hold model weights larger than a demo model ever needs.
    """
    out: list[tuple[Path, str]] = []
    total = 0
    for path in sorted(RESOURCES.rglob("*")):
        if not path.is_file() or "__pycache__" in path.parts or path.suffix in (".py", ".pyc"):
            continue
        rel_dir = path.parent.relative_to(RESOURCES).as_posix()
        dest = RESOURCES_DEST if rel_dir == "." else f"{RESOURCES_DEST}/{rel_dir}"
        out.append((path, dest))
        total += path.stat().st_size
    if total > MAX_RESOURCE_BYTES:
        big = sorted(out, key=lambda item: item[0].stat().st_size, reverse=True)[:3]
        raise SystemExit(
            f"resources/ holds {total / 2**20:.0f} MiB (largest: "
            + ", ".join(str(p.relative_to(REPO)) for p, _ in big)
            + "): real model weights must not be bundled; users download them from the Hub."
        )
    return out


def transformers_hidden_imports() -> list[str]:
    """Module names of the transformers model families the bundle must be able to load."""
    from PyInstaller.utils.hooks import collect_submodules

    names: list[str] = []
    for family in TRANSFORMERS_MODELS:
        names += collect_submodules(f"transformers.models.{family}")
    return names
