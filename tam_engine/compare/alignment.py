"""Word alignment of two answers to the same media and prompt.

Two models answer in their own words and with their own tokenizers, so tokens cannot be matched
by position. The answers are grouped into words (:func:`tam_engine.core.words.group_words`) and
the two word sequences are aligned on their normalised forms with difflib's matching blocks
(a longest-common-subsequence style alignment): where the answers agree, each word of A maps to
the same word of B, and a token maps to the tokens of its aligned word on the other side.
Where the two words are tokenised alike (the same token texts: one tokenizer, or both models
explaining one given answer), tokens pair one to one instead, and a click selects one token.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from tam_engine.core.words import Word, group_words

Side = Literal["a", "b"]


@dataclass(frozen=True)
class WordAlignment:
    """Words of two answers and which of them correspond.

    ``pairs`` holds ``(i, j)``: word ``i`` of A is word ``j`` of B. Indices increase in both
    sequences (an alignment never crosses itself). ``token_pairs`` maps a token of A to a token
    of B where their words are tokenised alike (same token texts), both ways.
    """

    words_a: tuple[Word, ...]
    words_b: tuple[Word, ...]
    pairs: tuple[tuple[int, int], ...]
    _maps: dict = field(default_factory=dict, compare=False, repr=False)
    token_pairs: tuple[tuple[int, int], ...] = ()

    def __post_init__(self) -> None:
        self._maps["a"] = {i: j for i, j in self.pairs}
        self._maps["b"] = {j: i for i, j in self.pairs}
        for side, words in (("a", self.words_a), ("b", self.words_b)):
            self._maps[side + "_tok"] = {k: w for w, word in enumerate(words)
                                         for k in word.tokens}
        self._maps["a_pair"] = {ka: kb for ka, kb in self.token_pairs}
        self._maps["b_pair"] = {kb: ka for ka, kb in self.token_pairs}

    def words(self, side: Side) -> tuple[Word, ...]:
        return self.words_a if side == "a" else self.words_b

    def word_of_token(self, side: Side, k: int) -> int | None:
        """Index of the word that token ``k`` belongs to (None for white space)."""
        return self._maps[side + "_tok"].get(int(k))

    def aligned_word(self, side: Side, i: int) -> int | None:
        """The word of the other side aligned with word ``i`` of ``side``, if any."""
        return self._maps[side].get(int(i))

    def word_tokens(self, side: Side, tokens: Iterable[int]) -> tuple[int, ...]:
        """The tokens of every word that ``tokens`` touch (a selection snapped to words); a
        token paired one to one with the other side stays on its own."""
        words = self.words(side)
        pair = self._maps[side + "_pair"]
        out: set[int] = set()
        for k in tokens:
            w = self.word_of_token(side, k)
            out.update(words[w].tokens if w is not None and int(k) not in pair else (int(k),))
        return tuple(sorted(out))

    def aligned_tokens(self, side: Side, tokens: Iterable[int]) -> tuple[int, ...]:
        """Tokens of the other side's words aligned with the words of ``tokens``.

        Empty when none of those words has a counterpart.
        """
        other = self.words("b" if side == "a" else "a")
        pair = self._maps[side + "_pair"]
        out: set[int] = set()
        for k in tokens:
            if int(k) in pair:
                out.add(pair[int(k)])
                continue
            w = self.word_of_token(side, k)
            j = self.aligned_word(side, w) if w is not None else None
            if j is not None:
                out.update(other[j].tokens)
        return tuple(sorted(out))

    @property
    def n_aligned(self) -> int:
        return len(self.pairs)


def align_words(texts_a: Sequence[str], texts_b: Sequence[str]) -> WordAlignment:
    """Align two answers, given as decoded token texts, word by word.

    Words are compared on their normalised keys (lower case, outer punctuation removed), so
    "Red" and "red," match. difflib's matching blocks give the longest common runs first,
    then recurse on either side of them, which is an LCS alignment for these short answers.
    """
    words_a, words_b = group_words(list(texts_a)), group_words(list(texts_b))
    keys_a, keys_b = [w.key for w in words_a], [w.key for w in words_b]
    matcher = difflib.SequenceMatcher(a=keys_a, b=keys_b, autojunk=False)
    pairs = tuple((blk.a + d, blk.b + d) for blk in matcher.get_matching_blocks()
                  for d in range(blk.size))
    texts_a, texts_b = list(texts_a), list(texts_b)
    token_pairs = tuple(
        (ka, kb) for i, j in pairs
        if [texts_a[k] for k in words_a[i].tokens] == [texts_b[k] for k in words_b[j].tokens]
        for ka, kb in zip(words_a[i].tokens, words_b[j].tokens))
    return WordAlignment(tuple(words_a), tuple(words_b), pairs, token_pairs=token_pairs)
