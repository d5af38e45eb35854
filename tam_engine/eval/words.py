"""Words of a generated caption, and their classes, decided offline.

The paper scores words, not tokens. Tokens are grouped into words from their decoded texts; a
word is then a *function word* (closed-class lists of :mod:`tam_engine.core.words`, no tagger, no download), a *noun* when
it (or a run of words) names a category of the dataset (plural forms included), or neither (and
then it is not scored).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

# The closed classes have one owner, tam_engine.core.words (the evidence flags use them too).
from tam_engine.core.words import (  # noqa: F401 (re-exported for this module's callers)
    CONJUNCTIONS,
    DETERMINERS,
    EXISTENTIAL_NEXT,
    FUNCTION_CLASSES,
    INTERJECTIONS,
    MODALS,
    POSSESSIVE_ENDINGS,
    PRONOUNS,
    WH_WORDS,
    Word,
    is_function_word,
    normalise,
)


def function_class(words: Sequence[Word], i: int) -> str | None:
    """Closed class of word ``i`` (using its right neighbour for "there"), or ``None``."""
    key = words[i].key
    if key in POSSESSIVE_ENDINGS:
        return "possessive"
    if key == "there":
        nxt = next((w.key for w in words[i + 1:] if not w.is_punct), "")
        return "existential-there" if nxt in EXISTENTIAL_NEXT else None
    for name, members in FUNCTION_CLASSES:
        if key in members:
            return name
    return None


# --------------------------------------------------------------------------- plurals
_IRREGULAR_PLURALS = {
    "person": ["people", "persons"], "man": ["men"], "woman": ["women"], "child": ["children"],
    "mouse": ["mice"], "foot": ["feet"], "tooth": ["teeth"], "goose": ["geese"],
    "sheep": ["sheep"], "deer": ["deer"], "fish": ["fish", "fishes"], "knife": ["knives"],
    "leaf": ["leaves"], "wolf": ["wolves"], "shelf": ["shelves"], "scissors": ["scissors"],
    "skis": ["skis"], "glasses": ["glasses"], "pants": ["pants"], "jeans": ["jeans"],
    "ox": ["oxen"], "cactus": ["cacti", "cactuses"], "bus": ["buses", "busses"],
    "giraffe": ["giraffes"], "tomato": ["tomatoes"], "potato": ["potatoes"],
}


def plurals(noun: str) -> list[str]:
    """Plural forms of an English noun (rules plus a short irregular list)."""
    w = noun.lower()
    if w in _IRREGULAR_PLURALS:
        return list(_IRREGULAR_PLURALS[w])
    if w.endswith(("s", "x", "z", "ch", "sh")):
        return [w + "es"]
    if len(w) > 1 and w.endswith("y") and w[-2] not in "aeiou":
        return [w[:-1] + "ies"]
    if w.endswith("fe"):
        return [w + "s", w[:-2] + "ves"]
    return [w + "s"]


def singular(word: str) -> str:
    """The singular of a plural noun this module's :func:`plurals` would form, else the word."""
    w = word.lower()
    for sing, pls in _IRREGULAR_PLURALS.items():
        if w in pls:
            return sing
    if len(w) < 4 or w.endswith(("ss", "us", "is")):
        return w
    for cand in (w[:-3] + "y", w[:-3] + "f", w[:-3] + "fe", w[:-2], w[:-1]):
        if cand and w in plurals(cand):
            return cand
    return w


def name_forms(name: str) -> list[tuple[str, ...]]:
    """A (possibly multi-word) name as word tuples, singular and plural (last word inflected)."""
    parts = tuple(p for p in name.lower().replace("-", " ").split() if p)
    if not parts:
        return []
    out = [parts]
    out += [parts[:-1] + (pl,) for pl in plurals(parts[-1])]
    return list(dict.fromkeys(out))


@dataclass(frozen=True)
class NounMatch:
    """Words ``start .. end-1`` name ``category``."""

    start: int
    end: int
    category: str


class Vocabulary:
    """Category names and synonyms, matched against caption words (longest match first)."""

    def __init__(self, categories: Mapping[str, Iterable[str]]) -> None:
        self.categories = {c: list(dict.fromkeys([c, *syns])) for c, syns in categories.items()}
        self._table: dict[tuple[str, ...], str] = {}
        # Every category's own name first, then the synonyms; a form claimed twice stays with
        # the first claimant ("woman" names the category "woman" even when "man" lists it).
        for own in (True, False):
            for cat, names in self.categories.items():
                for name in (names[:1] if own else names[1:]):
                    for form in name_forms(name):
                        self._table.setdefault(form, cat)
        self.max_len = max((len(k) for k in self._table), default=1)

    def match(self, words: Sequence[Word]) -> list[NounMatch]:
        keys = [w.key for w in words]
        out: list[NounMatch] = []
        i = 0
        while i < len(words):
            hit = None
            for n in range(min(self.max_len, len(words) - i), 0, -1):
                cat = self._table.get(tuple(keys[i:i + n]))
                if cat is not None:
                    hit = NounMatch(i, i + n, cat)
                    break
            if hit is None:
                i += 1
            else:
                out.append(hit)
                i = hit.end
        return out


def phrase_head(phrase: str) -> str:
    """The head noun of a grounded phrase: "a man in a red shirt" -> "man", "two dogs" -> "dog".

    The phrase is cut at its first preposition or relative word, then the last remaining
    content word is taken, in the singular. Used for GranDf / OpenPSG phrases, which name
    objects freely.
    """
    cut = {"in", "on", "at", "with", "of", "near", "by", "under", "over", "behind", "beside",
           "from", "for", "to", "into", "onto", "above", "below", "wearing", "holding",
           "that", "which", "who", "while", "and", "sitting", "standing", "next"}
    toks = [normalise(t) for t in phrase.replace("-", " ").split()]
    toks = [t for t in toks if t]
    kept: list[str] = []
    for t in toks:
        if kept and t in cut:
            break
        kept.append(t)
    content = [t for t in kept
               if t not in DETERMINERS and t not in PRONOUNS and not t.isdigit()]
    head = content[-1] if content else (toks[-1] if toks else phrase.strip().lower())
    return singular(head)
