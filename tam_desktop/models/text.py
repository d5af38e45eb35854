"""Token tooltips and candidate lines for the views (Qt-free); a token's own text is written by
:func:`tam_engine.core.tokens.display_token`."""

from __future__ import annotations

import html

from tam_engine.core.explanation import Explanation
from tam_engine.core.token_maps import TokenKind


def token_tooltip(expl: Explanation, k: int, kind: TokenKind = "answer", top: int = 5) -> str:
    """Rich-text tooltip: the token, its visual activation and the model's top candidates."""
    tm = expl.tokens(kind)
    text = tm.texts[k]
    strength = float(tm.visual_strength()[k]) if len(tm) else 0.0
    lines = [f"<b>{'answer' if kind == 'answer' else 'prompt'} token {k}</b>: "
             f"<code>{html.escape(repr(text))}</code>",
             f"visual activation {strength:.2f}"]
    cands = expl.candidates
    if kind == "answer" and cands is not None and k < cands.ids.shape[0] and cands.k:
        lines.append("<br><b>top candidates</b>")
        for j in range(min(top, cands.k)):
            ctext = cands.texts[k][j]
            p = float(cands.probs[k, j])
            mark = " ◀" if int(cands.ids[k, j]) == int(tm.token_ids[k]) else ""
            lines.append(f"<code>{html.escape(repr(ctext))}</code> &nbsp; {100.0 * p:.1f}%{mark}")
    return "<br>".join(lines)


def candidates_line(expl: Explanation, k: int, top: int = 5) -> list[tuple[str, float, bool]]:
    """``(text, probability, is_chosen)`` of answer token ``k``'s top candidates."""
    cands = expl.candidates
    if cands is None or k >= cands.ids.shape[0]:
        return []
    chosen = int(expl.answer.token_ids[k])
    return [(cands.texts[k][j], float(cands.probs[k, j]), int(cands.ids[k, j]) == chosen)
            for j in range(min(top, cands.k))]
