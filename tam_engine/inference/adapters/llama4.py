"""Llama 4: refused, clearly, while transformers cannot generate with its images.

In transformers 5.24 ``Llama4ForConditionalGeneration.generate`` with an image fails inside the
model's own forward (``AttributeError: ... has no attribute 'image_outputs'``), and the token
order inside its tiles is not verified against the model. The adapter exists so that loading a
Llama 4 checkpoint stops at once with that reason, before its weights are read.
"""

from __future__ import annotations

from typing import Any

from tam_engine.core.errors import ModelLoadError, TamError
from tam_engine.core.media import MediaItem
from tam_engine.inference.adapters.base import Adapter, Prepared
from tam_engine.inference.settings import GenerationSettings


class Llama4Adapter(Adapter):
    family = "llama4"
    model_types = ("llama4",)
    title = "Llama 4"
    examples = ("meta-llama/Llama-4-Scout-17B-16E-Instruct",)
    media = ()
    notes = "refused: transformers cannot yet generate with its images"


    @classmethod
    def refusal(cls, config: Any) -> TamError | None:
        return _refusal()

    def prepare(self, media: list[MediaItem], prompt: str,
                settings: GenerationSettings | None = None) -> Prepared:
        raise _refusal()


def _refusal() -> ModelLoadError:
    import transformers

    return ModelLoadError(
        f"Llama 4 cannot be explained with transformers {transformers.__version__}: its own "
        "generate() fails on images (AttributeError: ... has no attribute 'image_outputs').",
        "Use another model family (Qwen2.5-VL, InternVL3, Gemma 3, ...) until transformers "
        "generates with Llama 4 images.")
