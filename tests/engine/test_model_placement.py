"""Placement choices: the CLI flags, the from_pretrained arguments, 4/8-bit without
bitsandbytes, and checkpoints whose own quantisation covers lm_head."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from tam_engine.cli import build_parser, main
from tam_engine.cli.options import load_kwargs
from tam_engine.core.errors import ModelLoadError
from tam_engine.inference import model_placement
from tam_engine.inference.loading import load_model
from tam_engine.inference.model_placement import (
    ModelPlacement,
    check_head,
    parse_max_memory,
    placement_kwargs,
)


def test_parse_max_memory():
    assert parse_max_memory("0=20GiB, 1=20GiB,cpu=64GiB") == {0: "20GiB", 1: "20GiB",
                                                               "cpu": "64GiB"}
    for bad in ("0:20GiB", "gpu0=20GiB", "0=lots", ""):
        with pytest.raises(ModelLoadError):
            parse_max_memory(bad)


def test_cli_flags_make_a_placement():
    args = build_parser().parse_args(
        ["explain", "a.png", "--device-map", "auto", "--max-memory", "0=20GiB,cpu=64GiB",
         "--offload-folder", "/tmp/off", "--load-in-4bit"])
    assert load_kwargs(args)["placement"] == ModelPlacement(
        device_map="auto", max_memory={0: "20GiB", "cpu": "64GiB"}, offload_folder="/tmp/off",
        quantization="4bit")
    # Limits or an offload folder alone mean an automatic map; nothing means one device.
    args = build_parser().parse_args(["explain", "a.png", "--offload-folder", "/tmp/off"])
    assert load_kwargs(args)["placement"].device_map == "auto"
    assert "placement" not in load_kwargs(build_parser().parse_args(["explain", "a.png"]))


def test_cli_refuses_bad_memory_limits_and_both_bit_widths(tmp_path, capsys):
    img = tmp_path / "a.png"
    from PIL import Image

    Image.new("RGB", (32, 32)).save(img)
    assert main(["explain", str(img), "--model", str(tmp_path / "m"), "--out", str(tmp_path),
                 "--max-memory", "gpu=3"]) == 2
    assert "memory limits" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        build_parser().parse_args(["explain", "a.png", "--load-in-4bit", "--load-in-8bit"])


def test_placement_kwargs():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert placement_kwargs(ModelPlacement(), cpu, torch.float32) == {}
    assert placement_kwargs(ModelPlacement(), cuda, torch.float32) == {"device_map": {"": "cuda"}}
    got = placement_kwargs(ModelPlacement("auto", {0: "1GiB"}, "/o"), cuda, torch.bfloat16)
    assert got == {"device_map": "auto", "max_memory": {0: "1GiB"}, "offload_folder": "/o"}


@pytest.mark.parametrize("bits", ["4bit", "8bit"])
def test_quantised_loading_without_bitsandbytes_is_refused_clearly(bits, monkeypatch,
                                                                   tiny_model_dir):
    monkeypatch.setattr(model_placement, "bitsandbytes_available", lambda: False)
    with pytest.raises(ModelLoadError) as info:
        load_model(tiny_model_dir("qwen2_vl"), device="cpu",
                   placement=ModelPlacement(quantization=bits))  # type: ignore[arg-type]
    assert "bitsandbytes" in info.value.message
    assert "tam-desktop[quant]" in info.value.hint


@pytest.mark.skipif(model_placement.bitsandbytes_available(), reason="bitsandbytes installed")
def test_bitsandbytes_really_is_absent_here_and_refused(tiny_model_dir):
    with pytest.raises(ModelLoadError, match="bitsandbytes"):
        load_model(tiny_model_dir("qwen2_vl"), device="cpu",
                   placement=ModelPlacement(quantization="4bit"))


@pytest.mark.parametrize("bits", ["4bit", "8bit"])
def test_bnb_config_keeps_lm_head_unquantised(bits, monkeypatch):
    """The quantisation config we hand to transformers names lm_head among the modules left
    unquantised (TAM reads its rows). Built as where bitsandbytes is installed; building the
    config does not need the package itself, only loading does (the test above)."""
    import tam_engine.inference.model_placement as model_placement

    monkeypatch.setattr(model_placement, "bitsandbytes_available", lambda: True)
    got = placement_kwargs(ModelPlacement(quantization=bits), torch.device("cuda"),
                           torch.bfloat16)["quantization_config"]
    assert (got.load_in_4bit, got.load_in_8bit) == (bits == "4bit", bits == "8bit")
    assert got.llm_int8_skip_modules == ["lm_head"]


def _quantised_copy(tmp_path, tiny_model_dir, qconfig):
    src = tiny_model_dir("qwen2_vl")
    dst = tmp_path / "model"
    shutil.copytree(src, dst)
    cfg = json.loads((dst / "config.json").read_text())
    cfg["quantization_config"] = qconfig
    (dst / "config.json").write_text(json.dumps(cfg))
    return dst


def test_checkpoint_with_quantised_lm_head_is_refused_before_loading(tmp_path, tiny_model_dir):
    path = _quantised_copy(tmp_path, tiny_model_dir,
                           {"quant_method": "gptq", "bits": 4, "lm_head": True})
    with pytest.raises(ModelLoadError) as info:
        load_model(path, device="cpu")
    assert "lm_head" in info.value.message and "gptq" in info.value.message


def test_quantised_checkpoint_is_not_quantised_twice(tmp_path, tiny_model_dir):
    path = _quantised_copy(tmp_path, tiny_model_dir, {"quant_method": "awq", "bits": 4})
    with pytest.raises(ModelLoadError, match="already quantised"):
        load_model(path, device="cpu", placement=ModelPlacement(quantization="4bit"))


def test_check_head_refuses_integer_or_foreign_heads():
    check_head(torch.nn.Linear(4, 8), "m", None)  # a plain float head is fine
    head = torch.nn.Linear(4, 8)
    head.weight = torch.nn.Parameter(torch.zeros(8, 4, dtype=torch.int8), requires_grad=False)
    with pytest.raises(ModelLoadError, match="lm_head"):
        check_head(head, "m", None)

    class QuantLinear(torch.nn.Linear):  # a quantisation library's layer, float or not
        pass

    with pytest.raises(ModelLoadError, match="lm_head"):
        check_head(QuantLinear(4, 8), "m", None)
