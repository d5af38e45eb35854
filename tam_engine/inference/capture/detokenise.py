"""Per-token texts of a token sequence, incrementally (for streaming) or all at once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["IncrementalDetokenizer", "fast_decoder", "token_texts"]


class IncrementalDetokenizer:
    """Turns ids into per-token texts that concatenate back to the decoded sequence.

    Each token's text is the difference between decoding a short window with and without it, so
    a leading-space marker or a byte-level piece is decoded in context. A token that ends inside
    a multi-byte character gives ``""`` and the character goes to the token that completes it.
    """

    def __init__(self, tokenizer: Any, ids: list[int] | None = None) -> None:
        self.tokenizer = tokenizer
        self.ids: list[int] = list(ids or [])
        self.prefix = self.read = len(self.ids)
        if self.ids:
            # Keep a little context so the first new token decodes as it would mid-sequence.
            self.prefix = max(0, len(self.ids) - 4)

    def _decode(self, ids: list[int]) -> str:
        return fast_decoder(self.tokenizer)(ids)

    def push(self, token: int, final: bool = False) -> str:
        self.ids.append(int(token))
        before = self._decode(self.ids[self.prefix:self.read])
        after = self._decode(self.ids[self.prefix:])
        if after.endswith("\ufffd") and not final:
            return ""
        if not after.startswith(before):
            # Decoding is not prefix-stable here (rare normalisations): emit from the common part.
            common = 0
            while common < min(len(before), len(after)) and before[common] == after[common]:
                common += 1
            before = before[:common]
        self.prefix, self.read = self.read, len(self.ids)
        return after[len(before):]


def fast_decoder(tokenizer: Any) -> Callable[[list[int]], str]:
    """The fastest faithful ``decode`` (special tokens kept, no space clean-up): the Rust backend
    of a fast tokenizer when it has no Python-side decoding tweaks, else ``tokenizer.decode``."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None and not getattr(tokenizer, "clean_up_tokenization_spaces", False):
        return lambda ids: backend.decode(ids, skip_special_tokens=False)
    return lambda ids: tokenizer.decode(ids, skip_special_tokens=False,
                                        clean_up_tokenization_spaces=False)


def token_texts(tokenizer: Any, ids: np.ndarray | list[int]) -> list[str]:
    """Per-token texts of ``ids`` that concatenate to ``tokenizer.decode(ids)``."""
    det = IncrementalDetokenizer(tokenizer)
    seq = [int(i) for i in ids]
    return [det.push(t, final=(k == len(seq) - 1)) for k, t in enumerate(seq)]
