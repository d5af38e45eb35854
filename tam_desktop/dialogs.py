"""Dialogs: errors that say what to do, generation settings, keyboard help, about."""

from __future__ import annotations

import traceback

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QMessageBox,
    QSpinBox,
    QWidget,
)

from tam_desktop import __version__
from tam_engine.core.errors import TamError
from tam_engine.core.limits import limit
from tam_engine.inference.settings import GenerationSettings

DEVICES = ("auto", "cpu", "cuda", "mps")
DTYPES = ("auto", "float32", "bfloat16", "float16")


def error_texts(exc: BaseException) -> tuple[str, str, str]:
    """``(message, hint, details)`` to show for an exception.

    A ``TamError`` carries its own message and hint. Anything else is a bug or an environment
    problem the engine did not foresee: say so plainly and keep the traceback in the details.
    """
    if isinstance(exc, TamError):
        return exc.message, exc.hint, ""
    if isinstance(exc, MemoryError):
        return ("The computer ran out of memory.",
                "Lower the image resolution limit, the number of frames or max new tokens in "
                "Model > Generation Settings, or use a smaller model.", "")
    details = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    return (f"Something unexpected went wrong: {type(exc).__name__}: {exc}",
            "The app is still usable. If this keeps happening, report it with the details "
            "below.", details)


def show_error(parent: QWidget | None, title: str, exc: BaseException) -> QMessageBox:
    """A modal error box with the message, the hint and (for unexpected errors) a traceback."""
    message, hint, details = error_texts(exc)
    box = QMessageBox(QMessageBox.Icon.Critical, title, message,
                      QMessageBox.StandardButton.Ok, parent)
    if hint:
        box.setInformativeText(hint)
    if details:
        box.setDetailedText(details)
    box.exec()
    return box


def ask_save_changes(parent: QWidget | None, doing: str) -> str:
    """Save, Discard or Cancel before an unsaved explanation is dropped: "save", "discard" or
    "cancel" (also when the box is closed)."""
    buttons = (QMessageBox.StandardButton.Save | QMessageBox.StandardButton.Discard
               | QMessageBox.StandardButton.Cancel)
    box = QMessageBox(QMessageBox.Icon.Warning, "Unsaved explanation",
                      "The explanation on screen has not been saved.", buttons, parent)
    box.setInformativeText(f"Save it before {doing}? Discarded, it is gone until the model "
                           "is run again.")
    box.setDefaultButton(QMessageBox.StandardButton.Save)
    answer = box.exec()
    if answer == QMessageBox.StandardButton.Save.value:
        return "save"
    if answer == QMessageBox.StandardButton.Discard.value:
        return "discard"
    return "cancel"


def show_settings_problems(parent: QWidget | None, problems: list[str]) -> QMessageBox:
    """Say once which stored settings were invalid and were reset to their defaults."""
    box = QMessageBox(QMessageBox.Icon.Warning, "Some settings were reset",
                      "Some saved settings were invalid and are back to their defaults.",
                      QMessageBox.StandardButton.Ok, parent)
    box.setInformativeText("\n".join(problems[:12]))
    box.exec()
    return box


class GenerationDialog(QDialog):
    """Max new tokens, video sampling, image resolution limits, device and dtype."""

    def __init__(self, prefs: GenerationSettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Generation Settings")
        self.max_new_tokens = QSpinBox(self)
        self.max_new_tokens.setRange(1, limit("max_new_tokens"))
        self.video_fps = QDoubleSpinBox(self)
        self.video_fps.setRange(0.1, 30.0)
        self.video_fps.setDecimals(1)
        self.video_fps.setSuffix(" frames/s")
        self.max_frames = QSpinBox(self)
        self.max_frames.setRange(1, min(512, limit("max_frames")))
        self.min_pixels = self._pixels_box()
        self.max_pixels = self._pixels_box()
        self.device = QComboBox(self)
        self.device.setEditable(True)
        self.device.addItems(DEVICES)
        self.dtype = QComboBox(self)
        self.dtype.addItems(DTYPES)
        form = QFormLayout(self)
        form.addRow("Max new tokens", self.max_new_tokens)
        form.addRow("Video sampling rate", self.video_fps)
        form.addRow("Max video frames", self.max_frames)
        form.addRow("Min image pixels", self.min_pixels)
        form.addRow("Max image pixels", self.max_pixels)
        form.addRow("Device", self.device)
        form.addRow("Precision", self.dtype)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                                   | QDialogButtonBox.StandardButton.Cancel
                                   | QDialogButtonBox.StandardButton.RestoreDefaults, self)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        buttons.button(QDialogButtonBox.StandardButton.RestoreDefaults).clicked.connect(
            lambda: self.set_prefs(GenerationSettings()))
        form.addRow(buttons)
        self.set_prefs(prefs)

    def _pixels_box(self) -> QSpinBox:
        box = QSpinBox(self)
        box.setRange(0, min(limit("pixels"), 2**31 - 1))
        box.setSingleStep(28 * 28 * 64)
        box.setSpecialValueText("model default")
        box.setToolTip("Bounds the resized image area (Qwen2-VL family); fewer pixels = fewer "
                       "vision tokens = faster and less memory")
        return box

    def set_prefs(self, p: GenerationSettings) -> None:
        self.max_new_tokens.setValue(p.max_new_tokens)
        self.video_fps.setValue(p.video_fps)
        self.max_frames.setValue(p.max_frames)
        self.min_pixels.setValue(p.min_pixels or 0)
        self.max_pixels.setValue(p.max_pixels or 0)
        self.device.setCurrentText(p.device)
        self.dtype.setCurrentText(p.dtype)

    def prefs(self) -> GenerationSettings:
        return GenerationSettings(
            max_new_tokens=self.max_new_tokens.value(),
            video_fps=round(self.video_fps.value(), 1),
            max_frames=self.max_frames.value(),
            min_pixels=self.min_pixels.value() or None,
            max_pixels=self.max_pixels.value() or None,
            device=self.device.currentText().strip() or "auto",
            dtype=self.dtype.currentText(),
        )


SHORTCUTS_HTML = """
<table cellspacing="6">
<tr><td><b>Left / Right</b></td><td>previous / next token</td></tr>
<tr><td><b>Home / End</b></td><td>first / last token</td></tr>
<tr><td><b>Up / Down</b>, <b>,</b> / <b>.</b></td><td>previous / next frame</td></tr>
<tr><td><b>Space</b></td><td>play / pause the video with its maps</td></tr>
<tr><td><b>O</b></td><td>overlay on / off</td></tr>
<tr><td><b>Shift+click</b></td><td>a phrase: the tokens from the last clicked one</td></tr>
<tr><td><b>Ctrl+click</b></td><td>add a token to the phrase or remove it</td></tr>
<tr><td><b>Q</b>, or <b>Shift+drag</b></td><td>query a region: drag a box on the media to rank
the answer tokens by how much of their map lies inside (Esc clears it)</td></tr>
<tr><td><b>Ctrl+R</b> / <b>Esc</b></td><td>run / cancel</td></tr>
<tr><td><b>Ctrl+Shift+R</b></td><td>explain a given answer (teacher forcing)</td></tr>
</table>
"""


def show_shortcuts(parent: QWidget | None) -> None:
    box = QMessageBox(QMessageBox.Icon.NoIcon, "Keyboard and mouse", SHORTCUTS_HTML,
                      QMessageBox.StandardButton.Ok, parent)
    box.exec()


def show_about(parent: QWidget | None) -> None:
    QMessageBox.about(
        parent, "About tam-desktop",
        f"<b>tam-desktop {__version__}</b><p>For every token a vision-language model generates, "
        "see which pixels (and which frames) were its visual evidence: Token Activation Maps "
        "(Li et al., ICCV 2025, arXiv 2506.23270).</p>")
