"""Model-family adapters, chosen from the model's config."""

from __future__ import annotations

from typing import Any

from tam_engine.inference.adapters.aya_vision import AyaVisionAdapter
from tam_engine.inference.adapters.base import Adapter, Prepared, SpanError
from tam_engine.inference.adapters.gemma3 import Gemma3Adapter
from tam_engine.inference.adapters.generic import GenericAdapter
from tam_engine.inference.adapters.glm4v import Glm4vAdapter, Glm4vMoeAdapter, Glm46VAdapter
from tam_engine.inference.adapters.idefics3 import Idefics3Adapter, SmolVLMAdapter
from tam_engine.inference.adapters.internvl import InternVLAdapter
from tam_engine.inference.adapters.lfm2_vl import Lfm2VlAdapter
from tam_engine.inference.adapters.llama4 import Llama4Adapter
from tam_engine.inference.adapters.llava import LlavaAdapter
from tam_engine.inference.adapters.llava_next import (
    LlavaNextAdapter,
    LlavaNextVideoAdapter,
    LlavaOnevisionAdapter,
)
from tam_engine.inference.adapters.mistral3 import Mistral3Adapter
from tam_engine.inference.adapters.paligemma import PaliGemmaAdapter
from tam_engine.inference.adapters.qwen2_vl import Qwen2_5_VLAdapter, Qwen2VLAdapter
from tam_engine.inference.adapters.qwen3_vl import (
    Qwen3_5Adapter,
    Qwen3_5MoeAdapter,
    Qwen3VLAdapter,
    Qwen3VLMoeAdapter,
)

#: Most specific first; the generic adapter is the last resort.
ADAPTERS: tuple[type[Adapter], ...] = (
    Qwen2VLAdapter, Qwen2_5_VLAdapter, LlavaAdapter, InternVLAdapter,
    Qwen3VLAdapter, Qwen3VLMoeAdapter, Qwen3_5Adapter, Qwen3_5MoeAdapter,
    Glm4vAdapter, Glm4vMoeAdapter, Glm46VAdapter,
    LlavaNextAdapter, LlavaNextVideoAdapter, LlavaOnevisionAdapter,
    Idefics3Adapter, SmolVLMAdapter, Lfm2VlAdapter, AyaVisionAdapter, Gemma3Adapter,
    Llama4Adapter,
    Mistral3Adapter,
    PaliGemmaAdapter,
    GenericAdapter,
)


def supported_families() -> tuple[type[Adapter], ...]:
    """The families with an adapter of their own (the registry less the generic last resort)."""
    return tuple(cls for cls in ADAPTERS if cls is not GenericAdapter)


def supported_family_titles() -> str:
    """``"Qwen2-VL, Qwen2.5-VL, ..."``: the supported families, for messages."""
    return ", ".join(cls.title for cls in supported_families())


# The generic adapter names the supported families when it refuses a model; it cannot import
# this registry (the registry imports it), so it is told here.
GenericAdapter.supported_titles = supported_family_titles()


def adapter_class_for(config: Any) -> type[Adapter] | None:
    """The adapter class for a model config, or ``None`` when no adapter supports it."""
    for cls in ADAPTERS:
        if cls.supports(config):
            return cls
    return None


__all__ = ["ADAPTERS", "Adapter", "AyaVisionAdapter", "Gemma3Adapter", "GenericAdapter",
           "Glm46VAdapter", "Glm4vAdapter", "Glm4vMoeAdapter", "Idefics3Adapter",
           "InternVLAdapter", "Lfm2VlAdapter", "Llama4Adapter", "LlavaAdapter", "LlavaNextAdapter",
           "LlavaNextVideoAdapter", "LlavaOnevisionAdapter", "Mistral3Adapter", "PaliGemmaAdapter",
           "Prepared", "Qwen2VLAdapter", "Qwen2_5_VLAdapter", "Qwen3VLAdapter",
           "Qwen3VLMoeAdapter", "Qwen3_5Adapter", "Qwen3_5MoeAdapter", "SmolVLMAdapter",
           "SpanError", "adapter_class_for", "supported_families", "supported_family_titles"]
