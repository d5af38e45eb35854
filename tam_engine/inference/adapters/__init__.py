"""Model-family adapters, chosen from the model's config."""

from __future__ import annotations

from typing import Any

from tam_engine.inference.adapters.aya_vision import AyaVisionAdapter
from tam_engine.inference.adapters.base import Adapter, GenerationSettings, Prepared, SpanError
from tam_engine.inference.adapters.gemma3 import Gemma3Adapter
from tam_engine.inference.adapters.generic import GenericAdapter
from tam_engine.inference.adapters.idefics3 import Idefics3Adapter, SmolVLMAdapter
from tam_engine.inference.adapters.internvl import InternVLAdapter
from tam_engine.inference.adapters.lfm2_vl import Lfm2VlAdapter
from tam_engine.inference.adapters.llama4 import Llama4Adapter
from tam_engine.inference.adapters.llava import LlavaAdapter
from tam_engine.inference.adapters.qwen2_vl import Qwen2_5_VLAdapter, Qwen2VLAdapter

#: Most specific first; the generic adapter is the last resort.
ADAPTERS: tuple[type[Adapter], ...] = (
    Qwen2VLAdapter, Qwen2_5_VLAdapter, LlavaAdapter, InternVLAdapter,
    Idefics3Adapter,
    SmolVLMAdapter,
    Lfm2VlAdapter,
    AyaVisionAdapter,
    Gemma3Adapter,
    Llama4Adapter,
    GenericAdapter,
)


def adapter_class_for(config: Any) -> type[Adapter] | None:
    """The adapter class for a model config, or ``None`` when no adapter supports it."""
    for cls in ADAPTERS:
        if cls.supports(config):
            return cls
    return None


__all__ = ["ADAPTERS", "Adapter", "AyaVisionAdapter", "Gemma3Adapter", "GenerationSettings",
           "GenericAdapter", "Idefics3Adapter", "InternVLAdapter", "Lfm2VlAdapter",
           "Llama4Adapter", "LlavaAdapter", "Prepared", "Qwen2VLAdapter", "Qwen2_5_VLAdapter",
           "SmolVLMAdapter", "SpanError", "adapter_class_for"]
