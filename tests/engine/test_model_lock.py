"""Two runs never use one model at once (issue 14): threads sharing a LoadedModel in the API
take turns, and a run waiting for the model can be cancelled."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from tam_engine.core.errors import Cancelled
from tam_engine.core.media import MediaItem
from tam_engine.inference.capture.exclusive import model_in_use
from tam_engine.inference.pipeline import run_and_explain
from tam_engine.inference.settings import GenerationSettings

pytestmark = pytest.mark.slow


def _image(seed: int) -> MediaItem:
    rng = np.random.default_rng(seed)
    return MediaItem("image", "x.png", rng.integers(0, 255, (56, 84, 3), dtype=np.uint8))


def test_threads_sharing_a_model_take_turns(tiny_loaded):
    loaded = tiny_loaded("qwen2_vl")
    settings = GenerationSettings(max_new_tokens=5, device="cpu")
    alone = [run_and_explain(loaded, [_image(s)], "Describe this image.", settings)
             for s in range(3)]
    results: dict[int, object] = {}
    errors: list[BaseException] = []

    def work(seed: int) -> None:
        try:
            results[seed] = run_and_explain(loaded, [_image(seed)], "Describe this image.",
                                            settings)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(s,)) for s in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors
    for seed, expl in results.items():
        assert expl.ids.tolist() == alone[seed].ids.tolist()
        assert np.allclose(expl.answer.maps, alone[seed].answer.maps)


def test_a_run_waiting_for_the_model_can_be_cancelled():
    model = object.__new__(type("Model", (), {}))
    stop = threading.Event()
    with model_in_use(model):
        t = threading.Timer(0.1, stop.set)
        t.start()
        with pytest.raises(Cancelled), model_in_use(model, stop.is_set):
            pass
    with model_in_use(model):  # released: free again
        pass
