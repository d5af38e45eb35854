"""The answer (or the prompt) as a paragraph of clickable token chips."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QMouseEvent
from PySide6.QtWidgets import QFrame, QLabel, QScrollArea, QWidget

from tam_desktop.models.playback import PlaybackState
from tam_desktop.models.text import display_token, token_tooltip
from tam_desktop.views.flow_layout import FlowLayout
from tam_engine.explanation import TokenKind

_STYLE = {
    "plain": "background: #f1f3f4; color: #202124; border: 1px solid #dadce0;",
    "selected": "background: #d2e3fc; color: #174ea6; border: 1px solid #8ab4f8;",
    "current": "background: #1a73e8; color: white; border: 1px solid #1967d2;",
    "streaming": "background: #fafafa; color: #80868b; border: 1px dashed #dadce0;",
}
_BASE = "border-radius: 4px; padding: 2px 5px; font-size: 13px;"


class TokenChip(QLabel):
    """One token; click = this token, Ctrl+click = add/remove, Shift+click = a phrase."""

    clicked = Signal(int, object)  # (index, Qt.KeyboardModifier)

    def __init__(self, index: int, text: str, parent: QWidget | None = None) -> None:
        super().__init__(display_token(text), parent)
        self.index = index
        self.look = ""
        self.setTextFormat(Qt.TextFormat.PlainText)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.set_look("plain")

    def set_look(self, look: str) -> None:
        if look != self.look:
            self.look = look
            self.setStyleSheet(_BASE + _STYLE[look])
            self.setCursor(Qt.CursorShape.ArrowCursor if look == "streaming"
                           else Qt.CursorShape.PointingHandCursor)

    def mousePressEvent(self, ev: QMouseEvent) -> None:  # noqa: N802
        if ev.button() == Qt.MouseButton.LeftButton and self.look != "streaming":
            self.clicked.emit(self.index, ev.modifiers())
            ev.accept()
            return
        super().mousePressEvent(ev)


class TokenStrip(QScrollArea):
    """Chips of one kind of token (answer or prompt), wrapping like text."""

    def __init__(self, state: PlaybackState, kind: TokenKind = "answer",
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.kind: TokenKind = kind
        self.chips: list[TokenChip] = []
        self.setWidgetResizable(True)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self._body = QWidget()
        self._flow = FlowLayout(self._body)
        self.setWidget(self._body)
        self._styled: dict[int, str] = {}
        state.content_changed.connect(self._rebuild)
        state.selection_changed.connect(self._restyle)
        state.token_changed.connect(self._restyle)
        if kind == "answer":
            state.streamed.connect(self._on_streamed)
        self._rebuild()

    # ------------------------------------------------------------------ building
    def _clear(self) -> None:
        for chip in self.chips:
            self._flow.removeWidget(chip)
            chip.deleteLater()
        self.chips = []
        self._styled = {}

    def _add_chip(self, index: int, text: str, look: str) -> TokenChip:
        chip = TokenChip(index, text, self._body)
        chip.set_look(look)
        chip.clicked.connect(self._on_chip_clicked)
        self._flow.addWidget(chip)
        self.chips.append(chip)
        return chip

    def _rebuild(self) -> None:
        self._clear()
        ex = self.state.explanation
        if ex is not None and (self.kind == "answer" or ex.prompt is not None):
            tm = ex.tokens(self.kind)
            for i, text in enumerate(tm.texts):
                chip = self._add_chip(i, text, "plain")
                chip.setToolTip(token_tooltip(ex, i, self.kind))
        self._restyle()
        self._body.adjustSize()

    def _on_streamed(self, texts: list[str]) -> None:
        if self.state.explanation is not None or len(texts) < len(self.chips):
            self._clear()
        for i in range(len(self.chips), len(texts)):
            chip = self._add_chip(i, texts[i], "streaming")
            chip.setToolTip("still generating: the maps appear when the answer is complete")
        if self.chips:
            self.ensureWidgetVisible(self.chips[-1])

    # ------------------------------------------------------------------ state
    def _restyle(self, *_args: object) -> None:
        st = self.state
        if st.explanation is None or not self.chips or self.chips[0].look == "streaming":
            return
        mine = st.kind == self.kind
        wanted: dict[int, str] = {}
        if mine:
            wanted = {i: "selected" for i in st.selection}
            wanted[st.token] = "current"
        # Only chips whose look changes are touched: a style sheet per chip is not free.
        for i in set(self._styled) | set(wanted):
            if i < len(self.chips):
                self.chips[i].set_look(wanted.get(i, "plain"))
        self._styled = wanted
        if mine and st.token < len(self.chips):
            self.ensureWidgetVisible(self.chips[st.token], 4, 4)

    def _on_chip_clicked(self, index: int, modifiers: Qt.KeyboardModifier) -> None:
        st = self.state
        if modifiers & Qt.KeyboardModifier.ControlModifier:
            st.toggle_in_selection(index, self.kind)
        elif modifiers & Qt.KeyboardModifier.ShiftModifier:
            st.extend_selection(index, self.kind)
        else:
            st.set_token(index, self.kind)

    def heightForWidth(self, width: int) -> int:  # noqa: N802
        return self._flow.heightForWidth(width)
