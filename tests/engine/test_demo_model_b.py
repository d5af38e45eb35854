"""The second bundled demo model (resources/demo_model_b): complete, small, loadable, and
different from the main demo model where its model card says (an 8 x 8 map grid)."""

from __future__ import annotations

import hashlib
import json

from tam_engine.core.resources import demo_model_b_path, demo_model_path, sample_image_path


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_files_are_small_complete_and_not_a_copy_of_the_main_demo():
    folder = demo_model_b_path()
    names = {p.name for p in folder.iterdir()}
    assert {"config.json", "model.safetensors", "MODEL_CARD.md", "processor_config.json",
            "tokenizer.json", "training_info.json"} <= names
    assert sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) < 8 * 2**20
    assert json.loads((folder / "config.json").read_text())["model_type"] == "qwen2_vl"
    info = json.loads((folder / "training_info.json").read_text())
    assert info["args"]["size"] == 224 and info["args"]["lattice"] == 8
    card = (folder / "MODEL_CARD.md").read_text()
    assert "78ce1d5" in card and "8 x 8" in card
    assert _digest(folder / "model.safetensors") != _digest(
        demo_model_path() / "model.safetensors")


def test_it_explains_the_sample_image_on_an_8_by_8_grid():
    from tam_engine.inference.loading import load_model
    from tam_engine.inference.pipeline import run_and_explain
    from tam_engine.inference.settings import GenerationSettings
    from tam_engine.media.images import load_image

    loaded = load_model(str(demo_model_b_path()), device="cpu", dtype="float32")
    expl = run_and_explain(loaded, [load_image(sample_image_path())], "Describe this image.",
                           GenerationSettings(max_new_tokens=16, device="cpu"))
    grid = expl.grids[0]
    assert (grid.t, grid.h, grid.w) == (1, 8, 8)
    words = expl.answer_text.lower()
    assert any(shape in words for shape in ("circle", "square", "triangle")), words
