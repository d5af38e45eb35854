"""The text map: the current token's context coloured by relevance, and its candidates."""

from __future__ import annotations

import html
from functools import lru_cache

import numpy as np
from PySide6.QtCore import QCoreApplication, QEvent, Qt
from PySide6.QtWidgets import QTextBrowser, QWidget

from tam_desktop.models.playback import PlaybackState
from tam_desktop.models.text import candidates_line
from tam_desktop.views.colors import css_color, text_color_on
from tam_engine.core.inputs import PROBABILITY_LABEL, percent
from tam_engine.core.tokens import display_token, phrase_label, phrase_text, token_label


def text_map_html(state: PlaybackState) -> str:
    """HTML of the text map for the state's current token ('' without an explanation)."""
    ex = state.explanation
    if ex is None or state.n_tokens() == 0:
        return ""
    k, kind, cmap = state.token, state.kind, state.display.colormap
    tm = ex.tokens(kind)
    rel = tm.normalised_relevance(k)
    n_prompt = len(ex.prompt_positions)
    columns = ex.text_columns
    own_col = k if kind == "prompt" else n_prompt + k
    parts: list[str] = []

    offset = 0 if kind == "prompt" else n_prompt
    phrase_cols = {offset + j for j in state.selection} if len(state.selection) > 1 else set()

    def chip(i: int, text: str) -> str:
        shown = _shown(text)
        if i == own_col:
            return (f'<span style="background:#1a73e8;color:#fff;font-weight:bold;">'
                    f"&nbsp;{shown}&nbsp;</span>")
        if i in phrase_cols:  # the rest of the phrase: marked, as the strip marks it
            return (f'<span style="background:#d2e3fc;color:#174ea6;font-weight:bold;'
                    f'text-decoration:underline;">{shown}</span>')
        value = rel[i]
        if np.isnan(value):  # not in this token's context: later tokens
            return f'<span style="color:#9aa0a6;">{shown}</span>'
        return (f'<span style="{_chip_style(cmap, _colour_index(float(value)))}" '
                f'title="relevance {value:.2f}">{shown}</span>')

    parts.append(f'<p style="margin:0 0 4px 0;">{_head(state)}</p>')
    legend = " ".join(
        f'<span style="background:{css_color(cmap, v)};">&nbsp;&nbsp;&nbsp;</span>'
        for v in np.linspace(0, 1, 8))
    parts.append(f'<p style="color:#5f6368;margin:0 0 6px 0;">relevance 0 {legend} 1 '
                 "&nbsp; (grey: outside this token's context)</p>")
    parts.append('<p style="color:#5f6368;margin:0 0 2px 0;">Prompt</p><p style="margin:0;">')
    parts.append(" ".join(chip(i, columns[i]) for i in range(n_prompt)))
    parts.append('</p><p style="color:#5f6368;margin:8px 0 2px 0;">Answer</p>'
                 '<p style="margin:0;">')
    # A long answer shows the answer tokens around the current one: laying out a thousand
    # coloured spans takes a QTextBrowser a third of a second, on every token switch.
    centre = k if kind == "answer" else 0
    lo = max(0, min(centre - ANSWER_WINDOW // 2, ex.n_answer - ANSWER_WINDOW))
    hi = min(ex.n_answer, lo + ANSWER_WINDOW)
    if lo > 0:
        parts.append(f'<span style="color:#5f6368;">… {lo} earlier tokens … </span>')
    parts.append(" ".join(chip(n_prompt + j, columns[n_prompt + j]) for j in range(lo, hi)))
    if hi < ex.n_answer:
        parts.append(f'<span style="color:#5f6368;"> … {ex.n_answer - hi} later tokens …'
                     "</span>")
    parts.append("</p>")
    return "".join(parts)


# A token switch writes a couple of hundred chips: their texts and colours are cached.
@lru_cache(maxsize=16_384)
def _shown(text: str) -> str:
    return html.escape(display_token(text))


def _colour_index(value: float) -> int:
    """The colour table's entry for ``value`` (as ``colour_of`` picks it)."""
    return round(min(max(value, 0.0), 1.0) * 255) if np.isfinite(value) else 0


@lru_cache(maxsize=4_096)
def _chip_style(cmap: str, index: int) -> str:
    bg = css_color(cmap, index / 255.0)
    return f"background:{bg};color:{text_color_on(bg)};"


def _head(state: PlaybackState) -> str:
    """The first line: the token (or the phrase) shown, and its candidates."""
    ex = state.explanation
    assert ex is not None
    k, kind = state.token, state.kind
    tm = ex.tokens(kind)
    sel = state.selection
    if len(sel) > 1:
        words = html.escape(phrase_text(tm.texts, sel))
        head = (f"<b>Phrase: {phrase_label(sel, kind)}</b> <code>{words}</code> "
                f"(map: {state.display.combine} of the {len(sel)} tokens; the relevances "
                f"below are those of {token_label(k)} <code>{html.escape(repr(tm.texts[k]))}"
                "</code>)")
    else:
        head = (f"<b>{token_label(k, len(tm), kind).capitalize()}</b> "
                f"<code>{html.escape(repr(tm.texts[k]))}</code>")
    if kind == "answer" and len(sel) <= 1:
        cands = candidates_line(ex, k)
        if cands:
            head += f" &nbsp;·&nbsp; top candidates ({PROBABILITY_LABEL}): " + ", ".join(
                f"<code>{html.escape(repr(t))}</code>{' ◀' if chosen else ''} {html.escape(percent(p))}"
                for t, p, chosen in cands)
    return head


#: Answer tokens shown in the text map (all of them up to this many).
ANSWER_WINDOW = 160


# The text map's deferred layout, in two hops (see TextMapView).
_AFTER_PAINT = QEvent.Type(QEvent.registerEventType())
_LAY_OUT = QEvent.Type(QEvent.registerEventType())


class TextMapView(QTextBrowser):
    """The text map, laid out once the state has stopped changing for a paint.

    Laying out and painting a couple of hundred coloured spans costs about as much as all the
    rest of a token switch, and the map over the picture is what the user looks at first. So a
    change posts a low-priority event, served after the paint already queued; that one posts
    the layout for the next pass of the event loop (events posted while the queue is served
    wait for the next pass). If the state changed again in between (keys held down, a drag
    along the timeline), the layout waits for that paint too: a burst of switches lays the
    text out once, at its end. Reading the view's text (``toPlainText``, ``toHtml``) brings it
    up to date first.
    """

    def __init__(self, state: PlaybackState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.setOpenLinks(False)
        self.setPlaceholderText("The text map appears here once an answer is explained.")
        self._shown: tuple | None = None  # what the text map shows (or is about to show)
        self._pending = False             # the state changed, the text not yet laid out
        self._posted = False              # a hop is on its way
        self._changes = 0                 # state changes seen (a hop notes the count)
        self._noted = 0
        state.content_changed.connect(self._on_content)
        state.token_changed.connect(self.refresh)
        state.selection_changed.connect(self.refresh)
        state.display.changed.connect(self._on_display)
        self.refresh()

    def _on_content(self) -> None:
        self._shown = None
        self.refresh()

    def _on_display(self, name: str) -> None:
        if name in ("colormap", "combine"):
            self.refresh()

    def refresh(self, *_args: object) -> None:
        st = self.state
        # One token switch announces the token and the selection: lay the text out once.
        key = (st.kind, st.token, st.selection, st.display.colormap, st.display.combine)
        if key == self._shown:
            return
        self._shown = key
        self._pending = True
        self._changes += 1
        if not self._posted:
            self._posted = True
            self._after_paint()

    def _after_paint(self) -> None:
        QCoreApplication.postEvent(self, QEvent(_AFTER_PAINT),
                                   Qt.EventPriority.LowEventPriority.value)

    def customEvent(self, ev: QEvent) -> None:  # noqa: N802 (Qt override)
        if ev.type() == _AFTER_PAINT:
            self._noted = self._changes
            QCoreApplication.postEvent(self, QEvent(_LAY_OUT))
        elif ev.type() == _LAY_OUT:
            if self._changes != self._noted:
                self._after_paint()   # changed again meanwhile: its paint goes first
                return
            self._posted = False
            self.flush()
        else:
            super().customEvent(ev)

    @property
    def pending(self) -> bool:
        """Whether the state changed since the text was last laid out."""
        return self._pending

    def flush(self) -> None:
        """Lay out the text of the current state now, if it changed since the last time."""
        if self._pending:
            self._pending = False
            self.setHtml(text_map_html(self.state))

    def toPlainText(self) -> str:  # noqa: N802 (Qt override)
        self.flush()
        return super().toPlainText()

    def toHtml(self) -> str:  # noqa: N802 (Qt override)
        self.flush()
        return super().toHtml()
