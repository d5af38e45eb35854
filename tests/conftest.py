from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


# ---------------------------------------------------------------- tiny models
import pytest  # noqa: E402


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """``tiny_model_dir(family) -> Path``: a random tiny model with its real processor, built
    once per test session in a temporary folder (never in the repo)."""
    from tam_engine.testing.tiny_models import build_tiny_model

    root = tmp_path_factory.mktemp("tiny_models")
    built: dict[str, object] = {}

    def get(family: str):
        if family not in built:
            built[family] = build_tiny_model(family, root / family)
        return built[family]

    return get


@pytest.fixture(scope="session")
def tiny_loaded(tiny_model_dir):
    """``tiny_loaded(family) -> LoadedModel`` on the CPU, loaded once per session."""
    from tam_engine.inference.loading import load_model

    loaded: dict[str, object] = {}

    def get(family: str):
        if family not in loaded:
            loaded[family] = load_model(tiny_model_dir(family), device="cpu")
        return loaded[family]

    return get


# ---------------------------------------------------------------- settings and media
import tempfile  # noqa: E402

# No test may read or write the user's real tam-desktop settings.
os.environ.setdefault("TAM_DESKTOP_CONFIG_DIR", tempfile.mkdtemp(prefix="tam-desktop-config-"))
