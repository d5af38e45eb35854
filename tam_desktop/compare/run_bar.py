"""The compare window's top row: model A, model B, prompt, media, Run / Cancel, progress."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QGridLayout,
    QLabel,
    QMenu,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QToolButton,
    QWidget,
)

from tam_desktop.settings import PROMPT_PRESETS
from tam_desktop.views.given_answer import EXPLAIN_ANSWER_LABEL
from tam_desktop.views.run_panel import ModelPicker, prompt_for_media


class CompareRunBar(QWidget):
    run_requested = Signal()
    explain_requested = Signal()   # both models explain one given answer (teacher forcing)
    cancel_requested = Signal()
    settings_requested = Signal()
    open_media_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model_a = ModelPicker("Model A: Hub id or folder", self, min_chars=10)
        self.model_b = ModelPicker("Model B: Hub id or folder", self, min_chars=10)
        self.browse_a = self.model_a.browse_button(self)
        self.browse_b = self.model_b.browse_button(self)
        self.prompt = QComboBox(self)
        self.prompt.setEditable(True)
        self.prompt.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.prompt.addItems(PROMPT_PRESETS)
        self.prompt.setToolTip("The same prompt is asked of both models")
        self.prompt.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.media_label = QLabel("no media", self)
        self.media_label.setStyleSheet("color: #3c4043;")
        self.media_button = QPushButton("Media…", self)
        self.media_button.setToolTip("Choose the image(s) or video both models see")
        self.settings_button = QPushButton("Settings…", self)
        self.settings_button.setToolTip("Max new tokens, video frames, resolution, device")
        self.run_button = QPushButton("Run A then B", self)
        self.run_button.setDefault(True)
        self.run_button.setToolTip("Run model A, then model B, on the same media and prompt "
                                   "(Ctrl+R)")
        self.explain_button = QPushButton(EXPLAIN_ANSWER_LABEL, self)
        self.explain_button.setToolTip(
            "Both models explain the same answer you give (teacher forcing): their maps align "
            "word for word (Ctrl+Shift+R)")
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.setToolTip("Stop the running model and skip the rest (Esc)")
        self.progress = QProgressBar(self)
        self.progress.setFixedWidth(170)
        keep = self.progress.sizePolicy()   # showing it during a run must not move the row
        keep.setRetainSizeWhenHidden(True)
        self.progress.setSizePolicy(keep)
        self.preset_button = QToolButton(self)
        self.preset_button.setText("Presets")
        self.preset_button.setToolTip("Ready-made comparisons (e.g. the two bundled demo "
                                      "models on the sample image)")
        self.preset_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        self.preset_menu = QMenu(self.preset_button)
        self.preset_button.setMenu(self.preset_menu)
        self.phase = QLabel(self)
        self.phase.setStyleSheet("color: #5f6368;")
        self.phase.setFixedWidth(240)
        grid = QGridLayout(self)
        grid.setContentsMargins(6, 4, 6, 4)
        grid.setHorizontalSpacing(6)
        grid.setVerticalSpacing(3)
        grid.addWidget(_bold("Model A", "#b2182b"), 0, 0)
        grid.addWidget(self.model_a, 0, 1)
        grid.addWidget(self.browse_a, 0, 2)
        grid.addWidget(_bold("Model B", "#2166ac"), 0, 3)
        grid.addWidget(self.model_b, 0, 4)
        grid.addWidget(self.browse_b, 0, 5)
        grid.addWidget(self.settings_button, 0, 6)
        grid.addWidget(self.run_button, 0, 7)
        grid.addWidget(self.cancel_button, 0, 8)
        grid.addWidget(QLabel("Prompt"), 1, 0)
        grid.addWidget(self.prompt, 1, 1, 1, 3)
        grid.addWidget(self.preset_button, 1, 4, Qt.AlignmentFlag.AlignRight)
        grid.addWidget(self.media_button, 1, 5, 1, 2)
        grid.addWidget(self.explain_button, 1, 7)
        grid.addWidget(self.media_label, 1, 8)
        grid.addWidget(self.progress, 0, 9)
        grid.addWidget(self.phase, 1, 9)
        grid.setColumnStretch(1, 3)
        grid.setColumnStretch(4, 3)
        self.run_button.clicked.connect(self.run_requested)
        self.explain_button.clicked.connect(self.explain_requested)
        self.cancel_button.clicked.connect(self.cancel_requested)
        self.settings_button.clicked.connect(self.settings_requested)
        self.media_button.clicked.connect(self.open_media_requested)
        self.set_running(False)

    def prompt_text(self) -> str:
        return self.prompt.currentText().strip()

    def set_prompt(self, text: str) -> None:
        if text:
            self.prompt.setCurrentText(text)

    def follow_media(self, has_video: bool) -> None:
        """Media were chosen: the default prompt follows their kind."""
        self.set_prompt(prompt_for_media(self.prompt_text(), has_video))

    def set_running(self, running: bool) -> None:
        self.run_button.setEnabled(not running)
        self.explain_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        for w in (self.model_a, self.model_b, self.browse_a, self.browse_b, self.prompt,
                  self.settings_button, self.media_button, self.preset_button):
            w.setEnabled(not running)
        self.progress.setVisible(running)
        if not running:
            self.progress.setRange(0, 1)
            self.progress.setValue(0)

    def set_progress(self, label: str, n: int, total: int) -> None:
        if self.progress.maximum() != total:
            self.progress.setRange(0, max(total, 1))
        self.progress.setValue(min(n, total))
        self.progress.setFormat(f"{label}: {n} / {total} tokens")

    def set_phase(self, text: str) -> None:
        """Which model is doing what, shortened to fit (the whole text in the tooltip)."""
        metrics = self.phase.fontMetrics()
        self.phase.setText(metrics.elidedText(text, Qt.TextElideMode.ElideRight,
                                              self.phase.width() - 4))
        self.phase.setToolTip(text)

    def set_busy(self) -> None:
        self.progress.setRange(0, 0)


def _bold(text: str, colour: str) -> QLabel:
    label = QLabel(text)
    label.setStyleSheet(f"font-weight: bold; color: {colour};")
    return label
