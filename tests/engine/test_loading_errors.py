"""Loading: a missing optional package and a missing chat template are errors a user can act on
(a ModelLoadError naming the pip package, or the template), never a raw ImportError/ValueError."""

from __future__ import annotations

import importlib.util
import json
import shutil

import pytest

from tam_engine.core.errors import ModelLoadError
from tam_engine.inference.loading import load_model, missing_packages


@pytest.mark.parametrize(("exc", "packages"), [
    (ModuleNotFoundError("No module named 'num2words'", name="num2words"), ["num2words"]),
    (ImportError("Package `num2words` is required to run SmolVLM processor. Install it with "
                 "`pip install num2words`."), ["num2words"]),
    (ModuleNotFoundError("No module named 'cv2'", name="cv2"), ["opencv-python"]),
    (ModuleNotFoundError("No module named 'google.protobuf'", name="google.protobuf"),
     ["protobuf"]),
    (ImportError("No module named 'qwen_vl_utils'"), ["qwen-vl-utils"]),
    (ImportError("LlamaTokenizer requires the SentencePiece library but it was not found in "
                 "your environment."), ["sentencepiece"]),
    (ImportError("This modeling file requires the following packages that were not found in "
                 "your environment: flash_attn, einops. Run `pip install flash_attn einops`"),
     ["flash-attn", "einops"]),
    (ImportError("cannot import name 'thing' from partially initialized module"), []),
])
def test_missing_packages_names_what_to_pip_install(exc, packages):
    assert missing_packages(exc) == packages


@pytest.mark.skipif(importlib.util.find_spec("num2words") is not None,
                    reason="num2words is installed here")
def test_a_processor_missing_its_optional_package_names_it(tmp_path):
    # A real SmolVLM processor folder: its processor needs num2words, which is not installed.
    import transformers as tf

    from tam_engine.testing.tiny_models import build_tokenizer

    build_tokenizer(special_tokens=("<|endoftext|>", "<image>", "<fake_token_around_image>",
                                    "<global-img>", "<end_of_utterance>")).save_pretrained(tmp_path)
    tf.SmolVLMImageProcessor().save_pretrained(tmp_path)
    (tmp_path / "processor_config.json").write_text(
        json.dumps({"processor_class": "SmolVLMProcessor", "image_seq_len": 4}))
    tf.SmolVLMConfig().save_pretrained(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(ModelLoadError) as info:
        load_model(tmp_path, device="cpu")
    assert "num2words" in info.value.message
    assert "pip install num2words" in info.value.hint
    assert isinstance(info.value.__cause__, ImportError)


def test_a_checkpoint_without_a_chat_template_is_refused_at_load(tmp_path, tiny_model_dir):
    shutil.copytree(tiny_model_dir("mistral3"), tmp_path, dirs_exist_ok=True)
    (tmp_path / "chat_template.jinja").unlink()
    with pytest.raises(ModelLoadError) as info:
        load_model(tmp_path, device="cpu")
    assert "no chat template" in info.value.message and "(Mistral 3)" in info.value.message
    assert "chat_template.jinja" in info.value.hint


def test_paligemma_needs_no_chat_template(tiny_model_dir):
    folder = tiny_model_dir("paligemma")
    assert not (folder / "chat_template.jinja").exists()
    assert load_model(folder, device="cpu").family == "paligemma"
