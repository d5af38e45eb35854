"""One call from media and a prompt to an :class:`~tam_engine.core.explanation.Explanation`."""

from __future__ import annotations

import time
from dataclasses import asdict

from tam_engine.core.engine import explain
from tam_engine.core.explanation import Explanation, TamOptions
from tam_engine.core.media import MediaItem
from tam_engine.inference.capture.generate import capture
from tam_engine.inference.capture.hooks import OnToken, ShouldStop
from tam_engine.inference.loading import LoadedModel
from tam_engine.inference.settings import GenerationSettings

__all__ = ["GenerationSettings", "run_and_explain"]


def run_and_explain(loaded: LoadedModel, media: list[MediaItem], prompt: str,
                    settings: GenerationSettings | None = None,
                    options: TamOptions | None = None,
                    on_token: OnToken | None = None,
                    should_stop: ShouldStop | None = None) -> Explanation:
    """Prepare inputs, generate with capture, and explain every token.

    ``on_token(step, text)`` streams tokens; ``should_stop()`` cancels between steps (raises
    :class:`~tam_engine.core.errors.Cancelled`). ``meta`` of the result holds the model, the prompt,
    the settings and the timings.
    """
    settings = settings or GenerationSettings()
    options = options or TamOptions()
    t0 = time.perf_counter()
    prepared = loaded.adapter.prepare(media, prompt, settings)
    t1 = time.perf_counter()
    inputs = capture(loaded, prepared, settings, on_token=on_token, should_stop=should_stop)
    t2 = time.perf_counter()
    if should_stop is not None and should_stop():
        from tam_engine.core.errors import Cancelled

        raise Cancelled()
    meta = {
        "model": loaded.name,
        "family": loaded.family,
        "prompt": prompt,
        "device": str(loaded.device),
        "dtype": str(loaded.dtype).replace("torch.", ""),
        "settings": asdict(settings),
        "input_tokens": int(inputs.input_len),
        "generated_tokens": int(inputs.n_answer),
    }
    expl = explain(inputs, options, media=prepared.media, meta=meta)
    t3 = time.perf_counter()
    expl.meta["timings"] = {"prepare_s": round(t1 - t0, 4), "generate_s": round(t2 - t1, 4),
                            "explain_s": round(t3 - t2, 4)}
    return expl
