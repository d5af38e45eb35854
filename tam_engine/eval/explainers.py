"""Explain functions for the runner, and the process layout of a data-parallel run."""

from __future__ import annotations

import datetime
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tam_engine.core.explanation import Explanation, TamOptions
from tam_engine.eval.datasets import EvalItem

if TYPE_CHECKING:
    from tam_engine.inference.loading import LoadedModel
    from tam_engine.inference.settings import GenerationSettings

DEFAULT_PROMPT = "Describe this image in one sentence."
DEFAULT_VIDEO_PROMPT = "Describe this video in one sentence."


def model_explain_fn(loaded: LoadedModel, settings: GenerationSettings,
                     prompt: str | None = None
                     ) -> Callable[[EvalItem, Sequence[TamOptions]], list[Explanation]]:
    """Generate once per item with a loaded model; explain it once per option set.

    The generation and the score table (the only model-sized product) are computed once per
    item by :func:`~tam_engine.inference.pipeline.run_and_explain_many`, so an ablation costs
    one generation.
    """
    from tam_engine.inference.pipeline import run_and_explain_many
    from tam_engine.media.io import load_media

    def explain(item: EvalItem, options: Sequence[TamOptions]) -> list[Explanation]:
        media = load_media(item.media, fps=settings.video_fps, max_frames=settings.max_frames)
        text = prompt or (DEFAULT_VIDEO_PROMPT if item.kind == "video" else DEFAULT_PROMPT)
        out = run_and_explain_many(loaded, media, text, settings, options)
        t = out[0].meta["timings"]
        # The records' names: generating includes preparing the inputs; the engine is the rest.
        timings = {"generate_s": round(t["prepare_s"] + t["generate_s"], 4),
                   "engine_s": t["explain_s"]}
        for e in out:
            e.meta["item"] = item.id
            e.meta["timings"] = timings
        return out

    return explain


@dataclass
class ProcessLayout:
    """Where this process sits in a (possibly) data-parallel run."""

    rank: int = 0
    world_size: int = 1
    device: str = "auto"
    barrier: Callable[[], None] | None = None


def process_layout() -> ProcessLayout:
    """One process, or the layout ``accelerate launch`` (or torchrun) set up.

    Only a launched run (``WORLD_SIZE`` > 1 in the environment) imports accelerate and joins a
    process group; its barrier lets rank 0 wait for every shard before writing the summary.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return ProcessLayout()
    import torch
    from accelerate import PartialState

    # Without a GPU (or with ACCELERATE_USE_CPU=1) the processes join a gloo group on the CPU;
    # accelerate only forms one when asked for the CPU explicitly.
    use_cpu = (os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true", "yes")
               or not torch.cuda.is_available())
    # Ranks that finish their shard wait at the final barrier for the slowest one, which can
    # take long (uneven resumes, long captions): the default collective timeout is minutes.
    state = PartialState(cpu=use_cpu, timeout=datetime.timedelta(hours=48))
    dev = state.device
    device = str(dev) if getattr(dev, "type", "cpu") != "cpu" else "cpu"
    return ProcessLayout(rank=int(state.process_index), world_size=int(state.num_processes),
                         device=device, barrier=state.wait_for_everyone)
