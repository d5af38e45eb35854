"""A model split by a device map (decoder layers and lm_head on disk offload, or spread over
"cpu" entries) explains exactly as the same model loaded plainly: the engine and the
candidates read lm_head's rows from where accelerate keeps them."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tam_engine.core.media import MediaItem
from tam_engine.inference.capture import capture
from tam_engine.inference.capture.candidates import candidates_from_states
from tam_engine.inference.capture.head import OffloadedRows, head_parameter
from tam_engine.inference.loading import load_model
from tam_engine.inference.model_placement import ModelPlacement
from tam_engine.inference.pipeline import run_and_explain
from tam_engine.inference.settings import GenerationSettings

PROMPT = "Describe this image in one sentence."
SETTINGS = GenerationSettings(max_new_tokens=6)


def _image(seed: int = 0) -> MediaItem:
    rng = np.random.default_rng(seed)
    return MediaItem("image", "img.png", rng.integers(0, 256, (112, 112, 3), dtype=np.uint8))


def _device_map(model_dir, where_layer, where_head: str) -> dict[str, str]:
    """Every top module of the tiny Qwen2-VL placed explicitly; layer k goes to where_layer(k)."""
    import json

    n = json.loads((model_dir / "config.json").read_text())["text_config"]["num_hidden_layers"]
    text = "model.language_model"
    dm = {"model.visual": "cpu", f"{text}.embed_tokens": "cpu", f"{text}.norm": "cpu",
          f"{text}.rotary_emb": "cpu", "lm_head": where_head}
    dm.update({f"{text}.layers.{k}": where_layer(k) for k in range(n)})
    return dm


@pytest.fixture(scope="module")
def plain(tiny_loaded):
    return tiny_loaded("qwen2_vl")


def _check_same_explanation(plain, split) -> None:
    a = run_and_explain(plain, [_image()], PROMPT, SETTINGS)
    b = run_and_explain(split, [_image()], PROMPT, SETTINGS)
    assert list(a.ids) == list(b.ids)  # same tokens
    ma, mb = a.answer.maps, b.answer.maps
    assert ma.dtype == mb.dtype == np.uint8 and ma.shape == mb.shape
    assert int(np.abs(ma.astype(int) - mb.astype(int)).max()) <= 1
    np.testing.assert_allclose(a.candidates.probs, b.candidates.probs, rtol=1e-4, atol=1e-6)
    assert (a.candidates.ids == b.candidates.ids).all()
    assert "placement" not in a.meta and b.meta["placement"] == split.placement.describe()


def test_layers_and_lm_head_on_disk_offload(tmp_path, tiny_model_dir, plain):
    model_dir = tiny_model_dir("qwen2_vl")
    dm = _device_map(model_dir, lambda k: "disk" if k % 2 else "cpu", "disk")
    split = load_model(model_dir, device="cpu",
                       placement=ModelPlacement(device_map=dm, offload_folder=str(tmp_path)))
    head = split.model.get_output_embeddings()
    assert head.weight.device.type == "meta"  # really offloaded: nothing of it in memory
    assert isinstance(head_parameter(head, "weight"), OffloadedRows)
    _check_same_explanation(plain, split)


def test_layers_split_between_cpu_entries(tiny_model_dir, plain):
    model_dir = tiny_model_dir("qwen2_vl")
    dm = _device_map(model_dir, lambda k: "cpu", "cpu")
    split = load_model(model_dir, device="cpu", placement=ModelPlacement(device_map=dm))
    _check_same_explanation(plain, split)


def test_offloaded_rows_equal_the_real_rows_and_candidates_from_states(tmp_path, tiny_model_dir,
                                                                       plain):
    model_dir = tiny_model_dir("qwen2_vl")
    dm = _device_map(model_dir, lambda k: "cpu", "disk")
    split = load_model(model_dir, device="cpu",
                       placement=ModelPlacement(device_map=dm, offload_folder=str(tmp_path)))
    rows = head_parameter(split.model.get_output_embeddings(), "weight")
    real = plain.model.get_output_embeddings().weight
    V = real.shape[0]
    idx = torch.tensor([5, 3, 3, V // 2, 4, V - 1, 0])  # unsorted, repeated, several runs
    torch.testing.assert_close(rows.index_select(0, idx), real.index_select(0, idx))
    torch.testing.assert_close(rows[10:V - 3], real[10:V - 3].detach())
    with pytest.raises(IndexError):
        rows.index_select(0, torch.tensor([V]))
    # The "states" path of the candidates walks the offloaded head in blocks.
    settings = GenerationSettings(max_new_tokens=4)
    prepared = split.adapter.prepare([_image(1)], PROMPT, settings)
    ti = capture(split, prepared, settings, candidates="steps")
    L = ti.input_len
    got = candidates_from_states(ti.hidden[L - 1:], rows, None, 5, split.adapter.tokenizer,
                                 max_block_elems=1024)
    want = candidates_from_states(ti.hidden[L - 1:], real.detach(), None, 5,
                                  split.adapter.tokenizer, max_block_elems=1024)
    assert (got.ids == want.ids).all() and (got.ids == ti.candidates.ids).all()
    np.testing.assert_allclose(got.probs, want.probs, rtol=1e-5)


def test_memmap_offload_of_bfloat16_rows(tmp_path):
    """accelerate's own ``.dat`` files (weights it had to convert), bfloat16 stored as int16."""
    from accelerate.utils import offload_weight

    w = torch.randn(50, 8).to(torch.bfloat16)
    index: dict = {}
    offload_weight(w, "lm_head.weight", str(tmp_path), index=index)
    from accelerate.utils.offload import OffloadedWeightsLoader, PrefixedDataset

    class Hook:
        weights_map = PrefixedDataset(OffloadedWeightsLoader(save_folder=str(tmp_path),
                                                             index=index), "lm_head.")

    module = torch.nn.Linear(8, 50, bias=False, device="meta", dtype=torch.bfloat16)
    module._hf_hook = Hook()
    rows = head_parameter(module, "weight")
    idx = torch.tensor([49, 0, 7, 8, 9, 7])
    assert torch.equal(rows.index_select(0, idx), w.index_select(0, idx))
