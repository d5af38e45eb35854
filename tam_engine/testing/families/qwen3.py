"""Qwen3-VL, Qwen3.5 (each with its MoE) and GLM-4.1V / 4.5V / 4.6V: tiny random models with their real
processors, and each vision token's brightness read from the processor's own ``pixel_values``.

All of these take images and videos as a ``*_grid_thw`` patch grid and merge ``m x m`` patches
into one token. Their ``pixel_values`` hold one row per patch, ``(C, temporal_patch, p, p)``
flattened, and the rows of one image come in merged order ``(t, h/m, w/m, m, m)``: vision token
``k`` of an image is rows ``[k m^2, (k+1) m^2)``. A video's rows are the same with one temporal
slot per ``temporal_patch`` frames. The tiny models keep the real patch sizes (Qwen3: 16,
GLM: 14) and merge 2, with small pixel limits (4..64 merged cells per image).
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from tam_engine.testing.families import CASES, FamilySpec
from tam_engine.testing.geometry import unnormalize
from tam_engine.testing.tiny_models import (
    DEFAULT_WORDS,
    QWEN2_VL_CHAT_TEMPLATE,
    _set_generation_ids,
    _text_dims,
    build_tokenizer,
    qwen_tokenizer,
)

MIN_CELLS, MAX_CELLS = 4, 64
#: A video's pixel limits bound all its frames together (t x h x w), hence the larger cap.
VIDEO_MAX_CELLS = MAX_CELLS * 8

GLM_SPECIAL_TOKENS: tuple[str, ...] = (
    "<|endoftext|>", "[gMASK]", "<sop>", "<|system|>", "<|user|>", "<|assistant|>",
    "<|begin_of_image|>", "<|end_of_image|>", "<|image|>", "<|begin_of_video|>",
    "<|end_of_video|>", "<|video|>",
)
# The shape of GLM-4.1V's own template: "[gMASK]<sop><|user|>\n<|begin_of_image|><|image|>
# <|end_of_image|>prompt<|assistant|>\n"; a video is <|begin_of_video|><|video|><|end_of_video|>.
GLM4V_CHAT_TEMPLATE = (
    "[gMASK]<sop>{% for message in messages %}<|{{ message['role'] }}|>\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for c in message['content'] %}"
    "{% if c['type'] == 'image' %}<|begin_of_image|><|image|><|end_of_image|>"
    "{% elif c['type'] == 'video' %}<|begin_of_video|><|video|><|end_of_video|>"
    "{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


def _sizes(patch: int, merge: int, max_cells: int) -> dict[str, int]:
    f = patch * merge
    return {"shortest_edge": f * f * MIN_CELLS, "longest_edge": f * f * max_cells}


def _vision_config(patch: int, hidden: int) -> dict[str, Any]:
    return {"depth": 2, "hidden_size": 32, "intermediate_size": 64, "num_heads": 2,
            "out_hidden_size": hidden, "patch_size": patch, "spatial_merge_size": 2,
            "temporal_patch_size": 2}


def _save(model: Any, processor: Any, text: dict[str, Any], out_dir: Path) -> None:
    _set_generation_ids(model, text)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.eval().save_pretrained(out_dir, safe_serialization=True)
    processor.save_pretrained(out_dir)


# ---------------------------------------------------------------------------------- Qwen3
def qwen3_vl_processor(patch: int = 16, merge: int = 2) -> Any:
    """A real ``Qwen3VLProcessor`` (the one Qwen3-VL and Qwen3.5 checkpoints ship), small limits.

    Qwen3-VL's own template puts the same placeholders as Qwen2-VL's, so that one is reused.
    """
    import transformers as tf

    common: dict[str, Any] = {"patch_size": patch, "merge_size": merge, "temporal_patch_size": 2}
    image = tf.Qwen2VLImageProcessor(size=_sizes(patch, merge, MAX_CELLS), **common)
    video = tf.Qwen3VLVideoProcessor(size=_sizes(patch, merge, VIDEO_MAX_CELLS), **common)
    return tf.Qwen3VLProcessor(image_processor=image, tokenizer=qwen_tokenizer(),
                               video_processor=video, chat_template=QWEN2_VL_CHAT_TEMPLATE)


def build_qwen3(out_dir: Path, variant: str = "qwen3_vl", hidden: int = 64, seed: int = 0
                ) -> None:
    """Qwen3-VL, Qwen3-VL-MoE or Qwen3.5 (hybrid linear/full attention) as a tiny model."""
    import torch
    import transformers as tf

    processor = qwen3_vl_processor()
    tok = processor.tokenizer
    torch.manual_seed(seed)
    ids = {name: tok.convert_tokens_to_ids(t) for name, t in (
        ("image_token_id", "<|image_pad|>"), ("video_token_id", "<|video_pad|>"),
        ("vision_start_token_id", "<|vision_start|>"), ("vision_end_token_id", "<|vision_end|>"))}
    text: dict[str, Any] = _text_dims(len(tok), hidden)
    # mrope sections (t, h, w) interleaved over the rotary half-dimension: head_dim 16 -> 8.
    text.update(head_dim=hidden // 4, bos_token_id=tok.convert_tokens_to_ids("<|endoftext|>"),
                eos_token_id=tok.convert_tokens_to_ids("<|im_end|>"),
                pad_token_id=tok.convert_tokens_to_ids("<|endoftext|>"),
                rope_parameters={"rope_type": "default", "rope_theta": 10000.0,
                                 "mrope_section": [4, 2, 2], "mrope_interleaved": True})
    vision = {**_vision_config(16, hidden), "num_position_embeddings": 256}
    model: Any
    if variant == "qwen3_vl":
        vision["deepstack_visual_indexes"] = [0]
        model = tf.Qwen3VLForConditionalGeneration(
            tf.Qwen3VLConfig(text_config=text, vision_config=vision, **ids))
    elif variant == "qwen3_vl_moe":
        vision["deepstack_visual_indexes"] = [0]
        text.update(num_experts=4, num_experts_per_tok=2, moe_intermediate_size=32,
                    decoder_sparse_step=1, mlp_only_layers=[])
        model = tf.Qwen3VLMoeForConditionalGeneration(
            tf.Qwen3VLMoeConfig(text_config=text, vision_config=vision, **ids))
    elif variant in ("qwen3_5", "qwen3_5_moe"):
        # One gated-delta-net (linear attention) layer and one full-attention layer; the full
        # rotary dimension keeps the (4, 2, 2) mrope split valid.
        text.update(layer_types=["linear_attention", "full_attention"], linear_key_head_dim=16,
                    linear_value_head_dim=16, linear_num_key_heads=2, linear_num_value_heads=4,
                    linear_conv_kernel_dim=4)
        text["rope_parameters"]["partial_rotary_factor"] = 1.0
        if variant == "qwen3_5":
            model = tf.Qwen3_5ForConditionalGeneration(
                tf.Qwen3_5Config(text_config=text, vision_config=vision, **ids))
        else:
            text.update(num_experts=4, num_experts_per_tok=2, moe_intermediate_size=32,
                        shared_expert_intermediate_size=32)
            model = tf.Qwen3_5MoeForConditionalGeneration(
                tf.Qwen3_5MoeConfig(text_config=text, vision_config=vision, **ids))
    else:
        raise ValueError(f"not a Qwen3 family: {variant!r}")
    _save(model, processor, text, out_dir)


# ---------------------------------------------------------------------------------- GLM-4V
def _glm_classes(variant: str) -> tuple[Any, Any, Any]:
    """GLM-4.6V ships its own (same-shaped) processor classes; GLM-4.1V/4.5V share GLM-4.1V's."""
    import transformers as tf

    if variant == "glm46v":
        return tf.Glm46VImageProcessor, tf.Glm46VVideoProcessor, tf.Glm46VProcessor
    return tf.Glm4vImageProcessor, tf.Glm4vVideoProcessor, tf.Glm4vProcessor


def glm4v_processor(variant: str = "glm4v", patch: int = 14, merge: int = 2) -> Any:
    """A real GLM-4V processor with GLM-4.1V's special tokens and template shape."""
    image_cls, video_cls, processor_cls = _glm_classes(variant)
    tok = build_tokenizer(DEFAULT_WORDS, GLM_SPECIAL_TOKENS, eos_token="<|user|>",
                          pad_token="<|endoftext|>")
    common: dict[str, Any] = {"patch_size": patch, "merge_size": merge, "temporal_patch_size": 2}
    image = image_cls(size=_sizes(patch, merge, MAX_CELLS), **common)
    video = video_cls(size=_sizes(patch, merge, VIDEO_MAX_CELLS), **common)
    return processor_cls(image_processor=image, tokenizer=tok, video_processor=video,
                         chat_template=GLM4V_CHAT_TEMPLATE)


def build_glm4v(out_dir: Path, variant: str = "glm4v", hidden: int = 64, seed: int = 0) -> None:
    """GLM-4.1V (``glm4v``), GLM-4.5V (``glm4v_moe``) or GLM-4.6V (``glm46v``) as a tiny model."""
    import torch
    import transformers as tf

    processor = glm4v_processor(variant)
    tok = processor.tokenizer
    torch.manual_seed(seed)
    ids = {name: tok.convert_tokens_to_ids(t) for name, t in (
        ("image_token_id", "<|image|>"), ("video_token_id", "<|video|>"),
        ("image_start_token_id", "<|begin_of_image|>"),
        ("image_end_token_id", "<|end_of_image|>"),
        ("video_start_token_id", "<|begin_of_video|>"),
        ("video_end_token_id", "<|end_of_video|>"))}
    text: dict[str, Any] = _text_dims(len(tok), hidden)
    # Half the head dimension is rotary (16 * 0.5 = 8), so the mrope sections sum to 4.
    text.update(bos_token_id=tok.convert_tokens_to_ids("<|endoftext|>"),
                eos_token_id=tok.convert_tokens_to_ids("<|user|>"),
                pad_token_id=tok.convert_tokens_to_ids("<|endoftext|>"),
                rope_parameters={"rope_type": "default", "rope_theta": 10000.0,
                                 "mrope_section": [2, 1, 1], "partial_rotary_factor": 0.5})
    vision = {**_vision_config(14, hidden), "image_size": 112}
    model: Any
    if variant == "glm4v":
        model = tf.Glm4vForConditionalGeneration(
            tf.Glm4vConfig(text_config=text, vision_config=vision, **ids))
    elif variant == "glm46v":
        model = tf.Glm46VForConditionalGeneration(
            tf.Glm46VConfig(text_config=text, vision_config=vision, **ids))
    elif variant == "glm4v_moe":
        text.update(n_routed_experts=4, num_experts_per_tok=2, moe_intermediate_size=32,
                    n_shared_experts=1, first_k_dense_replace=1, n_group=1, topk_group=1,
                    head_dim=hidden // 4)
        model = tf.Glm4vMoeForConditionalGeneration(
            tf.Glm4vMoeConfig(text_config=text, vision_config=vision, **ids))
    else:
        raise ValueError(f"not a GLM-4V family: {variant!r}")
    _save(model, processor, text, out_dir)


# ---------------------------------------------------------------------------------- oracle
def _token_brightness(pixel_values: Any, grid_thw: Any, sub: Any, merge: int) -> list[np.ndarray]:
    """Per image (or video) of ``grid_thw``: the ``(t*h*w,)`` mean brightness of the pixels each
    merged token saw, from the processor's patch rows (un-normalised with ``sub``'s mean/std)."""
    p, tp = int(sub.patch_size), int(sub.temporal_patch_size)
    rows = pixel_values.reshape(-1, 3, tp, p, p)
    out, start = [], 0
    for t, gh, gw in np.asarray(grid_thw.cpu() if hasattr(grid_thw, "cpu") else grid_thw
                                ).reshape(-1, 3).tolist():
        n = t * gh * gw
        # (patch, C, temporal, p, p) -> per patch, brightness over its channels: (patch, tp, p, p)
        plane = unnormalize(rows[start:start + n].transpose(1, 2), sub.image_mean, sub.image_std)
        # a merged token is m*m consecutive patch rows; it saw all their pixels and frames
        out.append(plane.reshape(n // merge**2, -1).mean(axis=1))
        start += n
    return out


def _processors(family: str) -> tuple[Any, Any]:
    """The image and video processors the family's builder uses (for their patch sizes and
    normalisation, which the builders leave at the classes' defaults; cheap, no tokenizer)."""
    import transformers as tf

    glm = family.startswith("glm")
    image_cls, video_cls = (_glm_classes(family)[:2] if glm
                            else (tf.Qwen2VLImageProcessor, tf.Qwen3VLVideoProcessor))
    common: dict[str, Any] = {"patch_size": 14 if glm else 16, "merge_size": 2,
                              "temporal_patch_size": 2}
    return image_cls(**common), video_cls(**common)


def vision_brightness(prepared: Any, family: str) -> np.ndarray:
    """Each vision token's brightness, media item by media item in the user's order (images
    from ``pixel_values``/``image_grid_thw``, videos from ``pixel_values_videos``)."""
    inputs = prepared.model_inputs
    image, video = _processors(family)
    merge = int(image.merge_size)
    images = (_token_brightness(inputs["pixel_values"], inputs["image_grid_thw"], image, merge)
              if "image_grid_thw" in inputs else [])
    videos = (_token_brightness(inputs["pixel_values_videos"], inputs["video_grid_thw"], video,
                                merge)
              if "video_grid_thw" in inputs else [])
    parts, ii, vi = [], 0, 0
    for item in prepared.media:
        if item.kind == "video":
            parts.append(videos[vi])
            vi += 1
        else:
            parts.append(images[ii])
            ii += 1
    return np.concatenate(parts)


SPECS: list[FamilySpec] = [
    FamilySpec(name, partial(build, variant=name), CASES,
               partial(vision_brightness, family=name))
    for name, build in (("qwen3_vl", build_qwen3), ("qwen3_vl_moe", build_qwen3),
                        ("qwen3_5", build_qwen3), ("qwen3_5_moe", build_qwen3),
                        ("glm4v", build_glm4v), ("glm4v_moe", build_glm4v),
                        ("glm46v", build_glm4v))
]
