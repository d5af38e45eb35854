"""Find a word in a long answer: type it, Enter jumps to the next answer token that shows it.

A thousand-token answer is too long to scan by eye in the token strip; this box finds the
tokens whose shown text (:func:`tam_engine.core.tokens.display_token`) contains what was typed,
ignoring case, and makes the next one the current token (the strip scrolls to it).
"""

from __future__ import annotations

import bisect

from PySide6.QtWidgets import QHBoxLayout, QLabel, QLineEdit, QToolButton, QWidget

from tam_desktop.models.playback import PlaybackState
from tam_engine.core.tokens import display_token


def find_tokens(texts: list[str], query: str) -> list[int]:
    """Indices of the tokens whose shown text contains ``query`` (case-insensitive);
    a query of several words matches consecutive tokens that spell it."""
    q = query.strip().casefold()
    if not q:
        return []
    shown = [display_token(t).casefold() for t in texts]
    hits = [i for i, s in enumerate(shown) if q in s]
    if hits or " " not in q:
        return hits
    # "red circle": a phrase spread over tokens; match on the answer's own text.
    joined, starts = "", []
    for t in texts:
        starts.append(len(joined))
        joined += t.casefold()
    out, pos = [], joined.find(q)
    while pos >= 0:
        out.append(bisect.bisect_right(starts, pos) - 1)  # the token the phrase starts in
        pos = joined.find(q, pos + 1)
    return sorted(set(out))


class TokenFind(QWidget):
    """A search box over the answer tokens, with the match count and previous/next."""

    def __init__(self, state: PlaybackState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.edit = QLineEdit(self)
        self.edit.setPlaceholderText("Find a word in the answer")
        self.edit.setClearButtonEnabled(True)
        self.count = QLabel(self)
        self.prev_button = QToolButton(self)
        self.prev_button.setText("▲")
        self.prev_button.setToolTip("Previous match (Shift+Enter)")
        self.next_button = QToolButton(self)
        self.next_button.setText("▼")
        self.next_button.setToolTip("Next match (Enter)")
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.edit, 1)
        row.addWidget(self.count)
        row.addWidget(self.prev_button)
        row.addWidget(self.next_button)
        self.matches: list[int] = []
        self.edit.textChanged.connect(self._search)
        self.edit.returnPressed.connect(lambda: self.step(+1))
        self.prev_button.clicked.connect(lambda: self.step(-1))
        self.next_button.clicked.connect(lambda: self.step(+1))
        state.content_changed.connect(self._search)
        self._search()

    def _search(self, *_args: object) -> None:
        ex = self.state.explanation
        self.matches = find_tokens(ex.answer_texts, self.edit.text()) if ex is not None else []
        self._show_count()
        self.setVisible(ex is not None and ex.n_answer > 0)

    def _show_count(self) -> None:
        if not self.edit.text().strip():
            self.count.setText("")
            return
        st = self.state
        if not self.matches:
            self.count.setText("no match")
            return
        here = (self.matches.index(st.token) + 1
                if st.kind == "answer" and st.token in self.matches else 0)
        self.count.setText(f"{here}/{len(self.matches)}" if here else f"{len(self.matches)}")

    def step(self, delta: int) -> None:
        """Make the next (``+1``) or previous (``-1``) match the current token, wrapping."""
        if not self.matches:
            return
        st = self.state
        cur = st.token if st.kind == "answer" else -1
        if delta > 0:
            later = [i for i in self.matches if i > cur]
            target = later[0] if later else self.matches[0]
        else:
            earlier = [i for i in self.matches if i < cur]
            target = earlier[-1] if earlier else self.matches[-1]
        st.set_token(target, "answer")
        self._show_count()
