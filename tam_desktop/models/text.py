"""Token tooltips and candidate lines for the views (Qt-free); a token's own text is written by
:func:`tam_engine.core.tokens.display_token`, its number by :func:`~tam_engine.core.tokens.
token_label`, a candidate's probability by :func:`tam_engine.core.inputs.percent`."""

from __future__ import annotations

import html

from tam_engine.core.explanation import Explanation
from tam_engine.core.inputs import PROBABILITY_LABEL, percent
from tam_engine.core.token_maps import TokenKind
from tam_engine.core.tokens import token_label

#: What the timeline plots and the tooltips quote: the mean of a token's final map (0 .. 1, but
#: small: maps are sparse).
EVIDENCE_LABEL = "visual evidence (mean of the map)"
#: What the colour bar and the pointer read-out show: one cell of the map, 0 .. 1.
MAP_VALUE_LABEL = "map value"


def timings_text(timings: dict) -> str:
    """A run's times as the status bar shows them, each step apart: ``load 5.2 s · generate
    0.8 s · explain 0.1 s`` (generate includes preparing the inputs; ``model already loaded``
    when the run reused it). '' without timings."""
    t = {k: float(v) for k, v in (timings or {}).items()}
    if not t:
        return ""
    parts = []
    if "load_s" in t:
        parts.append(f"load {t['load_s']:.1f} s" if t["load_s"] > 0 else "model already loaded")
    parts.append(f"generate {t.get('prepare_s', 0.0) + t.get('generate_s', 0.0):.1f} s")
    parts.append(f"explain {t.get('explain_s', 0.0):.1f} s")
    return " \u00b7 ".join(parts)


def token_tooltip(expl: Explanation, k: int, kind: TokenKind = "answer", top: int = 5) -> str:
    """Rich-text tooltip: the token, its visual evidence and the model's top candidates."""
    tm = expl.tokens(kind)
    text = tm.texts[k]
    strength = float(tm.visual_strength()[k]) if len(tm) else 0.0
    lines = [f"<b>{token_label(k, len(tm), kind)}</b>: <code>{html.escape(repr(text))}</code>",
             f"{EVIDENCE_LABEL} {strength:.3f}"]
    if kind == "answer":
        cands = candidates_line(expl, k, top)
        if cands:
            lines.append(f"<br><b>top candidates</b> ({PROBABILITY_LABEL})")
        for ctext, p, chosen in cands:
            mark = " ◀" if chosen else ""
            lines.append(f"<code>{html.escape(repr(ctext))}</code> &nbsp; {html.escape(percent(p))}{mark}")
    return "<br>".join(lines)


def candidates_line(expl: Explanation, k: int, top: int = 5) -> list[tuple[str, float, bool]]:
    """``(text, p over the vocabulary, is_chosen)`` of answer token ``k``'s top candidates.

    For a given answer (teacher forcing) whose token ``k`` is not among them, the given token
    follows, chosen, with the probability the model gave it: what it would have said instead,
    and how likely it found what it was given."""
    cands = expl.candidates
    if cands is None or k >= expl.n_answer:
        return []
    chosen = int(expl.answer.token_ids[k])
    out = [(text, p, cid == chosen) for cid, text, p in cands.top(k, top)]
    given = given_probability(expl, k)
    if given is not None and not any(c for _, _, c in out):
        out.append((expl.answer.texts[k], given, True))
    return out


def given_probability(expl: Explanation, k: int) -> float | None:
    """The probability (over the vocabulary) the model gave answer token ``k`` of a given
    answer; None for a generated answer."""
    from tam_engine.inference.capture.given import GIVEN_META

    record = expl.meta.get(GIVEN_META)
    probs = record.get("token_probs") if isinstance(record, dict) else None
    if not isinstance(probs, list) or not 0 <= k < len(probs):
        return None
    return float(probs[k])
