"""Errors a user can act on: each names the problem and the way out."""

from __future__ import annotations


class TamError(Exception):
    """Base of every error meant for a person. ``hint`` says what to do about it."""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n{self.hint}" if self.hint else self.message


class MediaError(TamError):
    """A media file is missing, empty, corrupt or of an unsupported kind."""


class ModelLoadError(TamError):
    """A model cannot be found, is not a supported multimodal model, or fails to load."""


class ModelMemoryError(TamError):
    """The model or the run does not fit in the device's memory."""


class Cancelled(TamError):
    """The user stopped the run; nothing is broken."""

    def __init__(self, message: str = "Cancelled.", hint: str = "") -> None:
        super().__init__(message, hint)


class ExplanationFileError(TamError, ValueError):
    """A saved explanation cannot be read (also a ``ValueError``, as a bad file's content is)."""
