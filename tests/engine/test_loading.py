"""Loading: clear errors for things that are not usable models, safe defaults."""

from __future__ import annotations

import inspect
import json
import shutil

import pytest
import torch

from tam_engine.core.errors import ModelLoadError
from tam_engine.inference.loading import load_model, resolve_device, resolve_dtype
from tam_engine.inference.settings import GenerationSettings


def test_folder_that_is_not_a_model(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ModelLoadError) as info:
        load_model(tmp_path)
    assert "config.json" in str(info.value) and info.value.hint


def test_missing_folder(tmp_path):
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_model(tmp_path / "nope" / "model")


def test_config_without_weights(tmp_path, tiny_model_dir):
    shutil.copy(tiny_model_dir("qwen2_vl") / "config.json", tmp_path / "config.json")
    with pytest.raises(ModelLoadError, match="no weights"):
        load_model(tmp_path)


def test_text_only_model_is_not_explainable(tmp_path):
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(vocab_size=32, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=2)
    LlamaForCausalLM(cfg).save_pretrained(tmp_path)
    with pytest.raises(ModelLoadError, match="not a vision-language model"):
        load_model(tmp_path)


def test_unknown_architecture(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "tam_no_such_model"}))
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(ModelLoadError) as info:
        load_model(tmp_path)
    assert "architecture" in str(info.value)


def test_pickled_weights_are_refused_unless_allowed(tmp_path, tiny_model_dir):
    src = tiny_model_dir("llava")
    for f in src.iterdir():
        if f.suffix != ".safetensors":
            shutil.copy(f, tmp_path / f.name)
    (tmp_path / "pytorch_model.bin").write_bytes(b"not really")
    with pytest.raises(ModelLoadError, match="pickled"):
        load_model(tmp_path)


def test_hub_id_missing_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError) as info:
        load_model("tam-desktop-tests/no-such-model")
    assert "offline" in str(info.value) and "HF_HUB_OFFLINE" in info.value.hint


def test_trust_remote_code_defaults_to_false():
    assert inspect.signature(load_model).parameters["trust_remote_code"].default is False
    assert GenerationSettings().trust_remote_code is False


def test_device_and_dtype_choice():
    dev = resolve_device("cpu")
    assert dev.type == "cpu" and resolve_dtype("auto", dev) == torch.float32
    assert resolve_dtype("bf16", dev) == torch.bfloat16
    with pytest.raises(ModelLoadError):
        resolve_dtype("float8", dev)
    with pytest.raises(ModelLoadError):
        resolve_device("tpu-please")
    if not torch.cuda.is_available():
        with pytest.raises(ModelLoadError, match="CUDA"):
            resolve_device("cuda")


def test_loads_a_tiny_model_with_its_adapter(tiny_model_dir):
    loaded = load_model(tiny_model_dir("llava"), device="cpu", dtype="float32")
    assert loaded.family == "llava" and loaded.device.type == "cpu"
    assert loaded.dtype == torch.float32 and not loaded.model.training
    assert next(loaded.model.parameters()).dtype == torch.float32


def test_hub_id_loads_from_the_cache_offline(tmp_path, tiny_model_dir):
    """A Hub id present in the Hugging Face cache loads with HF_HUB_OFFLINE=1 (fresh process, so
    the cache location is read from the environment as in real use)."""
    import os
    import subprocess
    import sys

    repo = tmp_path / "hub" / "models--tamtest--tiny-qwen"
    snap = repo / "snapshots" / "0123abcd"
    snap.mkdir(parents=True)
    for f in tiny_model_dir("qwen2_vl").iterdir():
        shutil.copy(f, snap / f.name)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0123abcd")
    env = dict(os.environ, HF_HUB_CACHE=str(tmp_path / "hub"), HF_HUB_OFFLINE="1")
    code = ("from tam_engine.inference.loading import load_model\n"
            "m = load_model('tamtest/tiny-qwen', device='cpu')\n"
            "print('LOADED', m.family, m.name)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         timeout=300)
    assert "LOADED qwen2_vl tamtest/tiny-qwen" in out.stdout, out.stderr[-2000:]


def test_out_of_memory_while_loading_names_the_fixes(tiny_model_dir, monkeypatch):
    import transformers

    from tam_engine.core.errors import ModelMemoryError

    def boom(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr(transformers.AutoModelForImageTextToText, "from_pretrained", boom)
    with pytest.raises(ModelMemoryError) as info:
        load_model(tiny_model_dir("qwen2_vl"))
    assert "dtype" in info.value.hint and "device" in info.value.hint


def test_model_folder_without_processor_files(tmp_path, tiny_model_dir):
    for f in tiny_model_dir("qwen2_vl").iterdir():
        if f.name in ("config.json", "model.safetensors", "generation_config.json"):
            shutil.copy(f, tmp_path / f.name)
    with pytest.raises(ModelLoadError) as info:
        load_model(tmp_path)
    assert "processor" in str(info.value)
