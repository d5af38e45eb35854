"""LLaVA-NeXT, LLaVA-OneVision and LLaVA-NeXT-Video: tiny random models with their real
processors, and each vision token's brightness read from the processor's own ``pixel_values``.

The tiny towers take 64 px tiles with 8 px patches (8 x 8 features per tile), the decoders one
layer; the grid resolutions are multiples of 64, so a 128 px image already tiles. (Real
checkpoints: 336/14 CLIP for LLaVA-NeXT and NeXT-Video, 384/14 SigLIP for OneVision.)

The oracle: every tile's patches are averaged to one brightness per patch (the feature the
tower would give it), and those features go through the model class's OWN packing code
(``pack_image_features``: tile stitching, unpadding, OneVision's shrinking, the newline tokens;
the video pooler), exactly as the model places its image features on the placeholder tokens.
Newline tokens come out as NaN. Nothing here uses the adapter's geometry; only the vision
positions of ``prepared.spans`` pick the tokens, so a grid holding a newline fails the check.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np

from tam_engine.testing.families import FamilySpec
from tam_engine.testing.tiny_models import (
    DEFAULT_WORDS,
    _set_generation_ids,
    _text_dims,
    build_tokenizer,
)

TILE, PATCH = 64, 8
FEATURES = TILE // PATCH
#: LLaVA-NeXT's resolutions (real: 336 x {2, 3} shapes), scaled to 64 px tiles.
NEXT_PINPOINTS = [[TILE, 2 * TILE], [2 * TILE, TILE], [2 * TILE, 2 * TILE], [3 * TILE, TILE],
                  [TILE, 3 * TILE]]
#: OneVision's resolutions: every (a, b) with a, b in {1, 2, 3} tiles (real: 1..6 tiles).
ONEVISION_PINPOINTS = [[a * TILE, b * TILE] for a in (1, 2, 3) for b in (1, 2, 3)]
#: OneVision's anyres_max_N (real: 9): 4 here, so a 2 x 3 tile canvas is shrunk.
ONEVISION_MAX_TILES = 4
POOL_STRIDE = 2
CLIP_MEAN, CLIP_STD = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)
SIGLIP_MEAN = SIGLIP_STD = (0.5, 0.5, 0.5)

NEXT_SPECIALS = ("<unk>", "<s>", "</s>", "<image>", "<pad>")
NEXT_VIDEO_SPECIALS = ("<unk>", "<s>", "</s>", "<image>", "<video>", "<pad>")
ONEVISION_SPECIALS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<image>", "<video>")

# The shapes of the checkpoints' own templates: llava-v1.6-mistral "[INST] <image>\nprompt
# [/INST]"; LLaVA-NeXT-Video "USER: <video>\nprompt ASSISTANT:"; OneVision ChatML with the
# placeholders before the text.
NEXT_CHAT_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] == 'user' %}{{ '[INST] ' }}"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for c in message['content'] %}{% if c['type'] == 'image' %}{{ '<image>\n' }}{% endif %}"
    "{% endfor %}{% for c in message['content'] %}{% if c['type'] == 'text' %}{{ c['text'] }}"
    "{% endif %}{% endfor %}{% endif %}{{ ' [/INST]' }}{% else %}"
    "{% if message['content'] is string %}{{ ' ' + message['content'] }}{% else %}"
    "{% for c in message['content'] %}{% if c['type'] == 'text' %}{{ ' ' + c['text'] }}{% endif %}"
    "{% endfor %}{% endif %}{{ '</s>' }}{% endif %}{% endfor %}"
)
NEXT_VIDEO_CHAT_TEMPLATE = (
    "{% for message in messages %}{{ message['role'].upper() + ': ' }}"
    "{% if message['content'] is string %}{{ message['content'] + ' ' }}{% else %}"
    "{% for c in message['content'] %}{% if c['type'] == 'image' %}{{ '<image>\n' }}"
    "{% elif c['type'] == 'video' %}{{ '<video>\n' }}{% endif %}{% endfor %}"
    "{% for c in message['content'] %}{% if c['type'] == 'text' %}{{ c['text'] + ' ' }}{% endif %}"
    "{% endfor %}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}"
)
ONEVISION_CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for c in message['content'] %}{% if c['type'] == 'image' %}{{ '<image>\n' }}"
    "{% elif c['type'] == 'video' %}{{ '<video>\n' }}{% endif %}{% endfor %}"
    "{% for c in message['content'] %}{% if c['type'] == 'text' %}{{ c['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


# ---------------------------------------------------------------------------------- models
def _llama_tokenizer(specials: tuple[str, ...]) -> Any:
    """LLaVA's Llama-style tokenizer: ``<s>`` prepended through the post-processor."""
    from tokenizers import processors

    tok = build_tokenizer(DEFAULT_WORDS, specials, bos_token="<s>", eos_token="</s>",
                          pad_token="<pad>", unk_token="<unk>", extra={"add_bos_token": True})
    tok.backend_tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", specials.index("<s>"))])
    return tok


def _vision(model_type: str) -> dict[str, Any]:
    return {"model_type": model_type, "hidden_size": 32, "intermediate_size": 64,
            "num_hidden_layers": 2, "num_attention_heads": 2, "image_size": TILE,
            "patch_size": PATCH}


def _layout(family: str) -> dict[str, Any]:
    """The config fields that decide where the image features go (shared by the builder and the
    oracle, so the oracle packs exactly as the tiny model does)."""
    if family == "llava_onevision":
        return {"vision_config": _vision("siglip_vision_model"),
                "image_grid_pinpoints": ONEVISION_PINPOINTS,
                "vision_feature_select_strategy": "full", "vision_feature_layer": -1,
                "vision_aspect_ratio": f"anyres_max_{ONEVISION_MAX_TILES}"}
    layout = {"vision_config": {**_vision("clip_vision_model"), "projection_dim": 32},
              "image_grid_pinpoints": NEXT_PINPOINTS, "image_seq_length": FEATURES ** 2,
              "vision_feature_select_strategy": "default", "vision_feature_layer": -2}
    if family == "llava_next_video":
        layout.update(spatial_pool_stride=POOL_STRIDE,
                      video_seq_length=(FEATURES // POOL_STRIDE) ** 2)
    return layout


def _classes(family: str) -> tuple[Any, Any, Any]:
    """(config class, model class, inner model class) of ``family``."""
    import transformers as tf

    return {"llava_next": (tf.LlavaNextConfig, tf.LlavaNextForConditionalGeneration,
                           tf.LlavaNextModel),
            "llava_next_video": (tf.LlavaNextVideoConfig,
                                 tf.LlavaNextVideoForConditionalGeneration,
                                 tf.LlavaNextVideoModel),
            "llava_onevision": (tf.LlavaOnevisionConfig,
                                tf.LlavaOnevisionForConditionalGeneration,
                                tf.LlavaOnevisionModel)}[family]


def _processor(family: str) -> Any:
    import transformers as tf

    if family == "llava_onevision":
        size = {"height": TILE, "width": TILE}
        norm: dict[str, Any] = {"image_mean": SIGLIP_MEAN, "image_std": SIGLIP_STD}
        return tf.LlavaOnevisionProcessor(
            image_processor=tf.LlavaOnevisionImageProcessor(
                size=size, image_grid_pinpoints=ONEVISION_PINPOINTS, **norm),
            video_processor=tf.LlavaOnevisionVideoProcessor(size=size, **norm),
            tokenizer=build_tokenizer(DEFAULT_WORDS, ONEVISION_SPECIALS, eos_token="<|im_end|>",
                                      pad_token="<|endoftext|>"),
            num_image_tokens=FEATURES ** 2, vision_feature_select_strategy="full",
            vision_aspect_ratio=f"anyres_max_{ONEVISION_MAX_TILES}",
            chat_template=ONEVISION_CHAT_TEMPLATE)
    sizes: dict[str, Any] = {"size": {"shortest_edge": TILE}, "crop_size": {"height": TILE, "width": TILE},
             "image_mean": CLIP_MEAN, "image_std": CLIP_STD}
    image = tf.LlavaNextImageProcessor(image_grid_pinpoints=NEXT_PINPOINTS, **sizes)
    common = {"patch_size": PATCH, "vision_feature_select_strategy": "default",
              "num_additional_image_tokens": 1}
    if family == "llava_next":
        return tf.LlavaNextProcessor(image_processor=image,
                                     tokenizer=_llama_tokenizer(NEXT_SPECIALS),
                                     chat_template=NEXT_CHAT_TEMPLATE, **common)
    return tf.LlavaNextVideoProcessor(
        image_processor=image, video_processor=tf.LlavaNextVideoVideoProcessor(**sizes),
        tokenizer=_llama_tokenizer(NEXT_VIDEO_SPECIALS), chat_template=NEXT_VIDEO_CHAT_TEMPLATE,
        **common)


def build(out_dir: Path, family: str, hidden: int = 64, seed: int = 0,
          vocab_size: int | None = None) -> None:
    """``family`` as a tiny random model with its real processor, saved into ``out_dir``.

    ``vocab_size`` may exceed the tokenizer's (a benchmark's realistic ``lm_head``)."""
    import torch

    processor = _processor(family)
    tok = processor.tokenizer
    config_cls, model_cls, _ = _classes(family)
    onevision = family == "llava_onevision"
    eos, pad = ("<|im_end|>", "<|endoftext|>") if onevision else ("</s>", "<pad>")
    text: dict[str, Any] = {"model_type": "qwen2" if onevision else "llama",
                            **_text_dims(vocab_size or len(tok), hidden),
                            "bos_token_id": tok.convert_tokens_to_ids(pad if onevision else "<s>"),
                            "eos_token_id": tok.convert_tokens_to_ids(eos),
                            "pad_token_id": tok.convert_tokens_to_ids(pad),
                            # one decoder layer: these sequences are long (up to 1,500 tokens
                            # for a tiled video) and the matrix must stay fast
                            "num_hidden_layers": 1}
    image_id, video_id = _token_ids(family)
    ids = {"image_token_index": image_id}
    if family != "llava_next":
        ids["video_token_index"] = video_id
    if (tok.convert_tokens_to_ids("<image>"), getattr(processor, "video_token_id", -1)) != (
            image_id, video_id):
        raise AssertionError("the tiny tokenizer's special ids moved")
    torch.manual_seed(seed)
    model = model_cls(config_cls(text_config=text, **_layout(family), **ids))
    _set_generation_ids(model, text)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.eval().save_pretrained(out_dir, safe_serialization=True)
    processor.save_pretrained(out_dir)


def _token_ids(family: str) -> tuple[int, int]:
    """(image, video) placeholder ids: the tiny tokenizers give specials the first ids."""
    specials = {"llava_next": NEXT_SPECIALS, "llava_next_video": NEXT_VIDEO_SPECIALS,
                "llava_onevision": ONEVISION_SPECIALS}[family]
    return specials.index("<image>"), specials.index("<video>") if "<video>" in specials else -1


# ---------------------------------------------------------------------------------- oracle
def _patch_features(pixel_values: Any, mean: tuple[float, ...], std: tuple[float, ...]) -> Any:
    """``(..., C, TILE, TILE)`` pixels -> ``(..., FEATURES**2, 1)``: the bright fraction of each
    patch. (Bright = above mid-grey: OneVision pads with its mean colour, mid-grey, which is no
    part of the square.)"""
    import torch

    from tam_engine.testing.geometry import block_means, unnormalize

    bright = unnormalize(pixel_values, mean, std) > 0.5
    means = block_means(bright, FEATURES, FEATURES)
    return torch.from_numpy(means.reshape(*means.shape[:-2], FEATURES ** 2, 1)).float()


def _image_features(inputs: Any, family: str, config: Any) -> list[Any]:
    """Each image's tokens' brightness as the model packs them (newlines NaN)."""
    import importlib

    import torch

    _, _, inner = _classes(family)
    helpers = importlib.import_module(inner.__module__)
    onevision = family == "llava_onevision"
    feats = _patch_features(inputs["pixel_values"], *((SIGLIP_MEAN, SIGLIP_STD) if onevision
                                                      else (CLIP_MEAN, CLIP_STD)))
    sizes = inputs["image_sizes"]
    # As get_image_features: several images in one prompt are not tiled (OneVision).
    counts = inputs["batch_num_images"].tolist() if "batch_num_images" in inputs else [1]
    tiled = ([n == 1 for n in counts for _ in range(n)] if onevision
             else [True] * len(sizes))
    n_tiles = [helpers.image_size_to_num_patches(size, config.image_grid_pinpoints,
                                                 config.vision_config.image_size) if tile else 1
               for size, tile in zip(sizes, tiled)]
    per_image = [feats[i, :n] for i, n in enumerate(n_tiles)]
    newline = torch.tensor([float("nan")])
    owner = SimpleNamespace(config=config)
    if onevision:
        packed, _ = inner.pack_image_features(owner, per_image, sizes, image_newline=newline,
                                              vision_aspect_ratio=config.vision_aspect_ratio)
    else:
        packed, _ = inner.pack_image_features(owner, per_image, sizes, "default",
                                              image_newline=newline)
    return [p.reshape(-1).numpy() for p in packed]


def _video_features(inputs: Any, family: str, config: Any) -> list[Any]:
    """Each video's tokens' brightness as the model pools them (newlines NaN)."""
    import importlib

    import torch

    _, _, inner = _classes(family)
    out = []
    for video in inputs["pixel_values_videos"]:
        if family == "llava_onevision":
            feats = _patch_features(video, SIGLIP_MEAN, SIGLIP_STD)
            pooled = inner.apply_pooling(SimpleNamespace(config=config), feats).reshape(-1)
            out.append(torch.cat([pooled, torch.tensor([float("nan")])]).numpy())
        else:
            pooler = importlib.import_module(inner.__module__).LlavaNextVideoPooler(config)
            out.append(pooler(_patch_features(video, CLIP_MEAN, CLIP_STD)).reshape(-1).numpy())
    return out


def vision_brightness(prepared: Any, family: str) -> np.ndarray:
    """The brightness each vision token of ``prepared.spans`` saw, in its flattened order."""
    config_cls, _, _ = _classes(family)
    config = config_cls(**_layout(family))
    inputs = prepared.model_inputs
    ids = prepared.input_ids
    by_position = np.full(ids.size, np.nan)
    image_id, video_id = _token_ids(family)
    for key, tid, features in (("pixel_values", image_id, _image_features),
                               ("pixel_values_videos", video_id, _video_features)):
        if key in inputs:
            values = np.concatenate(features(inputs, family, config))
            where = np.flatnonzero(ids == tid)
            if where.size != values.size:
                raise AssertionError(f"{values.size} packed features for {where.size} "
                                     "placeholders")
            by_position[where] = values
    return by_position[prepared.spans.vision_positions]


_CASES = ("square", "wide", "tall", "two", "large", "video")

SPECS: list[FamilySpec] = [
    FamilySpec(name, partial(build, family=name), _CASES,
               partial(vision_brightness, family=name))
    for name in ("llava_next", "llava_onevision", "llava_next_video")
]
