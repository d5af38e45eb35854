"""Words of an answer: decoded token texts grouped into words.

Shared by the evaluation (the paper scores words, not tokens) and by model comparison (words
are aligned across two answers). Pure string work: no tokenizer, no download.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from dataclasses import dataclass

POSSESSIVE_ENDINGS = frozenset({"'s", "'", "\u2019s", "\u2019"})

_PUNCT = set(string.punctuation) | {"\u2019", "\u2018", "\u201c", "\u201d", "\u2014", "\u2013",
                                     "\u2026"}
_APOSTROPHES = ("'", "\u2019")
# Byte-level / sentencepiece markers some tokenizers leave in decoded pieces.
_SPACE_MARKS = ("\u2581", "\u0120")


@dataclass(frozen=True)
class Word:
    """One word of the caption: its text and the answer-token indices it is made of."""

    text: str
    tokens: tuple[int, ...]

    @property
    def key(self) -> str:
        """Lower-case text without surrounding punctuation (apostrophes kept)."""
        return normalise(self.text)

    @property
    def is_punct(self) -> bool:
        t = self.text.strip()
        return bool(t) and all(c in _PUNCT for c in t) and t not in POSSESSIVE_ENDINGS


def normalise(text: str) -> str:
    t = text.strip().lower()
    if t in POSSESSIVE_ENDINGS:
        return t.replace("\u2019", "'")
    return t.strip("".join(_PUNCT - {"'", "\u2019"})).strip("'\u2019") or t


def _clean(tok: str) -> str:
    for m in _SPACE_MARKS:
        if tok.startswith(m):
            tok = " " + tok[len(m):]
    return tok


def group_words(token_texts: Sequence[str]) -> list[Word]:
    """Group decoded token texts into words.

    A token starts a new word when it starts with white space, follows white space or a
    punctuation token, is itself punctuation, or starts with an apostrophe (the possessive
    ``'s`` is a word of its own). An empty piece (a token ending inside a multi-byte character)
    joins the word of the token that completes it; white-space-only tokens belong to no word.
    """
    words: list[Word] = []
    cur_text = ""
    cur_toks: list[int] = []
    pending: list[int] = []          # empty pieces wait for the token that completes them
    prev_breaks = True

    def flush() -> None:
        nonlocal cur_text, cur_toks
        if cur_toks and cur_text.strip():
            words.append(Word(cur_text.strip(), tuple(sorted(cur_toks))))
        cur_text, cur_toks = "", []

    for k, raw in enumerate(token_texts):
        tok = _clean(raw)
        if tok == "":
            pending.append(k)
            continue
        if not tok.strip():
            flush()
            pending = []
            prev_breaks = True
            continue
        body = tok.strip()
        is_punct = all(c in _PUNCT for c in body)
        starts_new = (prev_breaks or tok[0].isspace() or is_punct or body[0] in _APOSTROPHES
                      or (cur_text and cur_text[-1] in _PUNCT
                          and cur_text[-1] not in _APOSTROPHES))
        if starts_new:
            flush()
        cur_text += tok
        cur_toks += [*pending, k]
        pending = []
        prev_breaks = tok[-1].isspace() or (is_punct and body[0] not in _APOSTROPHES)
    flush()
    return words


# --------------------------------------------------------------------------- closed classes
DETERMINERS = frozenset(
    "a an the this that these those each every either neither some any no another such all "
    "both".split())
PRONOUNS = frozenset(
    "i me my mine myself you your yours yourself yourselves he him his himself she her hers "
    "herself it its itself we us our ours ourselves they them their theirs themselves someone "
    "somebody something anyone anybody anything everyone everybody everything nobody nothing "
    "none".split())
CONJUNCTIONS = frozenset(
    "and or but nor yet so because although though while whereas if unless whether than".split())
MODALS = frozenset("can could may might must shall should will would ought".split())
WH_WORDS = frozenset(
    "what which who whom whose where when why how whatever whichever whoever wherever "
    "whenever".split())
INTERJECTIONS = frozenset("oh ah aha wow hey hi hello yes yeah okay ok um uh hmm oops alas".split())
# "there" is a function word only as the existential subject ("there is a dog"), not as the
# locative adverb ("a dog sits there"); the next word decides.
EXISTENTIAL_NEXT = frozenset(
    "is are was were be been being 's seems seem seemed appears appear appeared exists exist "
    "existed remains remain remained".split())

# Checked in this order: a word in two lists gets the first class ("that" is a determiner).
FUNCTION_CLASSES: tuple[tuple[str, frozenset[str]], ...] = (
    ("determiner", DETERMINERS),
    ("pronoun", PRONOUNS),
    ("conjunction", CONJUNCTIONS),
    ("modal", MODALS),
    ("wh-word", WH_WORDS),
    ("interjection", INTERJECTIONS),
)


def is_function_word(key: str) -> bool:
    """Whether a lower-case word is in one of the closed classes (``there`` counted)."""
    return (key in POSSESSIVE_ENDINGS or key == "there"
            or any(key in members for _, members in FUNCTION_CLASSES))


# Words that relate or inflect, never name something seen: with the function words, they are
# not candidates for the "little visual evidence" flag (tam_engine.core.flags).
PREPOSITIONS = frozenset(
    "in on at of to from with without by for into onto over under above below behind beside "
    "besides between among near next through across along around against about after before "
    "during inside outside up down off out upon within toward towards beneath like as".split())
AUXILIARIES = frozenset(
    "is are was were be been being am has have had having do does did not 're 'm 've 'd "
    "n't".split())


def can_name_object(key: str) -> bool:
    """Whether a lower-case word (:attr:`Word.key`) may name something seen: it has a letter or
    a digit and is no function word, preposition or auxiliary. What the app calls an *object
    word* (colour and shape words of the demo, nouns, adjectives, numerals, verbs: no tagger)."""
    return (any(c.isalnum() for c in key) and not is_function_word(key)
            and key not in PREPOSITIONS and key not in AUXILIARIES)
