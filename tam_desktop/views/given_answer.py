"""The "Explain this answer…" dialog: the answer to explain by teacher forcing (a ground truth,
a rival model's answer, a hallucinated one), typed or pasted, checked before it is run."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QLabel,
    QPlainTextEdit,
    QVBoxLayout,
    QWidget,
)

from tam_engine.core.limits import limit

#: The label of the action and of the button beside Run.
EXPLAIN_ANSWER_LABEL = "Explain this answer…"
#: How a given answer is named in titles, the status bar and exports' descriptions.
GIVEN_ANSWER_NAME = "given answer (teacher-forced)"


def answer_problem(text: str) -> str | None:
    """Why ``text`` cannot be explained as a given answer, or None when it can."""
    if not text.strip():
        return "Type or paste the answer to explain."
    n = limit("answer_chars")
    if len(text) > n:
        return (f"The answer has {len(text):,} characters, more than the limit of {n:,} "
                "(raise it with TAM_LIMIT_ANSWER_CHARS).")
    return None


class GivenAnswerDialog(QDialog):
    """A multi-line box for the answer; Explain is enabled only for an answer that can run."""

    def __init__(self, text: str = "", parent: QWidget | None = None,
                 what: str = "the model") -> None:
        super().__init__(parent)
        self.setWindowTitle("Explain this answer")
        intro = QLabel(
            f"Explain why {what} would give this answer to the prompt (teacher forcing: one "
            "forward pass, nothing is generated). Each token's candidates show what the model "
            "would have said instead, and the probability it gives the given token.", self)
        intro.setWordWrap(True)
        self.edit = QPlainTextEdit(self)
        self.edit.setPlaceholderText("e.g. a red circle and a blue triangle.")
        self.edit.setPlainText(text)
        self.problem = QLabel(self)
        self.problem.setStyleSheet("color: #b3261e;")
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self)
        ok = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        ok.setText("Explain")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        col = QVBoxLayout(self)
        col.addWidget(intro)
        col.addWidget(self.edit, 1)
        col.addWidget(self.problem)
        col.addWidget(self.buttons)
        self.resize(520, 300)
        self.edit.textChanged.connect(self._check)
        self._check()

    def answer(self) -> str:
        """The answer as typed: only a trailing line break is dropped (spaces may matter to the
        tokenizer, so nothing else is changed)."""
        return self.edit.toPlainText().rstrip("\n")

    def _check(self) -> None:
        problem = answer_problem(self.answer())
        self.problem.setText(problem or "")
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(problem is None)

    def accept(self) -> None:
        if answer_problem(self.answer()) is None:  # Enter on a disabled button must not pass
            super().accept()


def ask_given_answer(parent: QWidget | None, text: str = "", what: str = "the model"
                     ) -> str | None:
    """The answer the user gave, or None when cancelled."""
    dialog = GivenAnswerDialog(text, parent, what)
    if dialog.exec() != QDialog.DialogCode.Accepted:
        return None
    return dialog.answer()


def is_given(explanation: object) -> bool:
    """Whether an explanation is of a given answer (its meta holds the teacher-forcing record,
    also once saved and reopened)."""
    from tam_engine.inference.capture.given import GIVEN_META

    meta = getattr(explanation, "meta", None)
    return isinstance(meta, dict) and isinstance(meta.get(GIVEN_META), dict)
