"""One call from media and a prompt to an :class:`~tam_engine.core.explanation.Explanation`
(or to several, one per set of engine options, from a single generation).

:class:`GenerationSettings` is defined in :mod:`tam_engine.inference.settings` (the adapters
need it and this module imports them) and re-exported here with the functions that take it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from tam_engine.core.engine import explain_from_scores, score_table
from tam_engine.core.errors import Cancelled, TamError
from tam_engine.core.explanation import Explanation, TamOptions
from tam_engine.core.media import MediaItem
from tam_engine.inference.capture.generate import capture
from tam_engine.inference.capture.given import GIVEN_META, capture_given
from tam_engine.inference.capture.hooks import OnToken, ShouldStop
from tam_engine.inference.loading import LoadedModel
from tam_engine.inference.prompt import check_prompt
from tam_engine.inference.settings import GenerationSettings

__all__ = ["GenerationSettings", "run_and_explain", "run_and_explain_many"]


def run_and_explain(loaded: LoadedModel, media: list[MediaItem], prompt: str,
                    settings: GenerationSettings | None = None,
                    options: TamOptions | None = None,
                    on_token: OnToken | None = None,
                    should_stop: ShouldStop | None = None,
                    answer: str | None = None) -> Explanation:
    """Prepare inputs, generate with capture, and explain every token.

    With ``answer``, nothing is generated: the given answer is explained by teacher forcing
    (:func:`~tam_engine.inference.capture.given.capture_given`); ``meta["given_answer"]`` then
    holds the probability the model gave each of its tokens.

    ``on_token(step, text)`` streams tokens; ``should_stop()`` cancels between steps (raises
    :class:`~tam_engine.core.errors.Cancelled`). ``meta`` of the result holds the model, the prompt,
    the settings and the timings.
    """
    return run_and_explain_many(loaded, media, prompt, settings, [options or TamOptions()],
                                on_token=on_token, should_stop=should_stop, answer=answer)[0]


class InputError(TamError):
    """The model's processor refused the media or the prompt."""


def _prepare(loaded: LoadedModel, media: list[MediaItem], prompt: str,
             settings: GenerationSettings) -> Any:
    """The adapter's inputs; what the processor raises about its input becomes an
    :class:`InputError` (the processor's own words, and where to look)."""
    try:
        return loaded.adapter.prepare(media, prompt, settings)
    except TamError:
        raise
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        raise InputError(f"The model's processor cannot prepare this input: {exc}",
                         "Check the media (e.g. Qwen-family processors refuse an image more "
                         "than 200 times wider than high, or the reverse), and that the model "
                         "folder holds its tokenizer and processor files.") from exc


def run_and_explain_many(loaded: LoadedModel, media: list[MediaItem], prompt: str,
                         settings: GenerationSettings | None,
                         options: Sequence[TamOptions],
                         on_token: OnToken | None = None,
                         should_stop: ShouldStop | None = None,
                         answer: str | None = None) -> list[Explanation]:
    """:func:`run_and_explain` for several option sets (an ablation): one generation, and one
    explanation per entry of ``options``, in order.

    The model-sized product (the score table) is also computed once; each explanation equals
    what :func:`run_and_explain` gives with that option set. Each has its own copy of the same
    ``meta``; its ``timings`` are those of the whole call (``explain_s`` covers all of them).
    """
    if not options:
        raise ValueError("options must hold at least one TamOptions")
    settings = (settings or GenerationSettings()).check()
    check_prompt(prompt, loaded.adapter.tokenizer)
    t0 = time.perf_counter()
    prepared = _prepare(loaded, media, prompt, settings)
    t1 = time.perf_counter()
    if answer is None:
        inputs = capture(loaded, prepared, settings, on_token=on_token,
                         should_stop=should_stop)
    else:
        inputs = capture_given(loaded, prepared, answer, settings, should_stop=should_stop)
    t2 = time.perf_counter()
    if should_stop is not None and should_stop():
        raise Cancelled()
    meta: dict[str, Any] = {
        "model": loaded.name,
        "family": loaded.family,
        "prompt": prompt,
        "device": str(loaded.device),
        "dtype": str(loaded.dtype).replace("torch.", ""),
        "settings": asdict(settings),
        "input_tokens": int(inputs.input_len),
        "generated_tokens": int(inputs.n_answer),
    }
    if GIVEN_META in inputs.meta:
        meta[GIVEN_META] = inputs.meta[GIVEN_META]
    placement = getattr(loaded, "placement", None)
    if placement is not None and not placement.is_single_device:
        meta["placement"] = placement.describe()  # split, offloaded or quantised weights
    table = score_table(inputs)
    out = [explain_from_scores(inputs, table, o, media=prepared.media,
                               meta={**meta, "settings": asdict(settings)})
           for o in options]
    t3 = time.perf_counter()
    timings = {"prepare_s": round(t1 - t0, 4), "generate_s": round(t2 - t1, 4),
               "explain_s": round(t3 - t2, 4)}
    for expl in out:
        expl.meta["timings"] = dict(timings)
    return out
