"""Any other image-text-to-text model, where its grids can be verified; refused otherwise.

The generic adapter accepts only what it can check: every image is one contiguous run of the
processor's image token (or adjacent images share a run equally), each image holds exactly the
feature count the model declares (the processor's or config's ``image_seq_length``/
``mm_tokens_per_image``, else the vision tower's ``(image_size / patch_size)^2`` patches), that
count is a square grid, and the grid saw the whole image (no centre crop or padding of a
non-square image). Anything else (markers mistaken for image tokens, tiles, crops, per-image
sizes, a family's own video path) is refused with the real per-image counts and the families that
have an adapter. Videos go in as frames, only for processors with no video path of their own.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from tam_engine.core.media import MediaItem
from tam_engine.core.spans import VisionGrid
from tam_engine.inference.adapters.base import (
    Adapter,
    Prepared,
    SpanError,
    token_id,
)
from tam_engine.inference.adapters.qwen2_vl import contiguous_runs
from tam_engine.inference.settings import GenerationSettings


class UnsupportedModelError(SpanError):
    """The generic adapter cannot verify where this model's vision tokens belong."""


class GenericAdapter(Adapter):
    family = "generic"
    title = "Other image-text-to-text models"
    media = ("image", "images", "video")
    notes = ("only where each image is one square grid of the model's declared feature count; "
             "anything else is refused")
    #: The families that have their own adapter, named in refusals. The registry
    #: (:mod:`tam_engine.inference.adapters`) sets it: it imports this module, so this module
    #: cannot import it.
    supported_titles: ClassVar[str] = ""

    @classmethod
    def supports(cls, config: Any) -> bool:
        from transformers.models.auto.modeling_auto import (
            MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES,
        )

        return (getattr(config, "vision_config", None) is not None
                and getattr(config, "model_type", None) in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES)

    def prepare(self, media: list[MediaItem], prompt: str,
                settings: GenerationSettings | None = None) -> Prepared:
        try:
            return super().prepare(media, prompt, settings)
        except UnsupportedModelError:
            raise
        except SpanError as exc:  # whatever does not fit is a refusal that names the families
            raise self._refusal(exc.message) from exc

    def _refusal(self, reason: str) -> UnsupportedModelError:
        kind = getattr(self.config, "model_type", None) or "this model"
        return UnsupportedModelError(
            f"{reason} {kind} has no adapter of its own, and the generic one accepts only one "
            "square grid per image of the model's declared size.",
            f"Supported families: {self.supported_titles or 'see `tam models`'}. "
            "`tam models` lists the media each one takes.")

    def _feature_count(self) -> tuple[int, str] | None:
        """The number of vision tokens the model declares per image, and where it says so."""
        vc = getattr(self.config, "vision_config", None)
        for obj, names in ((self.processor, ("image_seq_length", "num_image_tokens")),
                           (self.config, ("image_seq_length", "mm_tokens_per_image"))):
            for name in names:
                value = getattr(obj, name, None)
                if isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value:
                    owner = "processor" if obj is self.processor else "config"
                    return int(value), f"the {owner}'s {name}"
        size, patch = getattr(vc, "image_size", None), getattr(vc, "patch_size", None)
        if isinstance(size, int) and isinstance(patch, int) and patch and size % patch == 0:
            side = size // patch
            return side * side, f"the vision tower's {side} x {side} patches"
        return None

    def _grids(self, media: list[MediaItem], inputs: Any, ids: np.ndarray
               ) -> tuple[list[VisionGrid], list[np.ndarray]]:
        if any(m.kind == "video" for m in media) and getattr(
                self.processor, "video_processor", None) is not None:
            raise self._refusal("This model processes videos its own way (it has a video "
                                "processor), which the generic adapter does not follow.")
        ip = getattr(self.processor, "image_processor", None)
        changes = [what for what, flag in (("centre-crops", "do_center_crop"), ("pads", "do_pad"))
                   if getattr(ip, flag, False)]
        if changes and any(m.size[0] != m.size[1] for m in media):
            raise self._refusal(f"The image processor {' and '.join(changes)} non-square images, "
                                "so a grid does not show the whole image.")
        tid = token_id(self.processor, self.config, "image_token_id", "image_token_index")
        if tid is None:
            raise self._refusal("The processor names no image token.")
        n_images = sum(m.n_frames for m in media)
        declared = self._feature_count()
        if declared is None:
            raise self._refusal("The model declares no number of vision tokens per image, so "
                                "its grids cannot be checked.")
        n, source = declared
        positions = np.flatnonzero(ids == tid)
        counts = [int(r.size) for r in contiguous_runs(positions)]
        if len(counts) != n_images and all(c % n == 0 for c in counts) and sum(counts) == n * n_images:
            counts = [n] * n_images  # adjacent images: one run of whole images
        side = math.isqrt(n)
        if len(counts) != n_images or any(c != n for c in counts) or side * side != n:
            if len(counts) == n_images:
                seen = "Vision tokens per image: " + ", ".join(
                    f"image {i + 1}: {c}" for i, c in enumerate(counts))
            else:
                seen = (f"The image tokens come in {len(counts)} runs ("
                        + ", ".join(str(c) for c in counts) + f" tokens) for {n_images} image"
                        + ("s" if n_images > 1 else ""))
            grid = f"a {side} x {side} grid" if side * side == n else "not a square grid"
            raise self._refusal(f"{seen}; expected {n} per image ({source}: {grid}).")
        return self._frames_as_images(media, [(side, side)] * n_images, positions)
