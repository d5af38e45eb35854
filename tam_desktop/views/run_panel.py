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


class ModelPicker(QComboBox):
    """An editable model box: the bundled demo, recent models, or any Hub id / folder."""

    def __init__(self, placeholder: str, parent: QWidget | None = None, *,
                 min_chars: int = 16) -> None:
        super().__init__(parent)
        self.setEditable(True)
        self.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        # Long names must not widen the window (laptop screens): the box grows with the row.
        self.setMinimumContentsLength(min_chars)
        self.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.set_placeholder(placeholder)
        self.setToolTip("A Hugging Face model id (e.g. Qwen/Qwen2-VL-2B-Instruct) or a "
                        "local model folder")

    def set_placeholder(self, text: str) -> None:
        edit = self.lineEdit()
        if edit is not None:
            edit.setPlaceholderText(text)

    def set_models(self, recent: list[str], current: str, *, demo_if_empty: bool = False
                   ) -> None:
        """The demo (when installed) and ``recent``; ``current`` chosen (or the demo)."""
        self.clear()
        demo = demo_model_dir()
        if demo is not None:
            self.addItem(DEMO_LABEL, demo)
        for name in recent:
            if name != demo:
                self.addItem(name, name)
        if not current and demo_if_empty and demo is not None:
            current = demo
        self.set_model(current)

    def set_model(self, name: str) -> None:
        i = self.findData(name) if name else -1
        if i >= 0:
            self.setCurrentIndex(i)
        else:
            self.setCurrentText(name)

    def model_name(self) -> str:
        """The model to load: the demo entry resolves to its folder."""
        text = self.currentText().strip()
        i = self.findText(text, Qt.MatchFlag.MatchExactly)
        if i >= 0 and self.itemData(i):
            return str(self.itemData(i))
        return text

    def browse_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose a model folder")
        if folder:
            self.setCurrentText(folder)

    def browse_button(self, parent: QWidget) -> QToolButton:
        """A "…" button that chooses a local model folder for this box."""
        b = QToolButton(parent)
        b.setText("…")
        b.setToolTip("Choose a local model folder")
        b.clicked.connect(self.browse_folder)
        return b


class RunPanel(QWidget):
    run_requested = Signal()
    cancel_requested = Signal()
    settings_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = ModelPicker("Hub id or model folder", self)
        self.browse = self.model.browse_button(self)
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
        self.run_button.clicked.connect(self.run_requested)
        self.cancel_button.clicked.connect(self.cancel_requested)
        self.settings_button.clicked.connect(self.settings_requested)
        self._has_media = False
        self.set_running(False)
        self.set_has_media(False)

    # ------------------------------------------------------------------ models
    def set_models(self, recent: list[str], current: str) -> None:
        self.model.set_models(recent, current, demo_if_empty=True)
        if not self.model.model_name():
            self.model.set_placeholder("Hub id (e.g. Qwen/Qwen2-VL-2B-Instruct) or model folder")

    def set_model(self, name: str) -> None:
        self.model.set_model(name)

    def model_name(self) -> str:
        """The model to load: a demo entry resolves to its folder."""
        return self.model.model_name()

    def browse_model_folder(self) -> None:
        self.model.browse_folder()

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
