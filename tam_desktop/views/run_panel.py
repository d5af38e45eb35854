"""The row that starts a run (model, prompt, settings, Run / Cancel) and the run's progress,
which the window shows in its status bar so that the row never moves during a run."""

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
from tam_desktop.views.given_answer import EXPLAIN_ANSWER_LABEL
from tam_engine.inference.settings import IMAGE_PROMPT, VIDEO_PROMPT, default_prompt

DEMO_LABEL = "Bundled demo model"
PHASE_WIDTH = 260   # px of the phase text in the status bar ("Generating …" and more fit)
DEMO_B_LABEL = "Bundled demo model B (8 x 8 grid)"


def _bundled_dir(which: str) -> str | None:
    try:
        from tam_engine.core import resources

        path = resources.demo_model_b_path() if which == "b" else resources.demo_model_path()
    except Exception:  # ResourceMissingError: the demo ships later / was removed
        return None
    return str(path) if (path / "config.json").is_file() else None


def demo_model_dir() -> str | None:
    """The bundled demo model's folder, or None when this installation has none."""
    return _bundled_dir("a")


def demo_model_b_dir() -> str | None:
    """The second bundled demo model's folder (for comparing offline), or None."""
    return _bundled_dir("b")


def bundled_models() -> list[tuple[str, str]]:
    """``(label, folder)`` of each bundled demo model this installation has."""
    found = ((DEMO_LABEL, demo_model_dir()), (DEMO_B_LABEL, demo_model_b_dir()))
    return [(label, folder) for label, folder in found if folder is not None]


def prompt_for_media(current: str, has_video: bool) -> str:
    """The prompt to show once media are open: the default for their kind, unless the user
    typed or picked another one (kept as it is)."""
    if current.strip() in ("", IMAGE_PROMPT, VIDEO_PROMPT):
        return default_prompt(has_video)
    return current


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
        bundled = bundled_models()
        for label, folder in bundled:
            self.addItem(label, folder)
        demo = demo_model_dir()
        for name in recent:
            if name not in {folder for _, folder in bundled}:
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
    explain_requested = Signal()   # "Explain this answer…": a given answer, teacher-forced
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
        self.explain_button = QPushButton(EXPLAIN_ANSWER_LABEL, self)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.setToolTip("Stop the run (Esc)")
        # The run's progress lives in a fixed-size slot that the window puts in its status bar:
        # showing it must not move Run / Cancel, and the phase is elided, never clipped.
        self.status_widget = QWidget()
        self.progress = QProgressBar(self.status_widget)
        self.progress.setFixedWidth(150)
        keep = self.progress.sizePolicy()
        keep.setRetainSizeWhenHidden(True)
        self.progress.setSizePolicy(keep)
        self.phase = QLabel(self.status_widget)
        self.phase.setStyleSheet("color: #5f6368;")
        self.phase.setFixedWidth(PHASE_WIDTH)
        slot = QHBoxLayout(self.status_widget)
        slot.setContentsMargins(0, 0, 0, 0)
        slot.addWidget(self.phase)
        slot.addWidget(self.progress)
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
        row.addWidget(self.explain_button)
        row.addWidget(self.cancel_button)
        self.run_button.clicked.connect(self.run_requested)
        self.explain_button.clicked.connect(self.explain_requested)
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

    def follow_media(self, has_video: bool) -> None:
        """Media were opened: the default prompt follows their kind (see prompt_for_media)."""
        self.set_prompt(prompt_for_media(self.prompt_text(), has_video))

    # ------------------------------------------------------------------ progress
    def set_has_media(self, has_media: bool) -> None:
        """Run needs something to explain: it is enabled once media are open."""
        self._has_media = has_media
        for b in (self.run_button, self.explain_button):
            b.setEnabled(has_media and not self.cancel_button.isEnabled())
        self.run_button.setToolTip(
            "Generate an answer and explain every token (Ctrl+R)" if has_media
            else "Open an image or a video first (File > Open)")
        self.explain_button.setToolTip(
            "Explain an answer you give (a ground truth, another model's answer) instead of "
            "generating one: teacher forcing, one forward pass (Ctrl+Shift+R)" if has_media
            else "Open an image or a video first (File > Open)")

    def set_running(self, running: bool) -> None:
        self.run_button.setEnabled(not running and self._has_media)
        self.explain_button.setEnabled(not running and self._has_media)
        self.cancel_button.setEnabled(running)
        for w in (self.model, self.browse, self.prompt, self.settings_button):
            w.setEnabled(not running)
        self.progress.setVisible(running)
        if not running:
            self.progress.setRange(0, 1)
            self.progress.setValue(0)

    def set_phase(self, text: str) -> None:
        """What the run is doing, shortened to fit its slot (the whole text in the tooltip)."""
        metrics = self.phase.fontMetrics()
        self.phase.setText(metrics.elidedText(text, Qt.TextElideMode.ElideMiddle,
                                              self.phase.width() - 4))
        self.phase.setToolTip(text)

    def set_progress(self, n: int, total: int) -> None:
        if self.progress.maximum() != total:
            self.progress.setRange(0, max(total, 1))
        self.progress.setValue(min(n, total))
        self.progress.setFormat(f"{n} / {total} tokens")

    def set_busy(self) -> None:
        """Unknown duration (loading a model): a busy bar."""
        self.progress.setRange(0, 0)
