"""The word-alignment panel: both answers as words, linked words underlined, the shown ones
highlighted in their side's colour."""

from __future__ import annotations

import html

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QWidget

from tam_desktop.compare.link import SIDES
from tam_engine.compare.alignment import Side
from tam_engine.compare.comparison import Comparison

SIDE_COLOURS: dict[Side, str] = {"a": "#b2182b", "b": "#2166ac"}

EMPTY_TEXT = ("<b>Word alignment</b><br>Run both models (Ctrl+R) or open two saved "
              "explanations (File menu). Words both answers share are linked: click one in "
              "either pane and the other pane shows its counterpart.")


def alignment_html(cmp: Comparison, selections: dict[Side, tuple[int, ...]]) -> str:
    """Rich text of both answers word by word; ``selections`` are the answer tokens shown."""
    al = cmp.alignment
    rows = []
    for side in SIDES:
        shown = {al.word_of_token(side, k) for k in selections.get(side, ())}
        parts = []
        for i, w in enumerate(al.words(side)):
            linked = al.aligned_word(side, i) is not None
            style = "color:#202124;" if linked else "color:#9aa0a6;"
            if i in shown:
                style += f"background:{SIDE_COLOURS[side]}; color:white;"
            elif linked:
                style += "text-decoration: underline;"
            parts.append(f"<span style='{style}'>{html.escape(w.text)}</span>")
        rows.append(f"<b style='color:{SIDE_COLOURS[side]}'>{side.upper()}</b>: "
                    + " ".join(parts))
    rows.append(f"<span style='color:#5f6368'>{al.n_aligned} of {len(al.words_a)} words of A "
                "have a counterpart in B (underlined); grey words have none.</span>")
    return "<b>Word alignment</b><br>" + "<br>".join(rows)


class AlignmentView(QLabel):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setTextFormat(Qt.TextFormat.RichText)
        self.setWordWrap(True)
        self.setAlignment(Qt.AlignmentFlag.AlignTop)
        self.setStyleSheet("background: #f8f9fa; padding: 6px;")
        self.setText(EMPTY_TEXT)

    def show_alignment(self, cmp: Comparison | None,
                       selections: dict[Side, tuple[int, ...]]) -> None:
        self.setText(EMPTY_TEXT if cmp is None else alignment_html(cmp, selections))
