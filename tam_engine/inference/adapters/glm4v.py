"""GLM-4.1V (``glm4v``), GLM-4.5V (``glm4v_moe``) and GLM-4.6V (``glm46v``).

Their processors follow Qwen3-VL's contract (``image_grid_thw``/``video_grid_thw``, merge 2,
resize only, one block per temporal slot of a video with its timestamp), with one difference:
a video's frames are written with the IMAGE token, ``<|begin_of_video|>`` then per slot
``<|begin_of_image|> h*w x <|image|> <|end_of_image|>{seconds}``. So the image token's runs are
handed out in the order of the media, images and videos alike.

The model itself (transformers' ``Glm4vModel``) then cannot tell a video's tokens from an
image's, so a prompt with both images and a video fails inside it: that mix is refused up front.
"""

from __future__ import annotations

import numpy as np

from tam_engine.core.errors import MediaError
from tam_engine.core.media import MediaItem
from tam_engine.inference.adapters.base import Prepared, SpanError, token_id
from tam_engine.inference.adapters.qwen2_vl import contiguous_runs
from tam_engine.inference.adapters.qwen3_vl import Qwen3VLAdapter
from tam_engine.inference.settings import GenerationSettings


class Glm4vAdapter(Qwen3VLAdapter):
    family = "glm4v"
    model_types = ("glm4v",)
    title = "GLM-4.1V"
    examples = ("zai-org/GLM-4.1V-9B-Thinking",)
    notes = ("as Qwen3-VL (14-px patches); images and a video in one prompt are refused (the "
             "model cannot tell them apart)")

    def prepare(self, media: list[MediaItem], prompt: str,
                settings: GenerationSettings | None = None) -> Prepared:
        if {item.kind for item in media} == {"image", "video"}:
            raise MediaError(
                f"{self.family} cannot take images and a video in the same prompt: the model "
                "counts a video's frames as image tokens and fails.",
                "Explain the video and the images separately.")
        return super().prepare(media, prompt, settings)

    def _vision_runs(self, ids: np.ndarray) -> dict[str, list[np.ndarray]]:
        image_id = token_id(self.processor, self.config, "image_token_id")
        if image_id is None:
            raise SpanError(f"This {self.family} checkpoint names no image token.",
                            "Check that the processor files are complete.")
        return {"image": contiguous_runs(np.flatnonzero(ids == image_id))}

    def _pool(self, kind: str) -> str:
        return "image"


class Glm4vMoeAdapter(Glm4vAdapter):
    family = "glm4v_moe"
    model_types = ("glm4v_moe",)
    title = "GLM-4.5V"
    examples = ("zai-org/GLM-4.5V",)
    notes = "as GLM-4.1V"


class Glm46VAdapter(Glm4vAdapter):
    family = "glm46v"
    model_types = ("glm46v",)
    title = "GLM-4.6V"
    examples = ("zai-org/GLM-4.6V",)
    notes = "as GLM-4.1V"
