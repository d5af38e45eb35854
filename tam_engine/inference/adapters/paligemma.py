"""PaliGemma and PaliGemma 2: a prefix prompt, no chat template.

The checkpoints ship no chat template: the model reads ``<image>`` placeholders, then ``<bos>``,
the prompt and a newline. The processor builds exactly that from the placeholders and the prompt
(it inserts ``<bos>`` after the last placeholder and appends the newline itself), so the adapter
gives it the placeholders and the prompt, and finds the prompt's tokens in the processor's own
ids after that ``<bos>``. Each image is squashed to the tower's square input and becomes
``image_seq_length`` tokens, a square patch grid in row-major order. A video's frames go in as
images.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tam_engine.core.media import MediaItem
from tam_engine.core.spans import VisionGrid
from tam_engine.inference.adapters.base import (
    Adapter,
    Prepared,
    SpanError,
    token_id,
)
from tam_engine.inference.settings import GenerationSettings


class PaliGemmaAdapter(Adapter):
    family = "paligemma"
    model_types = ("paligemma",)
    uses_chat_template = False
    title = "PaliGemma"
    examples = ("google/paligemma2-3b-mix-224", "google/paligemma-3b-mix-224")
    media = ("image", "images", "video")
    notes = ("16 x 16 at 224 px (32 x 32 at 448, 64 x 64 at 896); a prefix prompt, no chat "
             "template; a video's frames are images of one grid")


    def _image_token(self) -> str:
        token = getattr(self.processor, "image_token", None)
        if not isinstance(token, str):
            raise SpanError("This PaliGemma processor names no image token.",
                            "Check that the processor files are complete.")
        return token

    # ------------------------------------------------------------------ inputs
    def _render(self, media: list[MediaItem], prompt: str) -> tuple[str, tuple[int, int]]:
        # One placeholder per image (a video's frames are images); the processor adds <bos>
        # after the last one and the newline after the prompt.
        head = self._image_token() * sum(m.n_frames for m in media)
        return head + prompt, (len(head), len(head) + len(prompt))

    def prepare(self, media: list[MediaItem], prompt: str,
                settings: GenerationSettings | None = None) -> Prepared:
        prepared = super().prepare(media, prompt, settings)
        # The processor also returns training labels; generate must not get them.
        prepared.model_inputs.pop("labels", None)
        return prepared

    # ------------------------------------------------------------------ spans
    def _prompt_positions(self, text: str, char_span: tuple[int, int], ids: np.ndarray
                          ) -> np.ndarray:
        """The prompt's tokens: after the ``<bos>`` that follows the last image token, the ids
        must be the prompt and its newline tokenized alone; tokens overlapping the prompt's
        characters are the prompt."""
        image_id = token_id(self.processor, self.config, "image_token_id", "image_token_index")
        bos_id = getattr(self.tokenizer, "bos_token_id", None)
        image_pos = np.flatnonzero(ids == image_id) if image_id is not None else np.zeros(0)
        first = int(image_pos[-1]) + 2 if image_pos.size else 1
        prompt = text[char_span[0]:char_span[1]]
        enc = self.tokenizer(prompt + "\n", add_special_tokens=False,
                             return_offsets_mapping=True)
        tail = np.asarray(enc["input_ids"], dtype=np.int64)
        if (bos_id is None or first > ids.size or ids[first - 1] != bos_id
                or not np.array_equal(ids[first:], tail)):
            raise SpanError("Cannot locate the prompt's tokens in PaliGemma's processed sequence.",
                            "This checkpoint's processor differs from PaliGemma's; please report "
                            "it.")
        idx = [i for i, (s, e) in enumerate(enc["offset_mapping"]) if e > s and s < len(prompt)]
        if not idx:
            raise SpanError("The prompt produced no tokens.", "Use a longer prompt.")
        return first + np.asarray(idx, dtype=np.int64)

    def _grids(self, media: list[MediaItem], inputs: Any, ids: np.ndarray
               ) -> tuple[list[VisionGrid], list[np.ndarray]]:
        image_id = token_id(self.processor, self.config, "image_token_id", "image_token_index")
        if image_id is None:
            raise SpanError("This PaliGemma checkpoint names no image token.",
                            "Check that the processor files are complete.")
        positions = np.flatnonzero(ids == image_id)
        pv = inputs["pixel_values"]
        n_images, side = int(pv.shape[0]), int(pv.shape[-1])
        vc = getattr(self.config, "vision_config", None)
        patch = int(getattr(vc, "patch_size", 0) or 0)
        if not patch or side % patch or int(pv.shape[-2]) != side:
            raise SpanError(f"PaliGemma: a {pv.shape[-2]} x {side} input does not split into "
                            f"patches of {patch} pixels.",
                            "This checkpoint's processor and vision config disagree.")
        g = side // patch
        # The model replaces every image token by one patch feature, image after image, so the
        # run of image tokens splits into equal parts; each must be the tower's g x g patches.
        seq = getattr(self.processor, "image_seq_length", None)
        if n_images == 0 or positions.size != n_images * g * g or (seq and int(seq) != g * g):
            said = f" (the processor's image_seq_length is {int(seq)})" if seq else ""
            raise SpanError(
                f"PaliGemma: {positions.size} image tokens for {n_images} image(s), but the "
                f"vision tower gives {g} x {g} = {g * g} per image{said}.",
                "This checkpoint's processor and vision config disagree; please report it.")
        return self._frames_as_images(media, [(g, g)] * n_images, positions)

