"""The tile-plus-thumbnail families (InternVL with tiling, Idefics3, SmolVLM, LFM2-VL, Aya Vision,
Gemma 3 with pan-and-scan; Llama 4 refused), every case of the matrix.

For each family x case: the model generates and an Explanation comes out; every grid holds the
model's own number of cells and only cell tokens (separators never inside a grid); and the
geometry oracle: on an image black except one bright square, the brightness each cell really
saw (read from the processor's own ``pixel_values``, not from the adapter) matches the part of
the square its ``cell_box`` covers, for every tile and every thumbnail.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from tam_engine.core.errors import ModelLoadError, TamError
from tam_engine.core.explanation import Explanation
from tam_engine.core.spans import FULL_BOX
from tam_engine.inference.adapters import SpanError
from tam_engine.inference.loading import load_model
from tam_engine.inference.pipeline import run_and_explain
from tam_engine.inference.settings import GenerationSettings
from tam_engine.testing.families import CASES
from tam_engine.testing.families.tiled import SHRINK, SIDE, SPECS
from tam_engine.testing.geometry import (
    assert_grid_sees_square,
    case_media,
    per_grid,
    snapped_square,
)

BY_NAME = {s.name: s for s in SPECS}
PROMPT = "Describe this image in one sentence."
SETTINGS = GenerationSettings(max_new_tokens=2, device="cpu")
MATRIX = [(s.name, case) for s in SPECS for case in CASES]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models run faster on one thread: handing such small products between threads costs
    more than the products (several times more on a busy machine)."""
    import torch

    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(saved)


@pytest.fixture(scope="module", autouse=True)
def num2words_stand_in():
    """SmolVLM's processor refuses to exist without ``num2words`` (not installed here), which it
    only uses to spell a video's frame count: these tests spell it with digits."""
    import transformers.models.smolvlm.processing_smolvlm as smolvlm

    saved = smolvlm.num2words
    if saved is None:
        smolvlm.num2words = lambda n, **_: str(n)
    yield
    smolvlm.num2words = saved


def _pieces(prepared) -> int:
    """How many square pieces (tiles, thumbnails, crops, frames) the processor made."""
    inputs = prepared.model_inputs
    if "spatial_shapes" in inputs:
        return int(inputs["spatial_shapes"].shape[0])
    pv = inputs["pixel_values"]
    return int(np.prod(pv.shape[:-3]))


def _expected_cells(prepared, grid_index: int) -> tuple[int, int]:
    """The model's own cells of a grid's piece: a tile of the tower's input shrunk 2 x 2, or, for
    LFM2-VL, the piece's own patch grid (``spatial_shapes``) shrunk 2 x 2."""
    shapes = prepared.model_inputs.get("spatial_shapes")
    if shapes is None:
        return SIDE, SIDE
    h, w = (int(v) for v in shapes[grid_index])
    return h // SHRINK, w // SHRINK


def _check_layout(family: str, case: str, prepared, media) -> None:
    grids = prepared.spans.grids
    ids = prepared.input_ids
    cell = prepared.meta["cell_token"]
    # Every cell token is in exactly one grid, and a grid holds only cell tokens.
    np.testing.assert_array_equal(np.sort(prepared.spans.vision_positions),
                                  np.flatnonzero(ids == cell))
    assert sum(g.t for g in grids) == _pieces(prepared)
    for i, g in enumerate(grids):
        assert np.all(ids[g.positions] == cell), f"a separator inside grid {i}"
        if g.kind == "video":
            assert (g.t, g.h, g.w) == (media[g.media_index].n_frames, SIDE, SIDE)
            continue
        assert (g.h, g.w) == _expected_cells(prepared, i), f"grid {i} of {family}/{case}"
    # Per image: one whole-frame grid, or tiles that partition the frame plus one thumbnail.
    for mi, item in enumerate(media):
        mine = [g for g in grids if g.media_index == mi]
        assert [g.kind for g in mine] == [item.kind] * len(mine)
        if len(mine) == 1:
            assert mine[0].role == "full" and mine[0].box == FULL_BOX
            continue
        roles = [g.role for g in mine]
        assert roles.count("thumbnail") <= 1 and roles.count("full") == 0
        tiles = [g.box for g in mine if g.role == "tile"]
        assert sum((x1 - x0) * (y1 - y0) for x0, y0, x1, y1 in tiles) == pytest.approx(1.0)
        assert all(0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1 for x0, y0, x1, y1 in tiles)
    if case == "large":
        assert any(g.role == "tile" for g in grids), f"{family} did not tile a large image"


@pytest.mark.parametrize("family, case", MATRIX, ids=[f"{f}-{c}" for f, c in MATRIX])
def test_family_case(tiny_loaded, family, case):
    spec = BY_NAME[family]
    media = case_media(case)
    if case in spec.refused:
        with pytest.raises(TamError, match=spec.refused[case]):
            loaded = tiny_loaded(family)  # a family refused outright refuses to load
            run_and_explain(loaded, media, PROMPT, SETTINGS)
        return
    assert case in spec.cases and spec.vision_brightness is not None
    loaded = tiny_loaded(family)
    prepared = loaded.adapter.prepare(media, PROMPT, SETTINGS)
    prepared.meta["cell_token"] = loaded.adapter.cell_token()
    _check_layout(family, case, prepared, media)

    # The geometry oracle, grid by grid: tiles, thumbnails and crops alike.
    grids = prepared.spans.grids
    for grid, seen in zip(grids, per_grid(grids, spec.vision_brightness(prepared))):
        h, w = media[grid.media_index].frames.shape[1:3]
        assert_grid_sees_square(grid, seen, snapped_square(h, w))

    expl = run_and_explain(loaded, media, PROMPT, SETTINGS)
    assert isinstance(expl, Explanation) and 1 <= expl.n_answer <= 2
    assert [(g.role, g.box, g.t, g.h, g.w) for g in expl.grids] == \
        [(g.role, g.box, g.t, g.h, g.w) for g in grids]
    assert expl.answer.maps.shape == (expl.n_answer, sum(g.size for g in grids))


def test_every_case_is_covered_or_refused():
    for spec in SPECS:
        assert set(spec.cases) | set(spec.refused) == set(CASES), spec.name
        assert not set(spec.cases) & set(spec.refused), spec.name


def test_smolvlm_without_num2words_names_the_package(tiny_model_dir, monkeypatch):
    import transformers.models.smolvlm.processing_smolvlm as smolvlm

    folder = tiny_model_dir("smolvlm")
    monkeypatch.setattr(smolvlm, "num2words", None)
    with pytest.raises(ModelLoadError) as err:
        load_model(folder, device="cpu")
    assert "num2words" in str(err.value) and "pip install num2words" in err.value.hint


@pytest.mark.parametrize("family", ["lfm2_vl", "llama4"])
def test_final_norm_feeds_lm_head(tiny_model_dir, family):
    # LFM2 names its final norm embedding_norm; Llama 4 nests its decoder one level deeper.
    import torch
    from transformers import AutoModelForImageTextToText

    from tam_engine.inference.adapters import adapter_class_for

    model = AutoModelForImageTextToText.from_pretrained(tiny_model_dir(family)).eval()
    adapter_cls = adapter_class_for(model.config)
    assert adapter_cls is not None and adapter_cls.family == family
    norm = adapter_cls(None, model.config).final_norm(model)
    # Llama 4's own forward fails (the image_outputs bug) even without images; its language
    # model runs.
    runner = model.language_model if family == "llama4" else model
    seen = []
    handle = norm.register_forward_hook(lambda m, a, out: seen.append(out))
    with torch.no_grad():
        logits = runner(input_ids=torch.tensor([[5, 6, 7, 8]])).logits
    handle.remove()
    torch.testing.assert_close(model.get_output_embeddings()(seen[-1]), logits)



def test_a_decoder_without_a_final_norm_is_a_clear_error():
    import torch

    from tam_engine.inference.adapters.base import Adapter

    class Decoder(torch.nn.Module):
        def __init__(self, norms: int) -> None:
            super().__init__()
            self.layers = torch.nn.ModuleList([torch.nn.Linear(4, 4)])
            for i in range(norms):  # names no lookup knows
                self.add_module(f"post_{i}_norm", torch.nn.LayerNorm(4))

    class Model(torch.nn.Module):
        def __init__(self, norms: int) -> None:
            super().__init__()
            self.model = Decoder(norms)

        def get_decoder(self):
            return self

    adapter = Adapter(None, None)
    only = Model(1)
    assert adapter.final_norm(only) is only.model.post_0_norm
    for norms in (0, 2):  # none, or no telling which
        with pytest.raises(ModelLoadError, match="Cannot find the final norm"):
            adapter.final_norm(Model(norms))


@pytest.mark.parametrize("family, placed", [("internvl_tiled", 16), ("idefics3", 16)])
def test_a_count_mismatch_names_the_family_the_image_and_both_counts(tiny_loaded, monkeypatch,
                                                                      family, placed):
    # A model config that disagrees with its processor: 3 x 3 cells per tile instead of 4 x 4.
    adapter = tiny_loaded(family).adapter
    monkeypatch.setattr(adapter, "tile_cells", lambda: (3, 3))
    with pytest.raises(SpanError) as err:
        adapter.prepare(case_media("two"), PROMPT)
    message = str(err.value)
    assert message.startswith(f"{adapter.family}: image 1")
    assert re.search(r"\b9\b", message) and re.search(rf"\b{placed}\b", message)


@pytest.mark.parametrize("family", ["internvl", "idefics3", "aya_vision"])
def test_cells_are_row_major_in_the_models_own_shuffle(family):
    """The order the adapters and the oracle assume: cell k of a tile is the k-th block of
    ``SHRINK x SHRINK`` patches, row-major. Checked on each model's own pixel shuffle with a
    position-coded patch map (``f x f`` patches holding their own row and column)."""
    import torch

    f = 8
    rows, cols = np.meshgrid(np.arange(f), np.arange(f), indexing="ij")
    coded = torch.tensor(np.stack([rows, cols], -1), dtype=torch.float32)[None]  # (1, f, f, 2)
    if family == "internvl":
        from transformers.models.internvl.modeling_internvl import InternVLModel

        out = InternVLModel.pixel_shuffle(None, coded, 1 / SHRINK)
    elif family == "idefics3":
        from transformers.models.idefics3.modeling_idefics3 import Idefics3Connector

        out = Idefics3Connector.pixel_shuffle(None, coded.reshape(1, f * f, 2), SHRINK)
    else:
        from transformers.models.aya_vision.modeling_aya_vision import (
            AyaVisionMultiModalProjector,
        )

        class Projector:
            downsample_factor = SHRINK

        out = AyaVisionMultiModalProjector.pixel_shuffle(Projector, coded.reshape(1, f * f, 2))
    cells = out.reshape(-1, SHRINK * SHRINK, 2).numpy()  # each cell's patches' (row, col)
    k = np.arange((f // SHRINK) ** 2)
    np.testing.assert_array_equal(cells[:, :, 0].max(1) // SHRINK, k // (f // SHRINK))
    np.testing.assert_array_equal(cells[:, :, 1].max(1) // SHRINK, k % (f // SHRINK))


def test_gemma3_crops_are_where_either_backend_cuts_them(tiny_loaded):
    # The PIL image processor cuts the same crops as the torchvision one.
    import copy

    from transformers.models.gemma3.image_processing_pil_gemma3 import Gemma3ImageProcessorPil

    adapter = copy.copy(tiny_loaded("gemma3").adapter)
    fast = adapter.crop_boxes(adapter.image_settings(), 60, 180)
    assert len(fast) == 3 and fast[0][0] == 0 and fast[-1][2] == 1
    adapter.processor = copy.copy(adapter.processor)
    adapter.processor.image_processor = Gemma3ImageProcessorPil(
        **adapter.processor.image_processor.to_dict())
    assert adapter.crop_boxes(adapter.image_settings(), 60, 180) == fast
