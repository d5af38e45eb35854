"""How to run a model: the one settings type shared by the pipeline, the adapters, the CLI, eval
and the desktop app (which stores it in its settings file).

It lives in this small module, re-exported by :mod:`tam_engine.inference.pipeline` (its public
home), because the adapters need it too and the pipeline imports them (through capture and
loading): defining it in the pipeline would make adapters and pipeline import each other. The
module imports nothing heavy, so the desktop app can read its settings file without torch.
"""

from __future__ import annotations

from dataclasses import dataclass

from tam_engine.core.limits import check_count, check_positive_number

__all__ = ["IMAGE_PROMPT", "VIDEO_PROMPT", "GenerationSettings", "default_prompt"]

#: The prompt asked when the user gives none: ``tam explain`` and the desktop app's default.
IMAGE_PROMPT = "Describe this image."
VIDEO_PROMPT = "What is happening in this video?"


def default_prompt(has_video: bool) -> str:
    """The default question for media with (``has_video``) or without a video among them."""
    return VIDEO_PROMPT if has_video else IMAGE_PROMPT


@dataclass
class GenerationSettings:
    """How to run the model. ``min_pixels``/``max_pixels`` bound the resized image area where the
    processor supports it (Qwen2-VL family); ``None`` keeps the checkpoint's own limits."""

    max_new_tokens: int = 64
    top_k: int = 5
    video_fps: float = 2.0
    max_frames: int = 16
    min_pixels: int | None = None
    max_pixels: int | None = None
    device: str = "auto"
    dtype: str = "auto"
    trust_remote_code: bool = False

    def check(self) -> GenerationSettings:
        """Refuse values out of range before anything is loaded or allocated
        (:class:`~tam_engine.core.limits.LimitError`: the limit and how to raise it)."""
        check_count(self.max_new_tokens, "max_new_tokens", "max new tokens", 1)
        check_count(self.top_k, "max_new_tokens", "top-k", 1)
        check_positive_number(self.video_fps, "video_fps", "the video sampling rate")
        check_count(self.max_frames, "max_frames", "max frames", 1)
        for name in ("min_pixels", "max_pixels"):
            value = getattr(self, name)
            if value is not None:
                check_count(value, "pixels", name.replace("_", " "), 1)
        return self
