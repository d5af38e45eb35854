"""tam_engine: Token Activation Maps for multimodal LLMs, without any GUI.

The pipeline is ``media/prompt -> adapter -> capture -> engine -> Explanation -> renderer``.
"""

from __future__ import annotations

from tam_engine.core.engine import explain
from tam_engine.core.explanation import Explanation, TamOptions
from tam_engine.core.filters import rank_gaussian_filter
from tam_engine.core.inputs import Candidates, TamInputs
from tam_engine.core.media import MediaItem
from tam_engine.core.spans import Spans, VisionGrid
from tam_engine.core.token_maps import TokenMaps

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
