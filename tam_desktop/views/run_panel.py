"""The row that starts a run: model, prompt, settings, Run / Cancel and progress."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QToolButton,
    QWidget,
)

from tam_desktop.settings import PROMPT_PRESETS

DEMO_LABEL = "Bundled demo model"


def demo_model_dir() -> str | None:
    """The bundled demo model's folder, or None when this installation has none."""
    try:
        from tam_engine.core.resources import demo_model_path

        path = demo_model_path()
    except Exception:  # ResourceMissingError: the demo ships later / was removed
        return None
    return str(path) if (path / "config.json").is_file() else None


class RunPanel(QWidget):
    run_requested = Signal()
    cancel_requested = Signal()
    settings_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = QComboBox(self)
        self.model.setEditable(True)
        self.model.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.model.setMinimumContentsLength(16)
        self.model.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.model.setToolTip("A Hugging Face model id (e.g. Qwen/Qwen2-VL-2B-Instruct) or a "
                              "local model folder")
        self.model.lineEdit().setPlaceholderText("Hub id or model folder")
        self.browse = QToolButton(self)
        self.browse.setText("…")
        self.browse.setToolTip("Choose a local model folder")
        self.prompt = QComboBox(self)
        self.prompt.setEditable(True)
        self.prompt.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.prompt.addItems(PROMPT_PRESETS)
        # Long presets must not widen the window (laptop screens): the box grows with the row.
        self.prompt.setMinimumContentsLength(16)
        self.prompt.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.prompt.setToolTip("What to ask the model (type your own or pick a preset)")
        self.prompt.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.settings_button = QPushButton("Settings…", self)
        self.settings_button.setToolTip("Max new tokens, video frames, image resolution, "
                                        "device, precision")
        self.run_button = QPushButton("Run", self)
        self.run_button.setDefault(True)
        self.run_button.setToolTip("Generate an answer and explain every token (Ctrl+R)")
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.setToolTip("Stop the run (Esc)")
        self.progress = QProgressBar(self)
        self.progress.setFixedWidth(150)
        self.phase = QLabel(self)
        self.phase.setStyleSheet("color: #5f6368;")
        row = QHBoxLayout(self)
        row.setContentsMargins(6, 4, 6, 4)
        row.addWidget(QLabel("Model"))
        row.addWidget(self.model, 2)
        row.addWidget(self.browse)
        row.addSpacing(8)
        row.addWidget(QLabel("Prompt"))
        row.addWidget(self.prompt, 3)
        row.addWidget(self.settings_button)
        row.addWidget(self.run_button)
        row.addWidget(self.cancel_button)
        row.addWidget(self.progress)
        row.addWidget(self.phase)
        self.browse.clicked.connect(self.browse_model_folder)
        self.run_button.clicked.connect(self.run_requested)
        self.cancel_button.clicked.connect(self.cancel_requested)
        self.settings_button.clicked.connect(self.settings_requested)
        self._has_media = False
        self.set_running(False)
        self.set_has_media(False)

    # ------------------------------------------------------------------ models
    def set_models(self, recent: list[str], current: str) -> None:
        self.model.clear()
        demo = demo_model_dir()
        if demo is not None:
            self.model.addItem(DEMO_LABEL, demo)
        for name in recent:
            if name != demo:
                self.model.addItem(name, name)
        if current == demo and demo is not None:
            self.model.setCurrentIndex(0)
        elif current:
            self.model.setCurrentText(current)
        elif demo is not None:
            self.model.setCurrentIndex(0)
        else:
            self.model.setCurrentText("")
            self.model.lineEdit().setPlaceholderText(
                "Hub id (e.g. Qwen/Qwen2-VL-2B-Instruct) or model folder")

    def set_model(self, name: str) -> None:
        i = self.model.findData(name)
        if i >= 0:
            self.model.setCurrentIndex(i)
        else:
            self.model.setCurrentText(name)

    def model_name(self) -> str:
        """The model to load: a demo entry resolves to its folder."""
        text = self.model.currentText().strip()
        i = self.model.findText(text, Qt.MatchFlag.MatchExactly)
        if i >= 0 and self.model.itemData(i):
            return str(self.model.itemData(i))
        return text

    def browse_model_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose a model folder")
        if folder:
            self.model.setCurrentText(folder)

    # ------------------------------------------------------------------ prompt
    def prompt_text(self) -> str:
        return self.prompt.currentText().strip()

    def set_prompt(self, text: str) -> None:
        self.prompt.setCurrentText(text)

    # ------------------------------------------------------------------ progress
    def set_has_media(self, has_media: bool) -> None:
        """Run needs something to explain: it is enabled once media are open."""
        self._has_media = has_media
        self.run_button.setEnabled(has_media and not self.cancel_button.isEnabled())
        self.run_button.setToolTip(
            "Generate an answer and explain every token (Ctrl+R)" if has_media
            else "Open an image or a video first (File > Open)")

    def set_running(self, running: bool) -> None:
        self.run_button.setEnabled(not running and self._has_media)
        self.cancel_button.setEnabled(running)
        for w in (self.model, self.browse, self.prompt, self.settings_button):
            w.setEnabled(not running)
        self.progress.setVisible(running)
        if not running:
            self.progress.setRange(0, 1)
            self.progress.setValue(0)

    def set_phase(self, text: str) -> None:
        self.phase.setText(text)

    def set_progress(self, n: int, total: int) -> None:
        if self.progress.maximum() != total:
            self.progress.setRange(0, max(total, 1))
        self.progress.setValue(min(n, total))
        self.progress.setFormat(f"{n} / {total} tokens")

    def set_busy(self) -> None:
        """Unknown duration (loading a model): a busy bar."""
        self.progress.setRange(0, 0)
