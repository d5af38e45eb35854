"""A run carries the placement chosen in Model Setup to the loader, and a Hub model missing
from the cache is downloaded first with its progress shown as the run's phase."""

from __future__ import annotations

from tam_desktop.worker import ModelCache, Phase, RunRequest, run_job
from tam_engine.inference.model_placement import ModelPlacement
from tam_engine.inference.settings import GenerationSettings


def test_model_cache_keys_on_the_placement_and_passes_it_on():
    loads = []

    def loader(name, device, dtype, **kwargs):
        loads.append((name, kwargs.get("placement")))
        return object()

    cache = ModelCache(loader)
    plain = cache.get("m", "cpu", "auto")
    split = ModelPlacement("auto", {0: "20GiB", "cpu": "64GiB"})
    other = cache.get("m", "cpu", "auto", split)
    assert other is not plain and cache.holds("m", "cpu", "auto", split)
    assert not cache.holds("m", "cpu", "auto")
    assert cache.get("m", "cpu", "auto", ModelPlacement("auto", {0: "20GiB", "cpu": "64GiB"})
                     ) is other
    assert loads == [("m", None), ("m", split)]


def test_a_run_downloads_a_missing_hub_model_first(monkeypatch):
    import tam_engine.inference.hub as hub

    calls = []

    def fake_download(model, on_progress=None, should_stop=None, **kwargs):
        from tam_engine.inference.hub import DownloadProgress

        calls.append(model)
        on_progress(DownloadProgress(model, "model.safetensors", 1, 3, 500, 1000, 100.0))
        return None

    monkeypatch.setattr(hub, "download_model", fake_download)
    loaded = []

    def loader(name, device, dtype, **kwargs):
        loaded.append((name, kwargs.get("placement")))
        raise RuntimeError("stop here")  # the run itself is not what this test is about

    placement = ModelPlacement(quantization="4bit")
    request = RunRequest("org/model", ("a.png",), "hi", GenerationSettings(),
                         placement=placement)
    emitted: list = []
    job = run_job(request, ModelCache(loader), emitted.append, lambda: False)
    phases = []
    try:
        for event in job:
            phases.append(event)
    except RuntimeError as exc:
        assert str(exc) == "stop here"
    assert calls == ["org/model"] and loaded == [("org/model", placement)]
    texts = [e.text for e in phases + emitted if isinstance(e, Phase)]
    assert any(t.startswith("Downloading org/model: 1/3 files") for t in texts)
    assert texts.index("Checking org/model on the Hugging Face Hub") < texts.index(
        "Loading the model org/model")
