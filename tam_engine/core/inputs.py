"""What a capture hands to the engine: the minimum TAM needs, nothing more."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tam_engine.core.spans import Spans
from tam_engine.core.tokens import special_mask

#: What every shown candidate percentage is: the candidate's probability in the softmax over the
#: model's whole vocabulary (never renormalised over the shown top k). The one label for it.
PROBABILITY_LABEL = "p over the vocabulary"


def percent(p: float) -> str:
    """A candidate probability as every view and export writes it: ``42.3%``, ``<0.1%``."""
    p = float(p)
    return "<0.1%" if 0.0 < p < 0.0005 else f"{100.0 * p:.1f}%"


@dataclass
class Candidates:
    """Top-k next-token candidates at each answer token's predicting position.

    ``ids`` and ``logits`` are ``(T, k)``, best first; ``probs`` are full-vocabulary softmax
    probabilities of those ids (the model computes that row at each step anyway): the only
    probabilities shown anywhere (:data:`PROBABILITY_LABEL`).
    """

    ids: np.ndarray
    logits: np.ndarray
    probs: np.ndarray
    texts: list[list[str]]

    @property
    def k(self) -> int:
        return int(self.ids.shape[1]) if self.ids.ndim == 2 else 0

    def top(self, k: int, n: int) -> list[tuple[int, str, float]]:
        """``(id, text, p over the vocabulary)`` of answer token ``k``'s best ``n`` candidates
        (fewer when fewer were kept; none when ``k`` has no row)."""
        if self.k == 0 or not 0 <= k < self.ids.shape[0]:
            return []
        out = []
        for i in range(min(int(n), self.k)):
            text = (self.texts[k][i] if k < len(self.texts) and i < len(self.texts[k])
                    else str(int(self.ids[k, i])))
            out.append((int(self.ids[k, i]), text, float(self.probs[k, i])))
        return out


@dataclass
class TamInputs:
    """Everything the engine needs to explain one generation.

    Attributes
    ----------
    ids
        ``(L + T,)`` input ids followed by the generated ids.
    input_len
        ``L``.
    hidden
        ``(L + T - 1, d)`` final-layer hidden states after the final norm (what ``lm_head``
        consumes), at positions ``0 .. L+T-2``. A torch tensor (any device/dtype) or numpy.
    lm_weight, lm_bias
        ``lm_head`` weight ``(V, d)`` and bias ``(V,)`` or ``None``; torch, numpy, or an object
        with ``index_select``/``shape`` that reads rows itself (an offloaded head,
        :class:`~tam_engine.inference.capture.head.OffloadedRows`). Only the rows of explained
        classes are ever read.
    spans
        Vision grids and prompt text positions.
    token_texts
        Decoded text of every id in ``ids`` (one entry per position), used for same-text
        exclusion in ECI and for display.
    candidates
        Top-k candidates per answer token, or ``None``.
    is_special
        ``(L + T,)`` bool, one entry per id: whether it is one of the tokenizer's special
        tokens (``all_special_ids``: chat-template markers, end of text, media placeholders).
        Left out, it is guessed from ``token_texts``
        (:func:`~tam_engine.core.tokens.special_from_texts`).
    """

    ids: np.ndarray
    input_len: int
    hidden: Any
    lm_weight: Any
    lm_bias: Any
    spans: Spans
    token_texts: list[str]
    candidates: Candidates | None = None
    meta: dict = field(default_factory=dict)
    is_special: np.ndarray = field(default_factory=lambda: np.zeros(0, bool), repr=False)

    def __post_init__(self) -> None:
        self.ids = np.asarray(self.ids, dtype=np.int64).reshape(-1)
        if len(self.token_texts) != self.ids.size:
            raise ValueError("token_texts must have one entry per id")
        self.is_special = special_mask(self.is_special, self.token_texts)
        if not 0 < self.input_len <= self.ids.size:
            raise ValueError("input_len out of range")

    @property
    def n_answer(self) -> int:
        return int(self.ids.size - self.input_len)

