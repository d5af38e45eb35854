"""tam_engine: Token Activation Maps for multimodal LLMs, without any GUI.

The pipeline is ``media/prompt -> adapter -> capture -> engine -> Explanation -> renderer``.
"""

from __future__ import annotations

from tam_engine.capture_types import Candidates, TamInputs
from tam_engine.engine import explain
from tam_engine.explanation import Explanation, TamOptions, TokenMaps
from tam_engine.filters import rank_gaussian_filter
from tam_engine.media import MediaItem
from tam_engine.spans import Spans, VisionGrid

__version__ = "0.1.0"

__all__ = [
    "Candidates",
    "Explanation",
    "MediaItem",
    "Spans",
    "TamInputs",
    "TamOptions",
    "TokenMaps",
    "VisionGrid",
    "__version__",
    "explain",
    "rank_gaussian_filter",
]
