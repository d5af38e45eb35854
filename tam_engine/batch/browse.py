"""Sorting and filtering a batch's records, as the gallery and the report offer them."""

from __future__ import annotations

from collections.abc import Sequence

from tam_engine.core.words import normalise

SORT_KEYS = ("index", "evidence", "answer", "status")


def word_evidence(rec: dict, word: str) -> float | None:
    """The strongest visual evidence of ``word`` (case and punctuation ignored) in the item's
    answer, or ``None`` when the answer does not have it."""
    key = normalise(word)
    values = [w["evidence"] for w in rec.get("words", []) if normalise(w["text"]) == key]
    return max(values) if values else None


def matches(rec: dict, text: str = "", status: str = "") -> bool:
    """Whether the answer has the word ``text`` (empty: any) and the status is ``status``
    (empty: any)."""
    if status and rec.get("status") != status:
        return False
    return not text.strip() or word_evidence(rec, text) is not None


def arrange(records: Sequence[dict], text: str = "", status: str = "", sort: str = "index",
            word: str = "", descending: bool = True) -> list[int]:
    """Row numbers of the records that :func:`matches` keeps, in the order ``sort`` asks:
    ``index`` (batch order), ``evidence`` (of ``word``, or of the strongest content word when
    no word is given; items without it last), ``answer`` (alphabetical) or ``status``."""
    if sort not in SORT_KEYS:
        raise ValueError(f"unknown sort {sort!r}; one of {', '.join(SORT_KEYS)}")
    rows = [i for i, r in enumerate(records) if matches(r, text, status)]
    if sort == "index":
        return rows
    if sort == "answer":
        return sorted(rows, key=lambda i: (records[i].get("answer") or "").lower())
    if sort == "status":
        return sorted(rows, key=lambda i: (records[i].get("status") != "error", i))

    def evidence(i: int) -> float | None:
        r = records[i]
        if word.strip():
            return word_evidence(r, word)
        top = r.get("top_word")
        return None if top is None else r["words"][top]["evidence"]

    scored = [(evidence(i), i) for i in rows]
    have = [(v, i) for v, i in scored if v is not None]
    have.sort(key=lambda s: (-s[0], s[1]) if descending else (s[0], s[1]))
    return [i for _, i in have] + [i for v, i in scored if v is None]
