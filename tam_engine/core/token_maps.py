"""The maps of a set of explained tokens (all answer tokens, or all prompt tokens)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

TokenKind = Literal["answer", "prompt"]


@dataclass
class TokenMaps:
    """Maps of a set of explained tokens (all answer tokens, or all prompt tokens).

    Vision arrays are ``(N, n_vision)``: one row per token, columns in the flattened vision
    order of :attr:`Explanation.grids`.

    ``relevance`` is ``(N, C)`` with ``C = n_prompt + n_answer`` text columns (prompt tokens then
    answer tokens): the clipped logit of the token's class at each context token's relevant
    position (section 3 of the method). ``context`` marks which columns are this token's context.
    ``norm_lo``/``norm_hi`` are the joint min/max used to normalise vision and text together.
    """

    kind: TokenKind
    token_ids: np.ndarray
    positions: np.ndarray
    texts: list[str]
    raw: np.ndarray
    eci: np.ndarray
    filtered: np.ndarray
    maps: np.ndarray
    alpha: np.ndarray
    relevance: np.ndarray
    context: np.ndarray
    norm_lo: np.ndarray
    norm_hi: np.ndarray

    def __len__(self) -> int:
        return int(self.token_ids.size)

    def normalised_relevance(self, k: int) -> np.ndarray:
        """Context relevances of token ``k`` on the joint [0, 1] scale (NaN outside context)."""
        lo, hi = float(self.norm_lo[k]), float(self.norm_hi[k])
        out = np.full(self.relevance.shape[1], np.nan, dtype=np.float32)
        ctx = self.context[k]
        if hi > lo:
            out[ctx] = np.clip((self.relevance[k, ctx] - lo) / (hi - lo), 0.0, 1.0)
        else:
            out[ctx] = 0.0
        return out

    def visual_strength(self) -> np.ndarray:
        """Mean of each token's final map in [0, 1]: how much visual evidence it shows."""
        if self.maps.shape[1] == 0:
            return np.zeros(len(self), np.float32)
        return (self.maps.astype(np.float32).mean(axis=1) / 255.0).astype(np.float32)
